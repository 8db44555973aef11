"""Where a run's end-of-run figures are drawn: in the run's own process, or in one background
process that draws a finished job's figures while the next job of a sweep trains.

A figure costs matplotlib ~0.2-0.6 s, a run's four of them ~1.5-2.5 s: more than the training
of a short sweep job. Hydra's basic launcher runs a sweep's jobs one after another in one
process, and `trainer.num_threads=auto` gives a small model one thread, so a second core sits
idle while the next job trains; `viz.background` (auto: exactly then) hands the figures to a
process there. Everything the figures need is computed in the run (predictions, per-class
accuracy, the recorded activations), so the figure process only draws: plain arrays in, PNGs
in figures/ and images in the run's TensorBoard directory (its own event file) out.

At most one run's figures wait: a job's figures are handed over only once the previous job's
are done, so the figure process never falls behind by more than a job. `drain()` waits for the
last ones (the sweep summary calls it before it reads the runs; at exit too). If the figure
process dies, the figures it had are drawn here instead, and so are all later ones.
"""

from __future__ import annotations

import atexit
import logging
import multiprocessing as mp
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger("torchprac")


@dataclass
class Picture:
    """figures/<name>.png and the TensorBoard image figures/<name>: torchprac.viz.figures.<draw>(*args, **kwargs)."""

    name: str
    draw: str
    args: tuple = ()
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass
class Batch:
    """One run's pictures, where they go, and the TensorBoard step they are logged at."""

    pictures: list[Picture]
    figdir: Path
    tb_dir: str | None
    step: int


def paint(batch: Batch, writer=None) -> list[str]:
    """Draw each picture, write its PNG and its TensorBoard image (with `writer`, or a writer of
    its own on batch.tb_dir); returns a line per picture that could not be drawn."""
    from torchprac.viz import figures

    own = None
    if writer is None and batch.tb_dir is not None:
        from torch.utils.tensorboard import SummaryWriter

        writer = own = SummaryWriter(log_dir=batch.tb_dir, filename_suffix=".figures")
    problems = []
    try:
        for pic in batch.pictures:
            try:
                rgb = figures.to_rgb(getattr(figures, pic.draw)(*pic.args, **pic.kwargs))
                png = figures.png_bytes(rgb)  # encoded once: the file and TensorBoard
                figures.save_png(png, batch.figdir / f"{pic.name}.png")
                if writer is not None:
                    figures.add_png(writer, f"figures/{pic.name}", png, rgb.shape, batch.step)
            except Exception as e:  # a picture never costs the others (nor the run) anything
                problems.append(f"figures/{pic.name}.png could not be drawn ({type(e).__name__}: {e})")
    finally:
        if own is not None:
            own.close()
    return problems


def _serve(conn) -> None:
    """The figure process: paint each batch it is sent, answer with its problems, until None."""
    import torch

    torch.set_num_threads(1)  # it only draws; the cores belong to the training
    while True:
        try:
            batch = conn.recv()
        except EOFError:  # the run's process went away
            return
        if batch is None:
            return
        conn.send(paint(batch))


class Painter:
    """The background figure process and the batch it is drawing (at most one)."""

    def __init__(self) -> None:
        self.proc: Any = None
        self.conn: Any = None
        self.pending: Batch | None = None
        self.broken = False

    def submit(self, batch: Batch) -> bool:
        """Hand `batch` to the figure process (after the previous one is done); False when it
        cannot take it (it died before), and the caller draws it."""
        self.wait()
        if self.broken:
            return False
        try:
            if self.proc is None:
                ctx = mp.get_context("spawn")
                self.conn, child = ctx.Pipe()
                self.proc = ctx.Process(target=_serve, args=(child,), name="torchprac-figures", daemon=True)
                self.proc.start()
                child.close()
                log.info("viz: the end-of-run figures are drawn in a background process (viz.background)")
            self.conn.send(batch)
        except Exception as e:
            self._died(e)
            return False
        self.pending = batch
        return True

    def wait(self) -> None:
        """Until the pending batch is drawn; drawn here if the figure process dies first."""
        if self.pending is None:
            return
        batch, self.pending = self.pending, None
        try:
            problems = self.conn.recv()
        except Exception as e:
            self._died(e)
            problems = paint(batch)
        for line in problems:
            log.warning("viz: %s: %s", batch.figdir.parent, line)

    def _died(self, e: Exception) -> None:
        code = self.proc.exitcode if self.proc is not None else None
        log.warning(
            "viz: the background figure process ended (%s, exit code %s): figures are drawn in the run's "
            "own process from now on",
            type(e).__name__,
            code,
        )
        self.broken = True
        self.close()

    def close(self) -> None:
        if self.proc is not None:
            try:
                self.conn.send(None)
            except Exception:
                pass
            self.proc.join(10)
            if self.proc.is_alive():
                self.proc.kill()
                self.proc.join()
            self.conn.close()
        self.proc = self.conn = None


_painter: Painter | None = None


def draw(batch: Batch, writer=None, background: bool = False) -> None:
    """Draw a run's pictures: handed to the background figure process when `background` and
    this is a main process (writer unused there: it writes its own event file in batch.tb_dir),
    else here with the run's `writer`."""
    global _painter
    # Only from a main process: a sweep worker's exit would skip the atexit drain (multiprocessing
    # children leave with os._exit) and kill the figure process with the figures it holds.
    if background and mp.parent_process() is None:
        if _painter is None:
            _painter = Painter()
            atexit.register(drain)
        if _painter.submit(batch):
            return
    for line in paint(batch, writer):
        log.warning("viz: %s", line)


def drain() -> None:
    """Wait for the figures still being drawn in the background (a no-op when there are none)."""
    if _painter is not None:
        _painter.wait()


def free_core() -> bool:
    """Whether a core is left over by this process's torch threads (the figure process's)."""
    import torch

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return torch.get_num_threads() < cores
