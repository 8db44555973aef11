"""LRSchedulerCallback: torch schedulers stepped at their interval; plateau fed the dev metric."""

from __future__ import annotations

import pytest
import torch
from conftest import CPU, make_optimization, make_rc, make_schedule

from torchprac.data import build_data
from torchprac.run import build_loop, build_model
from torchprac.train import LRSchedulerCallback, Trainer


def _fit(overrides, epochs=2):
    rc = make_rc(overrides + [f"trainer.epochs={epochs}"])
    torch.manual_seed(0)
    s = build_data(rc.data, 0, CPU)
    model = build_model(rc, s.input_shape, s.num_classes, CPU)
    optim = make_optimization(rc, model)
    loop = build_loop(rc, len(s.train))
    sched = make_schedule(rc, optim, -(-len(s.train) // loop.batch_size), epochs)
    cb = LRSchedulerCallback(sched, rc.schedule.interval, rc.schedule.monitor)
    tr = Trainer(model, optim, s.train, s.dev, loop, callbacks=[cb])
    return rc, optim, sched, tr


@pytest.mark.parametrize("interval,expected_steps", [("step", 2 * 17), ("epoch", 2)])
def test_scheduler_stepped_at_its_interval(interval, expected_steps):
    # exponential: lr = lr0 * 0.1^(t/s); after a 2-epoch fit t counts steps or epochs by interval
    rc, optim, _, tr = _fit(["scheduler=exponential", f"scheduler.interval={interval}", "scheduler.s=10"])
    tr.fit()
    lr = optim.optimizer.param_groups[0]["lr"]
    assert lr == pytest.approx(rc.optimizer.lr * 0.1 ** (expected_steps / 10), rel=1e-9)


def test_plateau_is_fed_the_dev_loss():
    _, optim, sched, tr = _fit(["scheduler=plateau", "scheduler.patience=0", "scheduler.factor=0.5"], epochs=3)
    seen = []
    orig = sched.step
    sched.step = lambda metric: seen.append(metric) or orig(metric)
    tr.fit()
    assert seen == pytest.approx([h["loss/dev"] for h in tr.history])


def test_plateau_on_accuracy_is_fed_the_dev_accuracy():
    _, _, sched, tr = _fit(
        ["scheduler=plateau", "scheduler.monitor=dev/accuracy", "scheduler.mode=max", "data=moons"], epochs=2
    )
    seen = []
    orig = sched.step
    sched.step = lambda metric: seen.append(metric) or orig(metric)
    tr.fit()
    assert seen == pytest.approx([h["metric/accuracy_dev"] for h in tr.history])
