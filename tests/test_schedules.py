"""Schedules give the formula's learning rate at chosen steps."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import make_cfg

from torchprac.optim import build_scheduler
from torchprac.optim.schedules import ExponentialDecayLR, PiecewiseConstantLR, PowerLR


def _opt(lr=0.1):
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=lr)


def _lr_at(sched, opt, t):
    for _ in range(t):
        opt.step()
        sched.step()
    return opt.param_groups[0]["lr"]


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
    cfg = make_cfg(["scheduler=power", "scheduler.s=5", "scheduler.c=2", "optimizer.lr=0.3"], "/tmp/x")
    opt = _opt(0.3)
    s = build_scheduler(cfg.scheduler, opt, total=100, lr=0.3)
    assert _lr_at(s, opt, 15) == pytest.approx(0.3 / (1 + 15 / 5) ** 2)
    cfg = make_cfg(["scheduler=exponential", "scheduler.s=10"], "/tmp/x")
    opt = _opt(0.3)
    assert _lr_at(build_scheduler(cfg.scheduler, opt, 100, 0.3), opt, 25) == pytest.approx(0.3 * 0.1**2.5)


def test_onecycle_and_cosine_fill_run_length():
    cfg = make_cfg(["scheduler=onecycle", "optimizer.lr=0.4"], "/tmp/x")
    opt = _opt(0.4)
    s = build_scheduler(cfg.scheduler, opt, total=40, lr=0.4)
    assert s.total_steps == 40
    peak = max(_lr_at(s, opt, 1) for _ in range(39))
    assert peak == pytest.approx(0.4, rel=0.02)  # max_lr defaults to optimizer.lr
    cfg = make_cfg(["scheduler=cosine"], "/tmp/x")
    opt = _opt(1.0)
    s = build_scheduler(cfg.scheduler, opt, total=10, lr=1.0)
    assert _lr_at(s, opt, 5) == pytest.approx(0.5 * (1 + math.cos(math.pi * 5 / 10)))


def test_warmup_cosine_rises_then_decays():
    cfg = make_cfg(["scheduler=warmup_cosine", "scheduler.warmup_fraction=0.1"], "/tmp/x")
    opt = _opt(1.0)
    s = build_scheduler(cfg.scheduler, opt, total=100, lr=1.0)
    lrs = [_lr_at(s, opt, 1) for _ in range(99)]
    top = lrs.index(max(lrs))
    assert 8 <= top <= 11 and max(lrs) == pytest.approx(1.0, rel=1e-3)
    assert lrs[0] < 0.2 and lrs[-1] < 0.01
