"""One naming scheme for metrics. A metric is a (split, name) pair: the config spells it
`dev/loss` (early stopping, plateau, objective), TensorBoard and the history use the tags the
README documents (`loss/dev`, `metric/accuracy_dev`). This module is the only translation,
and the only place that knows that losses go down and accuracies go up."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from torchprac.errors import ConfigError

SPLITS = ("train", "dev", "test")
# Metric names: classification's accuracy, regression's RMSE / MAE (lower is better) and R².
NAMES = ("loss", "accuracy", "rmse", "mae", "r2")
_LOWER_IS_BETTER = ("loss", "rmse", "mae")


class Status(str, Enum):
    """How a run ended (metrics.json `status`, the sweep summary, HParams)."""

    COMPLETED = "completed"
    EARLY_STOPPED = "early_stopped"
    DIVERGED = "diverged"
    FAILED = "failed"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Metric:
    split: str
    name: str  # loss | accuracy | rmse | mae | r2

    @classmethod
    def parse(cls, spelled: str, key: str = "monitor") -> Metric:
        split, _, name = str(spelled).partition("/")
        if split not in SPLITS or name not in NAMES:
            raise ConfigError(
                key, spelled, "dev/loss or dev/accuracy (split/metric); for regression also dev/rmse, dev/mae, dev/r2"
            )
        return cls(split, name)

    @property
    def mode(self) -> str:
        """The improving direction: losses and errors go down, accuracy and R² go up."""
        return "min" if self.name in _LOWER_IS_BETTER else "max"

    @property
    def tag(self) -> str:
        """The TensorBoard / history key."""
        return f"loss/{self.split}" if self.name == "loss" else f"metric/{self.name}_{self.split}"

    def __str__(self) -> str:
        return f"{self.split}/{self.name}"

    def worst(self) -> float:
        return float("inf") if self.mode == "min" else float("-inf")

    def better(self, a: float, b: float, min_delta: float = 0.0) -> bool:
        """a improves on b by more than min_delta."""
        return a < b - min_delta if self.mode == "min" else a > b + min_delta


def tag(split: str, name: str) -> str:
    return Metric(split, name).tag
