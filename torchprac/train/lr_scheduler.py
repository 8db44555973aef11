"""Steps a torch lr scheduler at its interval: after every optimizer step, or at epoch ends
(ReduceLROnPlateau fed the dev metric it monitors)."""

from __future__ import annotations

from typing import Any

import torch

from torchprac.metrics import Metric
from torchprac.train.callbacks import Callback


class LRSchedulerCallback(Callback):
    def __init__(self, scheduler: Any, interval: str = "step", monitor: Metric | None = None) -> None:
        self.scheduler, self.interval = scheduler, interval
        self.plateau = isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)
        self.monitor = monitor or Metric("dev", "loss")

    def on_after_step(self, trainer) -> None:
        if self.interval == "step":
            self.scheduler.step()

    def on_epoch_end(self, trainer, logs: dict[str, float]) -> None:
        if self.interval == "epoch":
            if self.plateau:
                self.scheduler.step(logs[self.monitor.tag])
            else:
                self.scheduler.step()

    def state_dict(self) -> dict[str, Any]:
        return self.scheduler.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.scheduler.load_state_dict(state)
