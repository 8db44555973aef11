"""Every YAML of every group composes and builds the real object it names."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import conf_choices, make_cfg
from torch import nn

from torchprac.config import instantiate
from torchprac.nn import build_model
from torchprac.optim import build_optim


@pytest.mark.parametrize("name", conf_choices("activation"))
def test_activation_builds_real_module(name):
    cfg = make_cfg([f"activation={name}"], "/tmp/unused")
    expected = {
        "sigmoid": nn.Sigmoid,
        "tanh": nn.Tanh,
        "relu": nn.ReLU,
        "leaky_relu": nn.LeakyReLU,
        "prelu": nn.PReLU,
        "elu": nn.ELU,
        "selu": nn.SELU,
        "gelu": nn.GELU,
        "silu": nn.SiLU,
        "softplus": nn.Softplus,
        "identity": nn.Identity,
    }[name]
    model = build_model(cfg, (1, 8, 8), 10)
    acts = [m for m in model.modules() if isinstance(m, expected)]
    assert len(acts) == len(cfg.model.hidden)  # one fresh module per hidden layer
    assert len({id(a) for a in acts}) == len(acts)
    z = torch.linspace(-3, 3, 7)
    ref = {
        "sigmoid": torch.sigmoid,
        "tanh": torch.tanh,
        "relu": torch.relu,
        "identity": lambda t: t,
        "softplus": nn.functional.softplus,
    }.get(name)
    if ref is not None:
        torch.testing.assert_close(acts[0](z), ref(z))


# Expected weight std for a fan_in x fan_out Linear layer, from each scheme's formula.
FAN_IN, FAN_OUT = 400, 300
INIT_STD = {
    "he_normal": math.sqrt(2 / FAN_IN),
    "he_uniform": math.sqrt(2 / FAN_IN),
    "lecun_normal": math.sqrt(1 / FAN_IN),
    "lecun_uniform": math.sqrt(1 / FAN_IN),
    "xavier_normal": math.sqrt(2 / (FAN_IN + FAN_OUT)),
    "xavier_uniform": math.sqrt(2 / (FAN_IN + FAN_OUT)),
    "normal": 0.01,
    "orthogonal": math.sqrt(1 / FAN_IN),  # rows of a semi-orthogonal 300x400 matrix have norm 1
    "zeros": 0.0,
}


@pytest.mark.parametrize("name", conf_choices("init"))
def test_init_matches_formula(name):
    torch.manual_seed(0)
    cfg = make_cfg([f"init={name}", "model.hidden=[300]", "data=blobs", f"data.n_features={FAN_IN}"], "/tmp/unused")
    model = build_model(cfg, (FAN_IN,), 3)
    w = model.layer1.linear.weight
    assert w.shape == (FAN_OUT, FAN_IN)
    assert torch.count_nonzero(model.layer1.linear.bias) == 0  # biases always zero
    std = w.std().item() if name != "zeros" else w.abs().max().item()
    assert std == pytest.approx(INIT_STD[name], rel=0.05, abs=1e-12)
    if name.endswith("uniform"):  # bound r = sqrt(3) * std
        assert w.abs().max().item() <= math.sqrt(3) * INIT_STD[name] + 1e-6
    if name == "orthogonal":
        torch.testing.assert_close(w @ w.T, torch.eye(FAN_OUT), atol=1e-4, rtol=0)


OPT_CLASS = {
    "gd": torch.optim.SGD,
    "sgd": torch.optim.SGD,
    "momentum": torch.optim.SGD,
    "nesterov": torch.optim.SGD,
    "adagrad": torch.optim.Adagrad,
    "rmsprop": torch.optim.RMSprop,
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "nadam": torch.optim.NAdam,
    "adadelta": torch.optim.Adadelta,
    "adamax": torch.optim.Adamax,
}


@pytest.mark.parametrize("name", conf_choices("optimizer"))
def test_optimizer_is_real_torch_class_with_two_groups(name):
    cfg = make_cfg([f"optimizer={name}", "optimizer.weight_decay=0.01", "model.batch_norm=after"], "/tmp/unused")
    model = build_model(cfg, (1, 8, 8), 10)
    bundle = build_optim(cfg, model, steps_per_epoch=10, epochs=2)
    opt = bundle.optimizer
    assert type(opt) is OPT_CLASS[name]
    assert opt.defaults["lr"] == pytest.approx(cfg.optimizer.lr)
    names = [g["name"] for g in opt.param_groups]
    assert names == ["weights", "no_decay"]
    w, nd = opt.param_groups
    assert all(p.ndim >= 2 for p in w["params"]) and all(p.ndim < 2 for p in nd["params"])
    assert w["weight_decay"] == 0.01 and nd["weight_decay"] == 0.0  # no decay on biases / BN
    n_bn = sum(2 for m in model.modules() if isinstance(m, nn.BatchNorm1d))
    n_bias = sum(1 for m in model.modules() if isinstance(m, nn.Linear) and m.bias is not None)
    assert len(nd["params"]) == n_bn + n_bias
    if name == "nesterov":
        assert w["nesterov"] and w["momentum"] == 0.9
    if name == "momentum":
        assert not w["nesterov"] and w["momentum"] == 0.9
    assert bundle.full_batch == (name == "gd")


@pytest.mark.parametrize("name", conf_choices("scheduler"))
def test_scheduler_builds(name):
    cfg = make_cfg([f"scheduler={name}"], "/tmp/unused")
    model = build_model(cfg, (1, 8, 8), 10)
    b = build_optim(cfg, model, steps_per_epoch=10, epochs=5)
    assert b.interval == cfg.scheduler.interval
    if name == "none":
        assert b.scheduler is None
        return
    assert isinstance(b.scheduler, (torch.optim.lr_scheduler.LRScheduler, torch.optim.lr_scheduler.ReduceLROnPlateau))
    total = 50 if b.interval == "step" else 5
    for _ in range(total):  # the whole run's worth of steps must be valid (onecycle raises past total)
        b.optimizer.step()
        if name == "plateau":
            b.scheduler.step(1.0)
        else:
            b.scheduler.step()
    lrs = [g["lr"] for g in b.optimizer.param_groups]
    assert all(lr > 0 for lr in lrs) or name in ("cosine", "warmup_cosine")


@pytest.mark.parametrize("name", conf_choices("clip"))
def test_clip_effect(name):
    cfg = make_cfg([f"clip={name}"], "/tmp/unused")
    model = build_model(cfg, (1, 8, 8), 10)
    b = build_optim(cfg, model, 10, 1)
    for p in model.parameters():
        p.grad = torch.full_like(p, 3.0)
    pre = torch.sqrt(sum((p.grad**2).sum() for p in model.parameters()))
    b.clipper()
    post = torch.sqrt(sum((p.grad**2).sum() for p in model.parameters()))
    if name == "none":
        assert post == pre
    elif name == "norm":
        assert post.item() == pytest.approx(cfg.clip.max_norm, rel=1e-4)
        assert b.clipper.fired_fraction() == 1.0
    else:
        assert all(p.grad.abs().max() <= cfg.clip.clip_value for p in model.parameters())
        assert b.clipper.fired_fraction() == 1.0


@pytest.mark.parametrize("name", conf_choices("model"))
def test_models_shape_from_data(name):
    cfg = make_cfg([f"model={name}", "model.batch_norm=before"], "/tmp/unused")
    for shape in ((1, 8, 8), (1, 40)):
        model = build_model(cfg, shape, 7)
        out = model.eval()(torch.randn(5, *shape))
        assert out.shape == (5, 7)
        if name == "cnn":
            conv = nn.Conv2d if len(shape) == 3 else nn.Conv1d
            assert any(isinstance(m, conv) for m in model.modules())


def test_trainer_default_keys():
    cfg = make_cfg([], "/tmp/unused")
    assert cfg.trainer.device == "auto" and cfg.trainer.early_stopping.restore_best is True
    assert instantiate(cfg.init).func is torch.nn.init.kaiming_normal_
