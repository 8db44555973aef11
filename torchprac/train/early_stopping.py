"""Early stopping with best-weights tracking (patience counted in epochs)."""

from __future__ import annotations

from typing import Any

import torch

from torchprac.metrics import Metric
from torchprac.train.callbacks import MonitorCallback


class EarlyStopping(MonitorCallback):
    """Keeps a device copy of the best epoch's weights; stops the run after `patience` epochs
    without improvement (when `enabled`), and restores the best weights at the end of fit
    (when `restore_best`; also when stopping never fired)."""

    def __init__(
        self,
        monitor: str | Metric = "dev/loss",
        patience: int = 10,
        min_delta: float = 0.0,
        enabled: bool = True,
        restore_best: bool = True,
    ) -> None:
        super().__init__(monitor, min_delta)
        self.patience, self.enabled, self.restore_best = int(patience), bool(enabled), bool(restore_best)
        self.wait = 0
        self.best_state: dict[str, torch.Tensor] | None = None
        self.restored = False

    def on_epoch_end(self, trainer, logs: dict[str, float]) -> None:
        if self.observe(trainer.epoch - 1, logs):
            self.wait = 0
            # A device copy: no host transfer, restored at the end of fit.
            self.best_state = {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}
            return
        self.wait += 1
        if self.enabled and self.wait >= self.patience:
            trainer.stop(
                f"early stopping: {self.monitor} did not improve for {self.patience} epochs "
                f"(best {self.best:.4f} at epoch {self.best_epoch + 1})"
            )

    def on_fit_end(self, trainer, result) -> None:
        self.restored = False
        if result.status != "diverged" and self.restore_best and self.best_state is not None:
            trainer.model.load_state_dict(self.best_state)
            self.restored = True
            result.best_epoch = self.best_epoch
            if result.status == "completed":
                result.message += f"; best {self.monitor} {self.best:.4f} at epoch {self.best_epoch + 1}"
        else:
            # the evaluated weights are the last epoch's: that is the epoch the results describe
            result.best_epoch = trainer.epoch - 1

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "wait": self.wait, "best_state": self.best_state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.wait, self.best_state = state["wait"], state.get("best_state")
