"""The activation group: each choice builds the real torch module, a fresh one per layer."""

from __future__ import annotations

import pytest
import torch
from conftest import conf_choices, make_model
from torch import nn

EXPECTED = {
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
}
REFERENCE = {
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "relu": torch.relu,
    "identity": lambda t: t,
    "softplus": nn.functional.softplus,
}


@pytest.mark.parametrize("name", conf_choices("activation"))
def test_activation_builds_real_module(name):
    rc, model = make_model([f"activation={name}"], (1, 8, 8), 10)
    acts = [m for m in model.modules() if isinstance(m, EXPECTED[name])]
    assert len(acts) == len(rc.model.hidden)  # one fresh module per hidden layer
    assert len({id(a) for a in acts}) == len(acts)
    ref = REFERENCE.get(name)
    if ref is not None:
        z = torch.linspace(-3, 3, 7)
        torch.testing.assert_close(acts[0](z), ref(z))


def test_parameters_reach_the_module():
    _, model = make_model(["activation=leaky_relu", "activation.negative_slope=0.2"], (4,), 2)
    assert {m.negative_slope for m in model.modules() if isinstance(m, nn.LeakyReLU)} == {0.2}
    _, model = make_model(["activation=elu", "activation.alpha=0.5"], (4,), 2)
    assert {m.alpha for m in model.modules() if isinstance(m, nn.ELU)} == {0.5}
