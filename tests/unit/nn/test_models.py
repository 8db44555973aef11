"""Model builders: shapes from the data, batch norm placement (before/after the activation) and
its train/eval behaviour against the formula, and where the dropout layers of reg land."""

from __future__ import annotations

import pytest
import torch
from conftest import conf_choices, make_model
from torch import nn

from torchprac.errors import ConfigError
from torchprac.nn import InvertedDropout
from torchprac.nn.models import check_memory, dense_parameter_count

EPS_CHECK = dict(atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("name", conf_choices("model"))
def test_models_shape_from_data(name):
    for shape in ((1, 8, 8), (1, 40)):
        _, model = make_model([f"model={name}", "model.batch_norm=before"], shape, 7)
        out = model.eval()(torch.randn(5, *shape))
        assert out.shape == (5, 7)
        if name == "cnn":
            conv = nn.Conv2d if len(shape) == 3 else nn.Conv1d
            assert any(isinstance(m, conv) for m in model.modules())
        assert list(model._modules)[-1] == "head"  # transfer learning reuses all but the head


def test_dense_parameter_count_and_memory_check():
    assert dense_parameter_count(64, [128, 64], 10) == 64 * 128 + 128 + 128 * 64 + 64 + 64 * 10 + 10
    with pytest.raises(ConfigError) as e:
        check_memory(10**15, "model.hidden", [10**7])
    assert e.value.key == "model.hidden" and "parameters" in str(e.value)


# -- batch norm --------------------------------------------------------------------------------
def _model(name: str, placement: str) -> nn.Module:
    ov = [f"model={name}", f"model.batch_norm={placement}", "model.hidden=[16]", "activation=relu"]
    if name == "cnn":
        ov.append("model.channels=[4]")
    torch.manual_seed(0)
    return make_model(ov, (1, 8, 8), 10)[1]


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


def test_cnn_shape_probe_leaves_batch_norm_statistics_untouched():
    model = _model("cnn", "before")
    for bn in (m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)):
        assert int(bn.num_batches_tracked) == 0 and torch.equal(bn.running_mean, torch.zeros_like(bn.running_mean))


# -- dropout layers (reg=[dropout] / [alpha_dropout]) ----------------------------------------
def _drops(model: nn.Module) -> dict[str, nn.Module]:
    return {n: m for n, m in model.named_modules() if isinstance(m, (InvertedDropout, nn.AlphaDropout))}


def test_per_layer_keep_prob_list_lands_on_the_right_layers_mlp():
    _, model = make_model(
        [
            "model.hidden=[32,16,8]",
            "reg=[dropout]",
            "reg.dropout.keep_prob=[0.9,0.7,0.5]",
            "reg.dropout.input_keep_prob=0.8",
        ],
        (1, 8, 8),
        10,
    )
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
    _, model = make_model(["model.hidden=[32,16]", "reg=[dropout]", "reg.dropout.keep_prob=0.6"], (1, 8, 8), 10)
    got = {n: m.keep_prob for n, m in _drops(model).items()}
    assert got == {"layer1.drop": 0.6, "layer2.drop": 0.6}  # input_keep_prob defaults to 1.0


def test_per_layer_keep_prob_list_cnn_goes_to_fully_connected_layers():
    ov = [
        "model=cnn",
        "model.channels=[4,8]",
        "model.hidden=[16,8]",
        "reg=[dropout]",
        "reg.dropout.keep_prob=[0.6,0.7]",
    ]
    got = {n: m.keep_prob for n, m in _drops(make_model(ov, (1, 8, 8), 10)[1]).items()}
    assert got == {"fc1.drop": 0.6, "fc2.drop": 0.7}


def test_no_dropout_modules_without_reg():
    assert _drops(make_model(["reg=[l2]"], (1, 8, 8), 10)[1]) == {}


def test_alpha_dropout_builds_torch_alpha_dropout_and_keeps_selu_statistics():
    ov = [
        "activation=selu",
        "init=lecun_normal",
        "model.hidden=[32,32]",
        "reg=[alpha_dropout]",
        "reg.alpha_dropout.keep_prob=0.9",
    ]
    _, model = make_model(ov, (1, 8, 8), 10)
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
