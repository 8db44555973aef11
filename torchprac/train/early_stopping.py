"""Early stopping with best-weights tracking (patience counted in epochs)."""

from __future__ import annotations

import math

import torch
from torch import nn


class EarlyStopping:
    def __init__(
        self,
        monitor: str = "dev/loss",
        mode: str = "min",
        patience: int = 10,
        min_delta: float = 0.0,
        enabled: bool = True,
        restore_best: bool = True,
    ) -> None:
        self.monitor, self.mode, self.patience = monitor, mode, int(patience)
        self.min_delta, self.enabled, self.restore_best = float(min_delta), bool(enabled), bool(restore_best)
        self.best = math.inf if mode == "min" else -math.inf
        self.best_epoch = -1
        self.wait = 0
        self.best_state: dict[str, torch.Tensor] | None = None

    def improved(self, value: float) -> bool:
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def update(self, epoch: int, value: float, model: nn.Module) -> bool:
        """Record an epoch's monitored value; returns True when training should stop."""
        if self.improved(value):
            self.best, self.best_epoch, self.wait = value, epoch, 0
            # A device copy: no host transfer, restored at the end of fit.
            self.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            return False
        self.wait += 1
        return self.enabled and self.wait >= self.patience

    def restore(self, model: nn.Module) -> bool:
        if self.restore_best and self.best_state is not None:
            model.load_state_dict(self.best_state)
            return True
        return False

    def state_dict(self) -> dict:
        return {"best": self.best, "best_epoch": self.best_epoch, "wait": self.wait, "best_state": self.best_state}

    def load_state_dict(self, state: dict) -> None:
        self.best, self.best_epoch, self.wait = state["best"], state["best_epoch"], state["wait"]
        self.best_state = state.get("best_state")
