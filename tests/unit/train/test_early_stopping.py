"""Early stopping: patience in epochs, the best epoch's weights restored at the end of fit (also
when stopping never fired), the monitor's direction respected."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from torchprac.metrics import Status
from torchprac.train import EarlyStopping, FitResult


class _Stub:
    """The part of a Trainer early stopping sees: epoch count, model, stop()."""

    def __init__(self) -> None:
        self.model = torch.nn.Linear(1, 1)
        self.epoch = 0
        self.stopped: str | None = None

    def stop(self, reason: str) -> None:
        self.stopped = reason

    def end_epoch(self, es: EarlyStopping, tag: str, value: float) -> None:
        self.epoch += 1
        with torch.no_grad():
            self.model.weight.fill_(value)  # weights that remember the epoch's value
        es.on_epoch_end(self, {tag: value})


def test_patience_and_min_delta_on_accuracy():
    es = EarlyStopping("dev/accuracy", patience=2, min_delta=0.01)
    t = _Stub()
    t.end_epoch(es, "metric/accuracy_dev", 0.5)
    t.end_epoch(es, "metric/accuracy_dev", 0.505)  # within min_delta: no improvement
    assert t.stopped is None and es.wait == 1
    t.end_epoch(es, "metric/accuracy_dev", 0.4)
    assert t.stopped is not None and "did not improve for 2 epochs" in t.stopped
    assert es.best_epoch == 0 and es.best == 0.5


def test_best_weights_restored_at_fit_end_also_when_never_fired():
    es = EarlyStopping("dev/loss", patience=100)
    t = _Stub()
    for v in (0.9, 0.3, 0.6, 0.7):
        t.end_epoch(es, "loss/dev", v)
    assert t.stopped is None
    result = FitResult(Status.COMPLETED, 4, 3, "completed 4 epochs")
    es.on_fit_end(t, result)
    assert es.restored and result.best_epoch == 1
    assert float(t.model.weight.detach()) == pytest.approx(0.3)  # the best epoch's weights, not the last's
    assert "best dev/loss 0.3000 at epoch 2" in result.message


def test_restore_best_false_keeps_the_last_epoch():
    es = EarlyStopping("dev/loss", patience=100, restore_best=False)
    t = _Stub()
    for v in (0.3, 0.6):
        t.end_epoch(es, "loss/dev", v)
    result = FitResult(Status.COMPLETED, 2, 1, "")
    es.on_fit_end(t, result)
    assert not es.restored and result.best_epoch == 1 and float(t.model.weight.detach()) == pytest.approx(0.6)


def test_disabled_never_stops_but_still_tracks_the_best():
    es = EarlyStopping("dev/loss", patience=1, enabled=False)
    t = _Stub()
    for v in (0.3, 0.6, 0.7):
        t.end_epoch(es, "loss/dev", v)
    assert t.stopped is None and es.best_epoch == 0


def test_state_round_trip_keeps_wait_and_best_weights():
    es = EarlyStopping("dev/loss", patience=5)
    t = _Stub()
    for v in (0.3, 0.6):
        t.end_epoch(es, "loss/dev", v)
    other = EarlyStopping("dev/loss", patience=5)
    other.load_state_dict(es.state_dict())
    assert other.wait == 1 and other.best == 0.3 and float(other.best_state["weight"]) == pytest.approx(0.3)
    assert SimpleNamespace(**other.state_dict()).best_epoch == 0
