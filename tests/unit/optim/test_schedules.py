"""Schedules give the formula's learning rate at chosen steps; every scheduler choice builds a
real torch scheduler that lasts the whole run and survives a weights_only checkpoint."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import conf_choices, make_rc

from torchprac.files import load_checkpoint, save_atomic
from torchprac.optim.schedules import ExponentialDecayLR, PiecewiseConstantLR, PowerLR


def _opt(lr=0.1):
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=lr)


def _lr_at(sched, opt, t):
    for _ in range(t):
        opt.step()
        sched.step()
    return opt.param_groups[0]["lr"]


def _sched(overrides, opt, total, lr):
    return make_rc(overrides).schedule.build(opt, total, lr)


@pytest.mark.parametrize("t", [0, 1, 10, 100, 999])
def test_power(t):
    opt = _opt(0.1)
    assert _lr_at(PowerLR(opt, s=20, c=0.5), opt, t) == pytest.approx(0.1 / (1 + t / 20) ** 0.5, rel=1e-9)


@pytest.mark.parametrize("t", [0, 7, 50, 300])
def test_exponential(t):
    opt = _opt(0.2)
    assert _lr_at(ExponentialDecayLR(opt, s=50), opt, t) == pytest.approx(0.2 * 0.1 ** (t / 50), rel=1e-9)


@pytest.mark.parametrize("t,expected", [(0, 0.05), (9, 0.05), (10, 0.01), (19, 0.01), (20, 0.002), (99, 0.002)])
def test_piecewise(t, expected):
    opt = _opt(0.05)
    assert _lr_at(PiecewiseConstantLR(opt, [10, 20], [0.05, 0.01, 0.002]), opt, t) == pytest.approx(expected)


def test_yaml_power_and_exponential_follow_formula():
    opt = _opt(0.3)
    s = _sched(["scheduler=power", "scheduler.s=5", "scheduler.c=2", "optimizer.lr=0.3"], opt, total=100, lr=0.3)
    assert _lr_at(s, opt, 15) == pytest.approx(0.3 / (1 + 15 / 5) ** 2)
    opt = _opt(0.3)
    assert _lr_at(_sched(["scheduler=exponential", "scheduler.s=10"], opt, 100, 0.3), opt, 25) == pytest.approx(
        0.3 * 0.1**2.5
    )


def test_onecycle_and_cosine_fill_run_length():
    opt = _opt(0.4)
    s = _sched(["scheduler=onecycle", "optimizer.lr=0.4"], opt, total=40, lr=0.4)
    assert s.total_steps == 40
    peak = max(_lr_at(s, opt, 1) for _ in range(39))
    assert peak == pytest.approx(0.4, rel=0.02)  # max_lr defaults to optimizer.lr
    opt = _opt(1.0)
    s = _sched(["scheduler=cosine"], opt, total=10, lr=1.0)
    assert _lr_at(s, opt, 5) == pytest.approx(0.5 * (1 + math.cos(math.pi * 5 / 10)))


def test_warmup_cosine_rises_then_decays():
    opt = _opt(1.0)
    s = _sched(["scheduler=warmup_cosine", "scheduler.warmup_fraction=0.1"], opt, total=100, lr=1.0)
    lrs = [_lr_at(s, opt, 1) for _ in range(99)]
    top = lrs.index(max(lrs))
    assert 8 <= top <= 11 and max(lrs) == pytest.approx(1.0, rel=1e-3)
    assert lrs[0] < 0.2 and lrs[-1] < 0.01


def test_onecycle_cycles_momentum_only_where_the_optimizer_has_it():
    plain = torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=0.1)
    _sched(["scheduler=onecycle"], plain, 10, 0.1)
    assert plain.param_groups[0]["momentum"] == 0  # plain sgd stays plain sgd
    heavy = torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=0.1, momentum=0.9)
    _sched(["scheduler=onecycle"], heavy, 10, 0.1)
    assert heavy.param_groups[0]["momentum"] == pytest.approx(0.95)  # starts at max_momentum


@pytest.mark.parametrize("name", conf_choices("scheduler"))
def test_scheduler_builds(name):
    rc = make_rc([f"scheduler={name}"])
    assert rc.schedule.name == name and rc.schedule.interval == rc.raw["scheduler"]["interval"]
    opt = _opt(rc.optimizer.lr)
    total = 50 if rc.schedule.interval == "step" else 5
    s = rc.schedule.build(opt, total, rc.optimizer.lr)
    if name == "none":
        assert s is None
        return
    assert isinstance(s, (torch.optim.lr_scheduler.LRScheduler, torch.optim.lr_scheduler.ReduceLROnPlateau))
    for _ in range(total):  # the whole run's worth of steps must be valid (onecycle raises past total)
        opt.step()
        if name == "plateau":
            s.step(1.0)
        else:
            s.step()
    lrs = [g["lr"] for g in opt.param_groups]
    assert all(lr > 0 for lr in lrs) or name in ("cosine", "warmup_cosine")
    if name == "plateau":
        assert rc.schedule.monitor.tag == "loss/dev"  # fed the dev loss


@pytest.mark.parametrize("name", [n for n in conf_choices("scheduler") if n != "none"])
def test_every_scheduler_state_survives_a_weights_only_checkpoint(name, tmp_path):
    """Resume restores the schedule: its state must load under weights_only=True and continue
    with the same learning rates."""
    rc = make_rc([f"scheduler={name}", "optimizer=sgd"])

    def fresh():
        opt = torch.optim.SGD(torch.nn.Linear(4, 3).parameters(), lr=rc.optimizer.lr)
        total = 50 if rc.schedule.interval == "step" else 5
        return opt, rc.schedule.build(opt, total, rc.optimizer.lr)

    def step(opt, s):
        opt.step()
        s.step(*([1.0] if name == "plateau" else []))

    opt_a, a = fresh()
    for _ in range(3 if rc.schedule.interval == "epoch" else 7):
        step(opt_a, a)
    save_atomic({"model": {}, "optimizer": opt_a.state_dict(), "scheduler": a.state_dict()}, tmp_path / "s.pt")
    opt_b, b = fresh()
    ckpt = load_checkpoint(tmp_path / "s.pt")
    opt_b.load_state_dict(ckpt["optimizer"])  # chainable schedules read the current lr from here
    b.load_state_dict(ckpt["scheduler"])
    step(opt_a, a)
    step(opt_b, b)
    assert [g["lr"] for g in opt_a.param_groups] == [g["lr"] for g in opt_b.param_groups]
