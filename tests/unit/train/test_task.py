"""train/task.py: the regression metrics the Trainer and evaluate() report equal scikit-learn's
on the same predictions (RMSE and MAE in the target's units, R² per split), and classification
keeps cross-entropy and accuracy."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score
from torch import nn

from torchprac.data.splits import Split
from torchprac.errors import ConfigError
from torchprac.metrics import Metric
from torchprac.train.task import Classification, Regression, evaluate, make_task


class _Fixed(nn.Module):
    """Returns fixed outputs for the examples x (an index column)."""

    def __init__(self, out: torch.Tensor) -> None:
        super().__init__()
        self.out = out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out[x[:, 0].long()]


def test_regression_metrics_equal_sklearn_in_target_units():
    g = torch.Generator().manual_seed(0)
    y_mean, y_std = 150.0, 40.0
    z = torch.randn(101, generator=g)  # standardised targets
    out = (z + 0.3 * torch.randn(101, generator=g) + 0.1).reshape(-1, 1)  # model outputs (standardised)
    task = Regression(y_mean, y_std)
    split = Split(torch.arange(101.0)[:, None], z)
    ev = evaluate(_Fixed(out), split, batch_size=16, task=task)  # several batches: sums across them
    y, pred = (z * y_std + y_mean).numpy(), task.values(out).numpy()
    assert float(ev["rmse"]) == pytest.approx(math.sqrt(mean_squared_error(y, pred)), rel=1e-5)
    assert float(ev["mae"]) == pytest.approx(mean_absolute_error(y, pred), rel=1e-5)
    assert float(ev["r2"]) == pytest.approx(r2_score(y, pred), rel=1e-5)
    assert float(ev["loss"]) == pytest.approx(mean_squared_error(z.numpy(), out[:, 0].numpy()), rel=1e-5)

    # the host-side path (an interval's running sums, as the Trainer reads them) agrees
    sums = task.zeros(torch.device("cpu"))
    loss_sum = 0.0
    for i in range(0, 101, 32):
        o, t = out[i : i + 32], z[i : i + 32]
        sums += task.batch_sums(o, t)
        loss_sum += float(task.loss(o, t)) * len(t)
    logs = task.metrics(loss_sum / 101, sums.tolist(), 101)
    for k in ("rmse", "mae", "r2"):
        assert logs[k] == pytest.approx(float(ev[k]), rel=1e-5)


def test_classification_is_cross_entropy_and_accuracy():
    out = torch.tensor([[2.0, 0.0], [0.0, 1.0], [3.0, -1.0]])
    y = torch.tensor([0, 0, 0])
    ev = evaluate(_Fixed(out), Split(torch.arange(3.0)[:, None], y), task=Classification())
    assert float(ev["accuracy"]) == pytest.approx(2 / 3)
    assert float(ev["loss"]) == pytest.approx(float(nn.functional.cross_entropy(out, y)))
    assert Classification().error({"accuracy": 0.9}) == pytest.approx(0.1)


def test_monitored_metrics_follow_the_task():
    reg, cls = make_task("regression", 0, 1), make_task("classification")
    assert reg.metric(Metric("dev", "accuracy")) == Metric("dev", "r2")  # the default objective
    assert reg.metric(Metric.parse("dev/rmse")).mode == "min" and Metric.parse("dev/r2").mode == "max"
    with pytest.raises(ConfigError, match="dev/loss or one of dev/accuracy"):
        cls.metric(Metric.parse("dev/r2"))
    assert np.isnan(reg.metrics(0.5, [1.0, 2.0, 4.0], 1)["r2"])  # one example: no variance, R² undefined
