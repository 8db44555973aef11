"""Batch norm placement (before/after the activation) in mlp and cnn, and its train/eval
behaviour against the formula: batch statistics in training, running statistics in eval."""

from __future__ import annotations

import pytest
import torch
from conftest import make_cfg
from torch import nn

from torchprac.nn import build_model

EPS_CHECK = dict(atol=1e-5, rtol=1e-4)


def _model(name: str, placement: str) -> nn.Module:
    ov = [f"model={name}", f"model.batch_norm={placement}", "model.hidden=[16]", "activation=relu"]
    if name == "cnn":
        ov.append("model.channels=[4]")
    torch.manual_seed(0)
    return build_model(make_cfg(ov), (1, 8, 8), 10)


def _blocks(model: nn.Module) -> list[nn.Sequential]:
    return [m for m in model.children() if isinstance(m, nn.Sequential) and "bn" in m._modules]


def _capture(model: nn.Module) -> dict[int, tuple[torch.Tensor, torch.Tensor]]:
    """BN module id -> (input, output) of its last forward."""
    seen: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.register_forward_hook(lambda mod, i, o: seen.__setitem__(id(mod), (i[0].detach(), o.detach())))
    return seen


def _dims(x: torch.Tensor) -> tuple[int, ...]:
    return (0,) if x.ndim == 2 else (0, *range(2, x.ndim))  # per feature / per channel


def _shape(bn: nn.Module, x: torch.Tensor) -> tuple[int, ...]:
    return (1, bn.num_features) + (1,) * (x.ndim - 2)


@pytest.mark.parametrize("placement", ["before", "after"])
@pytest.mark.parametrize("name", ["mlp", "cnn"])
def test_batch_norm_placement(name, placement):
    model = _model(name, placement)
    blocks = _blocks(model)
    assert len(blocks) == (2 if name == "cnn" else 1)  # conv block + fc block for the cnn
    for b in blocks:
        order = [k for k in b._modules if k in ("linear", "bn", "act")]
        assert order == (["linear", "bn", "act"] if placement == "before" else ["linear", "act", "bn"])
        # BN right before the activation makes the layer's bias redundant (beta replaces it)
        assert (b.linear.bias is None) == (placement == "before")
    none = _model(name, "none")
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in none.modules())


@pytest.mark.parametrize("placement", ["before", "after"])
@pytest.mark.parametrize("name", ["mlp", "cnn"])
def test_batch_norm_uses_batch_stats_in_training_and_running_stats_in_eval(name, placement):
    model = _model(name, placement)
    seen = _capture(model)
    bns = [b.bn for b in _blocks(model)]
    with torch.no_grad():  # non-trivial affine parameters, so gamma/beta are checked too
        for bn in bns:
            bn.weight.uniform_(0.5, 2.0)
            bn.bias.uniform_(-1.0, 1.0)
    x = torch.randn(64, 1, 8, 8) * 2 + 1

    model.train()
    model(x)
    for bn in bns:
        inp, out = seen[id(bn)]
        if placement == "after":
            assert (inp >= 0).all()  # after the ReLU: its input is the activation's output
        d, s = _dims(inp), _shape(bn, inp)
        mu, var = inp.mean(d, keepdim=True), inp.var(d, unbiased=False, keepdim=True)
        expected = (inp - mu) / torch.sqrt(var + bn.eps) * bn.weight.view(s) + bn.bias.view(s)
        torch.testing.assert_close(out, expected, **EPS_CHECK)
        # running stats moved toward the batch's: (1 - m) * init + m * batch (unbiased var)
        m = bn.momentum
        torch.testing.assert_close(bn.running_mean, m * mu.flatten(), **EPS_CHECK)
        torch.testing.assert_close(bn.running_var, (1 - m) + m * inp.var(d, unbiased=True), **EPS_CHECK)

    model.eval()
    full = model(x)
    for bn in bns:
        inp, out = seen[id(bn)]
        s = _shape(bn, inp)
        expected = (inp - bn.running_mean.view(s)) / torch.sqrt(bn.running_var.view(s) + bn.eps) * bn.weight.view(
            s
        ) + bn.bias.view(s)
        torch.testing.assert_close(out, expected, **EPS_CHECK)
    # eval: an example's output no longer depends on the rest of its batch
    torch.testing.assert_close(model(x[:3]), full[:3], **EPS_CHECK)
    model.train()
    assert not torch.allclose(model(x[:3]), full[:3], atol=1e-3)
