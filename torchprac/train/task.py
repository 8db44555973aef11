"""What the model is trained to do, and so how it is scored: the loss of a batch, the running
sums the Trainer accumulates on the device (no host sync per step), and the metrics read from
them. Classification: cross-entropy, accuracy. Regression: MSE of the standardised target
(data.normalize_target), with RMSE and MAE in the target's own units and R².

    task = task_of(splits)
    loss = task.loss(model(x), y)                 # a device scalar
    sums += task.batch_sums(output, y)            # device tensor, added up over steps
    task.metrics(loss_mean, sums, n)              # host floats, at a logging step
"""

from __future__ import annotations

import math
from contextlib import nullcontext
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from torchprac.data.splits import Split
from torchprac.errors import ConfigError
from torchprac.metrics import Metric


class Task:
    name: str = ""
    metric_names: tuple[str, ...] = ()  # besides "loss"

    def loss(self, output: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Mean data loss of a batch (float32)."""
        raise NotImplementedError

    def loss_sum(self, output: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def zeros(self, device: torch.device) -> torch.Tensor:
        """The empty running sums."""
        raise NotImplementedError

    def batch_sums(self, output: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def metrics(self, loss: float, sums: Any, n: int) -> dict[str, float]:
        """Host metrics of an interval: `loss` its mean loss, `sums` the host values of the sums."""
        raise NotImplementedError

    def finish(self, loss_sum: torch.Tensor, sums: torch.Tensor, n: int) -> dict[str, torch.Tensor]:
        """Device metrics of a whole split (evaluate): loss and every metric name."""
        raise NotImplementedError

    def error(self, metrics: dict[str, float]) -> float:
        """The error the bias/variance diagnosis compares across splits."""
        raise NotImplementedError

    def metric(self, metric: Metric, key: str = "trainer.objective") -> Metric:
        """A monitored metric as this task has it (see Regression.metric)."""
        if metric.name != "loss" and metric.name not in self.metric_names:
            raise ConfigError(
                key,
                str(metric),
                f"{metric.split}/loss or one of " + ", ".join(f"{metric.split}/{m}" for m in self.metric_names),
                f"The data is a {self.name} task.",
            )
        return metric

    @property
    def names(self) -> tuple[str, ...]:
        return ("loss", *self.metric_names)


class Classification(Task):
    name = "classification"
    metric_names = ("accuracy",)

    def loss(self, output, y):
        return F.cross_entropy(output.float(), y)

    def loss_sum(self, output, y):
        return F.cross_entropy(output.float(), y, reduction="sum")

    def zeros(self, device):
        return torch.zeros((), device=device).long()

    def batch_sums(self, output, y):
        return (output.argmax(1) == y).sum()

    def metrics(self, loss, sums, n):
        return {"accuracy": sums / max(n, 1)}

    def finish(self, loss_sum, sums, n):
        return {"loss": loss_sum / n, "accuracy": sums.float() / n}

    def error(self, metrics):
        return 1 - metrics["accuracy"]


class Regression(Task):
    """The model predicts the standardised target z = (y - y_mean) / y_std; RMSE and MAE are
    reported in y's units (times y_std), R² = 1 - SSE/SST on each split (scale-free)."""

    name = "regression"
    metric_names = ("rmse", "mae", "r2")

    def __init__(self, y_mean: float = 0.0, y_std: float = 1.0) -> None:
        self.y_mean, self.y_std = float(y_mean), float(y_std)

    @staticmethod
    def _pred(output: torch.Tensor) -> torch.Tensor:
        return output.float().reshape(len(output), -1)[:, 0]

    def loss(self, output, y):
        return F.mse_loss(self._pred(output), y)

    def loss_sum(self, output, y):
        return F.mse_loss(self._pred(output), y, reduction="sum")

    def zeros(self, device):
        # |error|, y, y² sums (the squared error is the loss sum); float64: SST = Σy² - (Σy)²/n cancels
        return torch.zeros(3, dtype=torch.float64, device=device)

    def batch_sums(self, output, y):
        err = self._pred(output).detach() - y
        return torch.stack([err.abs().sum(), y.sum(), y.square().sum()])

    def metrics(self, loss, sums, n):
        n = max(n, 1)
        sae, sy, syy = sums
        sst = syy - sy * sy / n
        return {
            "rmse": self.y_std * math.sqrt(max(loss, 0.0)),
            "mae": self.y_std * sae / n,
            "r2": 1 - loss * n / sst if sst > 0 else float("nan"),
        }

    def finish(self, loss_sum, sums, n):
        sse = loss_sum.double()
        sst = sums[2] - sums[1] * sums[1] / n
        return {
            "loss": loss_sum / n,
            "rmse": (sse / n).sqrt() * self.y_std,
            "mae": sums[0] / n * self.y_std,
            "r2": 1 - sse / sst,
        }

    def error(self, metrics):
        return metrics["loss"]

    def metric(self, metric, key="trainer.objective"):
        # accuracy (the trainer's default objective) has a regression counterpart: R², higher is better
        if metric.name == "accuracy":
            return Metric(metric.split, "r2")
        return super().metric(metric, key)

    def values(self, output: torch.Tensor) -> torch.Tensor:
        """Predictions in the target's own units."""
        return self._pred(output) * self.y_std + self.y_mean


CLASSIFICATION = Classification()


def make_task(name: str, y_mean: float = 0.0, y_std: float = 1.0) -> Task:
    return Regression(y_mean, y_std) if name == "regression" else Classification()


def task_of(splits) -> Task:
    """The task of a data.Splits (or a data.DataMeta)."""
    return make_task(getattr(splits, "task", "classification"), getattr(splits, "y_mean", 0.0), splits.y_std)


@torch.no_grad()
def evaluate(
    model: nn.Module, split: Split, batch_size: int = 4096, autocast=nullcontext, task: Task | None = None
) -> dict[str, torch.Tensor]:
    """Mean loss and the task's metrics over a split, in eval mode, as device tensors."""
    task = task or CLASSIFICATION
    was_training = model.training
    model.eval()
    loss_sum = torch.zeros((), dtype=torch.float32, device=split.y.device)
    sums = task.zeros(split.y.device)
    n = len(split)
    for xb, yb in split.batches(batch_size):  # slices of the split's tensors (or a streaming split's loader)
        with autocast():
            output = model(xb)
        loss_sum += task.loss_sum(output, yb)
        sums += task.batch_sums(output, yb)
    model.train(was_training)
    return task.finish(loss_sum, sums, n)
