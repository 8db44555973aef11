"""The metrics.json body: the objective a sweeper receives, worst for runs that did not finish."""

from __future__ import annotations

import math

from torchprac.metrics import Metric, Status
from torchprac.report.results import objective_of


def test_diverged_or_failed_objective_ranks_last_for_the_sweeper():
    acc, loss = Metric("dev", "accuracy"), Metric("dev", "loss")
    assert objective_of(acc, {"dev": {"accuracy": 0.9}}, Status.DIVERGED)["value"] == -math.inf
    assert objective_of(loss, {}, Status.FAILED) == {"name": "dev/loss", "value": math.inf, "mode": "min"}
    assert objective_of(acc, {"dev": {"accuracy": 0.9}}, Status.COMPLETED) == {
        "name": "dev/accuracy",
        "value": 0.9,
        "mode": "max",
    }
