"""Inverted dropout and alpha dropout against their definitions, and the per-layer wiring."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import make_cfg
from torch import nn

from torchprac.nn import InvertedDropout, build_model

Z = 5.0  # z-score bound for the statistical checks (false-failure odds ~ 1e-6 each)


@pytest.mark.parametrize("keep_prob", [0.2, 0.5, 0.8])
def test_kept_fraction_and_mean_are_unbiased(keep_prob):
    torch.manual_seed(0)
    d = InvertedDropout(keep_prob).train()
    x = torch.rand(256) + 0.5  # strictly positive: a zero output means "dropped"
    draws = 4000
    out = d(x.expand(draws, -1).contiguous())  # one independent mask per row
    kept = out != 0
    n = kept.numel()
    frac = kept.float().mean().item()
    assert abs(frac - keep_prob) < Z * math.sqrt(keep_prob * (1 - keep_prob) / n)
    # kept units are scaled by exactly 1/keep_prob
    torch.testing.assert_close(out[kept], (x.expand(draws, -1) / keep_prob)[kept])
    # E[out] = x per unit: mean over draws, bound from out's variance x^2 (1-p)/p
    mean = out.mean(0)
    sd = x * math.sqrt((1 - keep_prob) / keep_prob / draws)
    assert ((mean - x).abs() < Z * sd).all()


def test_eval_is_exact_identity_and_keep_prob_one_is_identity():
    x = torch.randn(64, 32)
    d = InvertedDropout(0.5).eval()
    assert d(x) is x
    assert InvertedDropout(1.0).train()(x) is x


def test_gradient_is_zero_exactly_on_dropped_units():
    torch.manual_seed(1)
    x = (torch.rand(128, 64) + 0.5).requires_grad_()
    out = InvertedDropout(0.6).train()(x)
    upstream = torch.randn_like(out)
    out.backward(upstream)
    dropped = out == 0
    assert dropped.any() and (~dropped).any()
    assert torch.equal(x.grad[dropped], torch.zeros(int(dropped.sum())))
    torch.testing.assert_close(x.grad[~dropped], upstream[~dropped] / 0.6)


@pytest.mark.parametrize("bad", [0.0, -0.1, 1.5])
def test_keep_prob_out_of_range_is_refused(bad):
    with pytest.raises(ValueError, match="keep_prob"):
        InvertedDropout(bad)


def _drops(model: nn.Module) -> dict[str, nn.Module]:
    return {n: m for n, m in model.named_modules() if isinstance(m, (InvertedDropout, nn.AlphaDropout))}


def test_per_layer_keep_prob_list_lands_on_the_right_layers_mlp():
    cfg = make_cfg(
        [
            "model.hidden=[32,16,8]",
            "reg=[dropout]",
            "reg.dropout.keep_prob=[0.9,0.7,0.5]",
            "reg.dropout.input_keep_prob=0.8",
        ]
    )
    model = build_model(cfg, (1, 8, 8), 10)
    got = {n: m.keep_prob for n, m in _drops(model).items()}
    assert got == {"input_drop0": 0.8, "layer1.drop": 0.9, "layer2.drop": 0.7, "layer3.drop": 0.5}
    # dropout comes after the activation, inside its hidden layer; the head has none
    for i in (1, 2, 3):
        assert list(getattr(model, f"layer{i}")._modules) == ["linear", "act", "drop"]
    assert list(model._modules)[:2] == ["flatten", "input_drop0"]

    # and each layer really drops at its own rate (hook on the module's output)
    torch.manual_seed(0)
    seen: dict[str, float] = {}
    for name, m in _drops(model).items():
        m.register_forward_hook(
            lambda mod, inp, out, name=name: seen.__setitem__(
                name, ((out == 0) & (inp[0] != 0)).sum().item() / max((inp[0] != 0).sum().item(), 1)
            )
        )
    model.train()(torch.rand(4096, 1, 8, 8) + 0.1)
    for name, kp in got.items():
        assert seen[name] == pytest.approx(1 - kp, abs=0.03), name


def test_scalar_keep_prob_applies_to_every_hidden_layer_and_not_input():
    cfg = make_cfg(["model.hidden=[32,16]", "reg=[dropout]", "reg.dropout.keep_prob=0.6"])
    got = {n: m.keep_prob for n, m in _drops(build_model(cfg, (1, 8, 8), 10)).items()}
    assert got == {"layer1.drop": 0.6, "layer2.drop": 0.6}  # input_keep_prob defaults to 1.0


def test_per_layer_keep_prob_list_cnn_goes_to_fully_connected_layers():
    cfg = make_cfg(
        ["model=cnn", "model.channels=[4,8]", "model.hidden=[16,8]", "reg=[dropout]", "reg.dropout.keep_prob=[0.6,0.7]"]
    )
    got = {n: m.keep_prob for n, m in _drops(build_model(cfg, (1, 8, 8), 10)).items()}
    assert got == {"fc1.drop": 0.6, "fc2.drop": 0.7}


def test_no_dropout_modules_without_reg():
    assert _drops(build_model(make_cfg(["reg=[l2]"]), (1, 8, 8), 10)) == {}


def test_alpha_dropout_builds_torch_alpha_dropout_and_keeps_selu_statistics():
    cfg = make_cfg(
        [
            "activation=selu",
            "init=lecun_normal",
            "model.hidden=[32,32]",
            "reg=[alpha_dropout]",
            "reg.alpha_dropout.keep_prob=0.9",
        ]
    )
    model = build_model(cfg, (1, 8, 8), 10)
    drops = _drops(model)
    assert set(drops) == {"layer1.drop", "layer2.drop"}
    assert all(type(m) is nn.AlphaDropout and m.p == pytest.approx(0.1) for m in drops.values())
    assert not any(isinstance(m, InvertedDropout) for m in model.modules())
    # AlphaDropout keeps zero mean / unit variance of standard-normal input (not inverted dropout)
    torch.manual_seed(0)
    x = torch.randn(200_000)
    a = drops["layer1.drop"].train()
    y = a(x)
    assert abs(y.mean().item()) < 0.02 and abs(y.std().item() - 1) < 0.02
    # dropped units all take the same saturation value (an affine map of SELU's -lambda*alpha)
    _, counts = y.unique(return_counts=True)
    assert counts.max().item() / y.numel() == pytest.approx(0.1, abs=0.01)
    assert torch.equal(a.eval()(x), x)
