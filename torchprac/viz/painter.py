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
are done, so the figure process never falls behind by more than a job. Where the run's process
would wait for them (the next job's figures are ready, or the sweep ends), it draws the waiting
batch's last pictures itself while the figure process draws its first ones: each picture once,
both cores drawing (a default digits job's four figures take ~2 s, its training ~1 s).
`drain()` waits for the last ones (the sweep summary calls it before it reads the runs; at exit
too). If the figure process dies, the figures it had are drawn here instead, and so are all
later ones.
"""

from __future__ import annotations

import atexit
import logging
import multiprocessing as mp
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
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


def paint(batch: Batch, writer=None, which: Iterable[int] | None = None) -> list[str]:
    """Draw the pictures of `batch` (those at the indices `which`, else all), write each PNG and
    its TensorBoard image (with `writer`, or a writer of its own on batch.tb_dir); returns a line
    per picture that could not be drawn."""
    from torchprac.viz import figures

    own = None
    problems = []
    try:
        for i in range(len(batch.pictures)) if which is None else which:
            pic = batch.pictures[i]
            if writer is None and batch.tb_dir is not None:  # opened at the first picture drawn
                from torch.utils.tensorboard import SummaryWriter

                writer = own = SummaryWriter(log_dir=batch.tb_dir, filename_suffix=".figures")
            try:
                fig = getattr(figures, pic.draw)(*pic.args, **pic.kwargs)
                figures.publish(fig, batch.figdir / f"{pic.name}.png", writer, f"figures/{pic.name}", batch.step)
            except Exception as e:  # a picture never costs the others (nor the run) anything
                problems.append(f"figures/{pic.name}.png could not be drawn ({type(e).__name__}: {e})")
    finally:
        if own is not None:
            own.close()
    return problems


# The pictures of the batch in hand are shared out through three shared integers: the batch's
# number, the next picture from the front (the figure process takes it) and one past the last
# picture not yet taken from the back (the run's process takes it while it would otherwise wait).
SEQ, HEAD, TAIL = 0, 1, 2
LOCK_WAIT_S = 10.0  # a lock held this long means the figure process died holding it


@contextmanager
def _holding(claims) -> Iterator[Any]:
    """The shared integers, raw, under their lock; TimeoutError if the lock is lost (a figure
    process killed while holding it)."""
    lock = claims.get_lock()
    if not lock.acquire(timeout=LOCK_WAIT_S):
        raise TimeoutError("the figure process holds the picture lock")
    try:
        yield claims.get_obj()
    finally:
        lock.release()


def _take(claims, seq: int, front: bool) -> int | None:
    """The next untaken picture of batch `seq` from the front or the back; None when none is left
    (or the shared integers belong to a later batch)."""
    with _holding(claims) as a:
        if a[SEQ] != seq or a[HEAD] >= a[TAIL]:
            return None
        if front:
            a[HEAD] += 1
            return a[HEAD] - 1
        a[TAIL] -= 1
        return a[TAIL]


def _serve(conn, claims) -> None:
    """The figure process: take the pictures of each batch it is sent from the front until none
    is left, answer (batch number, problems), until None."""
    import torch

    torch.set_num_threads(1)  # it only draws; the cores belong to the training
    while True:
        try:
            msg = conn.recv()
        except EOFError:  # the run's process went away
            return
        if msg is None:
            return
        seq, batch = msg

        def mine(seq: int = seq) -> Iterator[int]:
            while (i := _take(claims, seq, front=True)) is not None:
                yield i

        conn.send((seq, paint(batch, which=mine())))


class Painter:
    """The background figure process and the batch it is drawing (at most one).

    While the run's process would wait for that batch (the next job's figures are ready, or the
    sweep ends), it draws the batch's last pictures itself: the figure process draws from the
    front, the run's process from the back, each picture once. Both cores draw, instead of one
    drawing while the other waits."""

    def __init__(self) -> None:
        self.proc: Any = None
        self.conn: Any = None
        self.claims: Any = None
        self.seq = 0
        self.pending: Batch | None = None
        self.broken = False
        self.drawn_here = 0  # pictures of background batches the run's process drew itself

    def submit(self, batch: Batch) -> bool:
        """Hand `batch` to the figure process (after the previous one is done); False when it
        cannot take it (it died before), and the caller draws it."""
        self.wait()
        if not self.start():  # it could not start, or died before
            return False
        try:
            if not self.proc.is_alive():
                raise EOFError("the figure process is gone")
            self.seq += 1
            with _holding(self.claims) as a:  # the figure process is between batches: no one draws
                a[:] = [self.seq, 0, len(batch.pictures)]
            self.conn.send((self.seq, batch))
        except Exception as e:
            self._died(e)
            return False
        self.pending = batch
        return True

    def start(self) -> bool:
        """Spawn the figure process unless it runs (its imports take seconds: a sweep starts it
        with its first job); False when there is none to draw (it could not start, or died)."""
        if self.proc is not None or self.broken:
            return not self.broken
        try:
            ctx = mp.get_context("spawn")
            conn, child = ctx.Pipe()
            self.claims = ctx.Array("i", 3)
            proc = ctx.Process(target=_serve, args=(child, self.claims), name="torchprac-figures", daemon=True)
            proc.start()
            child.close()
        except Exception as e:  # e.g. no process left to the user: the figures are drawn here
            self._died(e, "could not start")
            return False
        self.proc, self.conn = proc, conn
        log.info("viz: the end-of-run figures are drawn in a background process (viz.background)")
        return True

    def wait(self) -> None:
        """Until the pending batch is drawn: its untaken pictures are drawn here, then the figure
        process's answer is awaited if it took any; those are drawn here if it dies first."""
        if self.pending is None:
            return
        batch, self.pending = self.pending, None
        seq, n = self.seq, len(batch.pictures)
        problems: list[str] = []
        try:
            problems += paint(batch, which=self._from_the_back(seq))
            with _holding(self.claims) as a:
                taken = a[HEAD]  # none is left: pictures 0..taken-1 are the figure process's
            while taken:  # its answers to earlier batches it took nothing of are passed over
                got, theirs = self.conn.recv()
                if got == seq:
                    problems += theirs
                    break
        except Exception as e:
            self._died(e)
            # Nobody writes the integers now: read them without the lock (the dead may hold it).
            # Pictures TAIL..n-1 were drawn here; the figure process's are drawn again.
            problems += paint(batch, which=range(min(self.claims.get_obj()[TAIL], n)))
        for line in problems:
            log.warning("viz: %s: %s", batch.figdir.parent, line)

    def _from_the_back(self, seq: int) -> Iterator[int]:
        while (i := _take(self.claims, seq, front=False)) is not None:
            self.drawn_here += 1
            yield i

    def _died(self, e: Exception, what: str = "ended") -> None:
        code = self.proc.exitcode if self.proc is not None else None
        log.warning(
            "viz: the background figure process %s (%s, exit code %s): figures are drawn in the run's "
            "own process from now on",
            what,
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


def _the_painter() -> Painter | None:
    """This process's painter (made on first use); None in a child process: a sweep worker's
    exit would skip the atexit drain (multiprocessing children leave with os._exit) and kill the
    figure process with the figures it holds."""
    global _painter
    if mp.parent_process() is not None:
        return None
    if _painter is None:
        _painter = Painter()
        atexit.register(drain)
    return _painter


def in_background(settings) -> bool:
    """Whether a run with these VizSettings hands its end-of-run figures to the figure process:
    viz.background=true, or auto in a basic-launcher sweep whose threads leave a core free."""
    return settings.background is True or (settings.background == "auto" and settings.in_basic_sweep and free_core())


def start() -> None:
    """Start the figure process now, at a run's start: its imports (~3-6 s) overlap the training
    instead of the first figures waiting for them."""
    if (painter := _the_painter()) is not None:
        painter.start()


def draw(batch: Batch, writer=None, background: bool = False) -> None:
    """Draw a run's pictures: handed to the background figure process when `background` and
    this is a main process (writer unused there: it writes its own event file in batch.tb_dir),
    else here with the run's `writer`."""
    if background and (painter := _the_painter()) is not None and painter.submit(batch):
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
