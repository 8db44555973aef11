"""Trainer hooks. Subclass Callback and override what you need; the Trainer calls only the
hooks a callback overrides, so an unused per-step hook costs nothing.

MonitorCallback (Keras's pattern) is the one place that decides whether a dev metric
improved: early stopping and best-checkpointing ask it, in the metric's own direction."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from torchprac.metrics import Metric

if TYPE_CHECKING:
    from torchprac.train.trainer import FitResult, Trainer


class Callback:
    def on_fit_start(self, trainer: Trainer) -> None: ...

    def on_before_step(self, trainer: Trainer) -> None:
        """After backward, before clipping and the optimizer step: gradients are fresh."""

    def on_after_step(self, trainer: Trainer) -> None:
        """After the optimizer step and constraints."""

    def on_log(self, trainer: Trainer, logs: dict[str, float]) -> None:
        """Every trainer.log_every_n_steps steps, with host floats already read."""

    def on_epoch_end(self, trainer: Trainer, logs: dict[str, float]) -> None: ...

    def on_fit_end(self, trainer: Trainer, result: FitResult) -> None: ...

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


def overriding(callbacks: list[Callback], hook: str) -> list:
    """Bound methods of the callbacks that override `hook`."""
    return [getattr(cb, hook) for cb in callbacks if getattr(type(cb), hook) is not getattr(Callback, hook)]


class MonitorCallback(Callback):
    """Tracks the best value of one epoch metric (`monitor`, e.g. dev/loss) in its direction."""

    def __init__(self, monitor: str | Metric = "dev/loss", min_delta: float = 0.0) -> None:
        self.monitor = Metric.parse(monitor) if isinstance(monitor, str) else monitor
        self.mode = self.monitor.mode
        self.min_delta = float(min_delta)
        self.best = self.monitor.worst()
        self.best_epoch = -1  # 0-based epoch of the best value

    def is_improvement(self, value: float) -> bool:
        return math.isfinite(value) and self.monitor.better(value, self.best, self.min_delta)

    def observe(self, epoch: int, logs: dict[str, float]) -> bool:
        """Record epoch `epoch` (0-based); True when it is the new best."""
        value = logs[self.monitor.tag]
        if self.is_improvement(value):
            self.best, self.best_epoch = value, epoch
            return True
        return False

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "best_epoch": self.best_epoch}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.best_epoch = state["best"], state["best_epoch"]
