"""Callback hooks and MonitorCallback: the one place that decides whether a metric improved,
in the metric's own direction."""

from __future__ import annotations

import math

import pytest

from torchprac.metrics import Metric
from torchprac.train.callbacks import Callback, MonitorCallback, overriding


@pytest.mark.parametrize(
    "monitor,sequence,improved",
    [
        ("dev/loss", [0.5, 0.6, 0.4, 0.4, 0.39], [True, False, True, False, True]),
        ("dev/accuracy", [0.5, 0.4, 0.7, 0.7, 0.71], [True, False, True, False, True]),
    ],
)
def test_is_improvement_in_both_directions(monitor, sequence, improved):
    m = MonitorCallback(monitor)
    assert m.mode == ("min" if monitor == "dev/loss" else "max") and m.best == m.monitor.worst()
    tag = Metric.parse(monitor).tag
    got = [m.observe(epoch, {tag: v}) for epoch, v in enumerate(sequence)]
    assert got == improved
    assert m.best == (min(sequence) if monitor == "dev/loss" else max(sequence))
    assert m.best_epoch == 4


def test_min_delta_and_non_finite_values_are_no_improvement():
    lo, hi = MonitorCallback("dev/loss", min_delta=0.1), MonitorCallback("dev/accuracy", min_delta=0.1)
    lo.best, hi.best = 1.0, 0.5
    assert not lo.is_improvement(0.95) and lo.is_improvement(0.85)
    assert not hi.is_improvement(0.55) and hi.is_improvement(0.65)
    assert not lo.is_improvement(math.nan) and not hi.is_improvement(math.inf)
    assert not MonitorCallback("dev/loss").is_improvement(-math.inf)


def test_state_round_trip():
    a = MonitorCallback("dev/accuracy")
    a.observe(3, {"metric/accuracy_dev": 0.8})
    b = MonitorCallback("dev/accuracy")
    b.load_state_dict(a.state_dict())
    assert (b.best, b.best_epoch) == (0.8, 3) and not b.is_improvement(0.8)


def test_only_overridden_hooks_are_called():
    class OnLog(Callback):
        def on_log(self, trainer, logs) -> None: ...

    cbs = [OnLog(), Callback(), MonitorCallback()]
    assert len(overriding(cbs, "on_log")) == 1 and overriding(cbs, "on_before_step") == []
