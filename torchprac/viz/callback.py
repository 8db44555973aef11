"""VizCallback: the pictures and the TensorBoard layout a run shows while it trains.

- the decision boundary of 2-feature data as an image (`figures/decision_boundary`) every
  viz.every_n_epochs epochs and at the end of fit;
- per-layer activation histograms `activations/<layer>` on sampled steps (viz.activations:
  forward hooks armed only on those steps, binned on the device, one host read per sample;
  see viz/activations.py); their figure (`figures/activations`) is drawn with the end-of-run
  figures (viz/run_figures.py, `activations_picture`);
- the `epoch` scalar (to align runs with different batch sizes), a custom-scalars layout with
  train and dev loss (and accuracy) on one chart, and off a terminal one log line per epoch.

Only rank 0 draws and writes (DDP); nothing here draws from the random generators, so a
resumed run trains exactly as an uninterrupted one."""

from __future__ import annotations

import logging
import math
import sys
import time
from contextlib import nullcontext
from typing import Any

import numpy as np
import torch
from torch import nn

from torchprac.train.callbacks import Callback
from torchprac.viz.activations import ActivationRecorder
from torchprac.viz.settings import VizSettings

log = logging.getLogger("torchprac")

# TensorBoard's custom-scalars tab: train and dev of each metric on one chart.
LAYOUT = {
    "train vs dev": {
        "loss": ["Multiline", [r"^loss/train$", r"^loss/dev$"]],
        "accuracy": ["Multiline", [r"^metric/accuracy_train$", r"^metric/accuracy_dev$"]],
        "learning rate": ["Multiline", [r"^lr/"]],
    }
}
MAX_POINTS = 2000  # points drawn per split on a boundary image (a random subset beyond this)


def predict_proba_fn(model: nn.Module, device: torch.device, autocast=nullcontext, batch: int = 16384):
    """numpy (N, d) -> numpy (N, k) class probabilities of `model` in eval mode."""

    @torch.no_grad()
    def predict(x: np.ndarray) -> np.ndarray:
        was = model.training
        model.eval()
        try:
            t = torch.as_tensor(np.asarray(x), dtype=torch.float32, device=device)
            out = []
            for i in range(0, len(t), batch):
                with autocast():
                    out.append(torch.softmax(model(t[i : i + batch]).float(), 1))
            return torch.cat(out).cpu().numpy()  # one host read
        finally:
            model.train(was)

    return predict


@torch.no_grad()
def predict_labels(model: nn.Module, x: torch.Tensor, autocast=nullcontext, batch: int = 4096) -> np.ndarray:
    was = model.training
    model.eval()
    try:
        out = []
        for i in range(0, len(x), batch):
            with autocast():
                out.append(model(x[i : i + batch]).argmax(1))
        return torch.cat(out).cpu().numpy()  # one host read
    finally:
        model.train(was)


def _subsample(x: np.ndarray, y: np.ndarray, n: int = MAX_POINTS) -> tuple[np.ndarray, np.ndarray]:
    if len(x) <= n:
        return x, y
    idx = np.random.default_rng(0).choice(len(x), n, replace=False)  # its own generator: torch's untouched
    return x[idx], y[idx]


def is_2d(split) -> bool:
    """Two input features and class labels: a decision boundary can be drawn."""
    return split is not None and split.x.ndim == 2 and split.x.shape[1] == 2 and not split.y.is_floating_point()


class VizCallback(Callback):
    def __init__(self, settings: VizSettings, model: nn.Module, logger=None) -> None:
        self.s, self.logger = settings, logger
        self.recorder: ActivationRecorder | None = None
        if settings.activations.enabled:
            rec = ActivationRecorder(model, bins=settings.activations.bins, logger=None)
            if rec.enabled:
                self.recorder = rec
            elif rec.layers:
                log.info("viz: activation histograms are off under trainer.compile=true")
        self.images: dict[str, bytes] = {}  # name -> the end-of-fit image as PNG, encoded once (for figures/)
        self._points: tuple | None = None
        self._t0 = 0.0
        self._epoch_log = False
        self._last_log: dict[str, float] = {}
        self._main = True

    @property
    def writer(self):
        return getattr(self.logger, "writer", None) if self._main else None

    # -- trainer hooks ----------------------------------------------------------------------
    def on_fit_start(self, trainer) -> None:
        self._main = trainer.dist.is_main
        if self.s.layout and self.writer is not None:
            self.writer.add_custom_scalars(LAYOUT)
        if self.recorder is not None and self._main:
            total = trainer.steps_per_epoch * trainer.loop.epochs
            self.recorder.every = self.s.activations.every(total)
            self.recorder.logger = self.logger if self.writer is not None else None
            if self.recorder.due(trainer.global_step):
                self.recorder.arm()
        progress = trainer.loop.progress
        on_terminal = progress is True or (progress is None and sys.stderr.isatty())
        self._epoch_log = self.s.epoch_log is True or (self.s.epoch_log == "auto" and not on_terminal)
        self._t0 = time.perf_counter()

    def on_log(self, trainer, logs: dict[str, float]) -> None:
        self._last_log = logs  # the epoch's own logs lack train loss/lr when a log step ended it

    def on_after_step(self, trainer) -> None:
        if self.recorder is not None and self._main:
            self.recorder.after_step(trainer.global_step)

    def on_epoch_end(self, trainer, logs: dict[str, float]) -> None:
        if not self._main:
            return
        now = time.perf_counter()
        seconds, self._t0 = now - self._t0, now
        if self.logger is not None:
            self.logger.scalars({"epoch": float(trainer.epoch)}, trainer.global_step)
        if self._epoch_log:
            line = epoch_line(trainer.epoch, trainer.loop.epochs, {**self._last_log, **logs}, seconds)
            log.info("%s", line)
        every = self.s.image_every(trainer.loop.epochs)
        if self._boundary_on(trainer) and trainer.epoch % every == 0 and trainer.epoch < trainer.loop.epochs:
            try:
                self._log_boundary(trainer, f"epoch {trainer.epoch}")
            except Exception as e:  # a picture must never cost the run its training
                log.warning("viz: the decision boundary could not be drawn (%s: %s)", type(e).__name__, e)

    def on_fit_end(self, trainer, result) -> None:
        if self.recorder is not None:
            self.recorder.disarm()
        if not self._main:
            return
        try:
            if self._boundary_on(trainer) and str(result.status) != "diverged":
                self.images["decision_boundary"] = self._log_boundary(
                    trainer, f"epoch {result.best_epoch + 1} (reported)"
                )
        except Exception as e:  # a picture must never cost the run its results
            log.warning("viz: a figure could not be drawn (%s: %s)", type(e).__name__, e)

    def activations_picture(self):
        """The run's activations figure (figures/activations.png), drawn with the other end-of-run
        figures (viz/run_figures.py, maybe in the background); None when nothing was recorded."""
        if self.recorder is None or not self.recorder.steps or not self._main:
            return None
        from torchprac.viz.painter import Picture

        return Picture(
            "activations",
            "activations_overview",
            (self.recorder.history,),
            {"title": self._title("activations per layer")},
        )

    # -- decision boundary ------------------------------------------------------------------
    def _boundary_on(self, trainer) -> bool:
        return self.s.decision_boundary and is_2d(trainer.train_split)

    def _title(self, what: str) -> str:
        return f"{self.s.run_name}: {what}" if self.s.run_name else what

    def _log_boundary(self, trainer, when: str) -> bytes:
        """Draw the boundary now, log it to TensorBoard; its PNG bytes."""
        from torchprac.viz.figures import decision_boundary, publish

        if self._points is None:  # the data never changes: read it to the host once
            tr, dv = trainer.train_split, trainer.dev_split
            self._points = (
                *_subsample(tr.x.cpu().numpy(), tr.y.cpu().numpy()),
                *_subsample(dv.x.cpu().numpy(), dv.y.cpu().numpy()),
            )
        predict = predict_proba_fn(trainer.model, trainer.device, trainer.optim.precision.autocast)
        fig = decision_boundary(
            predict, *self._points, grid=self.s.grid, title=self._title(f"decision boundary, {when}")
        )
        return publish(fig, writer=self.writer, tag="figures/decision_boundary", step=trainer.global_step)

    # -- checkpoint state (a resumed run's activation figure covers the whole training) -------
    def state_dict(self) -> dict[str, Any]:
        return self.recorder.state_dict() if self.recorder is not None else {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.recorder is not None and state:
            self.recorder.load_state_dict(state)


def epoch_line(epoch: int, epochs: int, logs: dict[str, float], seconds: float) -> str:
    """`epoch 3/30  train loss 0.1234 acc 0.9650  dev loss 0.1500 acc 0.9555  lr 0.05  0.8 s`;
    a part whose value the epoch did not log is left out."""

    def num(key: str, fmt: str = ".4f") -> str | None:
        v = logs.get(key)
        return None if v is None or not math.isfinite(v) else format(v, fmt)

    parts = [f"epoch {epoch}/{epochs}"]
    for split in ("train", "dev"):
        loss, acc = num(f"loss/{split}"), num(f"metric/accuracy_{split}")
        if loss or acc:
            parts.append(f"{split}" + (f" loss {loss}" if loss else "") + (f" acc {acc}" if acc else ""))
    lr = next((v for k, v in logs.items() if k.startswith("lr/")), None)
    if lr is not None:
        parts.append(f"lr {lr:.3g}")
    parts.append(f"{seconds:.1f} s")
    return "  ".join(parts)
