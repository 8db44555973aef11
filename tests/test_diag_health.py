"""Gradient health: statistics checked against direct computations, hooks only on sampled
steps, and the vanishing / exploding / non-finite / zero-gradient warnings."""

from __future__ import annotations

import math
from collections import OrderedDict

import pytest
import torch
from conftest import make_cfg, run_cfg
from torch import nn

from torchprac.data.splits import Split
from torchprac.diagnose.health import HealthMonitor
from torchprac.optim import build_optim
from torchprac.train import Callback, Trainer

FAST = ["trainer.epochs=1", "trainer.checkpoint.enabled=false", "trainer.health.every_n_steps=5"]
DEEP = "model.hidden=[6,6,6,6,6,6,6,6,6,6]"  # 10 layers (narrow: sigmoid's gradients shrink fastest)


def _scalars(run_dir) -> dict[str, list[float]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    ea = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    ea.Reload()
    return {t: [e.value for e in ea.Scalars(t)] for t in ea.Tags()["scalars"]}


def test_vanishing_warning_for_deep_sigmoid_normal_1(tmp_path, capsys):
    _, m = run_cfg([DEEP, "activation=sigmoid", "init=normal", "init.std=1.0", *FAST], tmp_path)
    warnings = m["health"]["warnings"]
    assert any(w.startswith("vanishing gradients") for w in warnings), warnings
    assert not any(w.startswith("exploding") for w in warnings)
    s = _scalars(tmp_path)
    names = [f"layer{i}" for i in range(1, 11)] + ["head"]
    norms = {n: s[f"health/grad_norm/{n}"][0] for n in names}  # step 0: at initialisation
    with capsys.disabled():  # the numbers the issue asks for
        print(
            "\nvanishing test, per-layer gradient norms at step 0:", " ".join(f"{n}={v:.2e}" for n, v in norms.items())
        )
    assert norms["head"] >= 1000 * norms["layer1"]
    for stat in ("weight_norm", "update_ratio", "act_mean", "act_std", "saturated"):
        assert f"health/{stat}/layer1" in s
    assert "health/dead/layer1" not in s  # dead units are a ReLU-family statistic


def test_no_warning_for_relu_he_normal_on_the_same_net(tmp_path):
    _, m = run_cfg([DEEP, "activation=relu", "init=he_normal", *FAST], tmp_path)
    assert m["health"]["warnings"] == []
    s = _scalars(tmp_path)
    assert "health/dead/layer1" in s and "health/saturated/layer1" not in s


def test_exploding_warning_for_init_scale_10_without_clipping(tmp_path):
    _, m = run_cfg(["init=normal", "init.std=10.0", "clip=none", *FAST], tmp_path)
    assert any(w.startswith("exploding gradients") for w in m["health"]["warnings"]), m["health"]


# -- statistics against direct computations ---------------------------------------------------
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
    cfg = make_cfg(["optimizer=sgd", f"optimizer.lr={lr}"])
    optim = build_optim(cfg, model, steps, 1)
    init = {k: v.clone() for k, v in model.state_dict().items()}
    health = HealthMonitor(model, None, every_n_steps=every)
    trainer = Trainer(
        model,
        optim,
        Split(x, y),
        Split(x, y),
        epochs=1,
        batch_size=40 // steps,
        callbacks=[*(callbacks_before or []), health],
        progress=False,
        histograms=False,
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
