"""Gradient health: statistics checked against direct computations, hooks only on sampled
steps, and the non-finite warning once per run."""

from __future__ import annotations

import math
from collections import OrderedDict

import pytest
import torch
from conftest import make_optimization, make_rc, make_trainer
from torch import nn

from torchprac.data.splits import Split
from torchprac.diagnose.health import HealthMonitor
from torchprac.train import Callback


def _tiny_run(
    act: type[nn.Module],
    callbacks_before: list[Callback] | None = None,
    steps: int = 1,
    every: int = 1,
    lr: float = 0.1,
):
    torch.manual_seed(0)
    model = nn.Sequential(
        OrderedDict(
            flatten=nn.Flatten(),
            layer1=nn.Sequential(OrderedDict(linear=nn.Linear(5, 7), act=act())),
            layer2=nn.Sequential(OrderedDict(linear=nn.Linear(7, 4), act=act())),
            head=nn.Linear(4, 3),
        )
    )
    x, y = torch.randn(40, 5) * 2, torch.randint(0, 3, (40,))
    optim = make_optimization(make_rc(["optimizer=sgd", f"optimizer.lr={lr}"]), model)
    init = {k: v.clone() for k, v in model.state_dict().items()}
    health = HealthMonitor(model, None, every_n_steps=every)
    trainer = make_trainer(
        model,
        optim,
        Split(x, y),
        Split(x, y),
        epochs=1,
        batch_size=40 // steps,
        callbacks=[*(callbacks_before or []), health],
    )
    return model, x, init, health, trainer


@pytest.mark.parametrize("act", [nn.Sigmoid, nn.ReLU, nn.Tanh])
def test_statistics_match_direct_computation(act):
    model, x, init, health, trainer = _tiny_run(act)
    trainer.fit()  # one full-batch SGD step: W1 = W0 - lr g
    s = health.last
    w0, w1 = init["layer1.linear.weight"], model.layer1.linear.weight.detach()
    assert s["health/grad_norm/layer1"] == pytest.approx(float((w1 - w0).norm()) / 0.1, rel=1e-4)
    assert s["health/weight_norm/layer1"] == pytest.approx(float(w1.norm()), rel=1e-5)
    assert s["health/update_ratio/layer1"] == pytest.approx(float((w1 - w0).norm() / w0.norm()), rel=1e-4)
    # activations of the sampled forward = the initial model on the whole batch
    z = x @ w0.T + init["layer1.linear.bias"]
    a = act()(z)
    assert s["health/act_mean/layer1"] == pytest.approx(float(a.mean()), abs=1e-6)
    assert s["health/act_std/layer1"] == pytest.approx(float(a.std()), rel=1e-5)
    if act is nn.Sigmoid:
        assert s["health/saturated/layer1"] == pytest.approx(float((a * (1 - a) < 0.0125).float().mean()))
    elif act is nn.Tanh:
        assert s["health/saturated/layer1"] == pytest.approx(float((1 - a * a < 0.05).float().mean()))
    else:
        assert s["health/dead/layer1"] == pytest.approx(float((z <= 0).all(0).float().mean()))


class _HookCounter(Callback):
    """Records how many forward hooks the activation modules carry at each step."""

    def __init__(self) -> None:
        self.acts: list[nn.Module] = []
        self.counts: list[int] = []

    def on_fit_start(self, trainer) -> None:
        self.acts = [m for m in trainer.model.modules() if isinstance(m, nn.Tanh)]

    def on_before_step(self, trainer) -> None:
        self.counts.append(sum(len(m._forward_hooks) for m in self.acts))


def test_hooks_exist_only_on_sampled_steps():
    counter = _HookCounter()
    _, _, _, _, trainer = _tiny_run(nn.Tanh, [counter], steps=8, every=3)
    trainer.fit()
    # steps 0, 3, 6 sampled: two activation hooks there, none otherwise
    assert counter.counts == [2, 0, 0, 2, 0, 0, 2, 0]
    assert all(len(m._forward_hooks) == 0 for m in counter.acts)  # nothing left behind


class _Poison(Callback):
    def on_before_step(self, trainer) -> None:
        trainer.model.layer1.linear.weight.grad[0, 0] = float("nan")


def test_nonfinite_gradient_warning(caplog):
    _, _, _, health, trainer = _tiny_run(nn.Tanh, [_Poison()])
    trainer.fit()
    assert len(health.warnings) == 1 and health.warnings[0].startswith("non-finite gradients")
    assert "layer1" in health.warnings[0]
    assert math.isnan(health.last["health/grad_norm/layer1"])
    assert "non-finite gradients" in caplog.text


def test_each_warning_once_per_run():
    _, _, _, health, trainer = _tiny_run(nn.Tanh, [_Poison()], steps=4, every=1)
    trainer.fit()
    assert sum(w.startswith("non-finite") for w in health.warnings) == 1
