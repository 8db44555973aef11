"""The init group: every scheme's weight statistics match its formula; biases are zero."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import conf_choices, make_model

# Expected weight std for a fan_in x fan_out Linear layer, from each scheme's formula.
FAN_IN, FAN_OUT = 400, 300
INIT_STD = {
    "he_normal": math.sqrt(2 / FAN_IN),
    "he_uniform": math.sqrt(2 / FAN_IN),
    "lecun_normal": math.sqrt(1 / FAN_IN),
    "lecun_uniform": math.sqrt(1 / FAN_IN),
    "xavier_normal": math.sqrt(2 / (FAN_IN + FAN_OUT)),
    "xavier_uniform": math.sqrt(2 / (FAN_IN + FAN_OUT)),
    "standard_uniform": math.sqrt(1 / (3 * FAN_IN)),  # U(±1/sqrt(fan_in))
    "normal": 0.01,
    "orthogonal": math.sqrt(1 / FAN_IN),  # rows of a semi-orthogonal 300x400 matrix have norm 1
    "zeros": 0.0,
}


@pytest.mark.parametrize("name", conf_choices("init"))
def test_init_matches_formula(name):
    torch.manual_seed(0)
    _, model = make_model([f"init={name}", "model.hidden=[300]"], (FAN_IN,), 3)
    w = model.layer1.linear.weight
    assert w.shape == (FAN_OUT, FAN_IN)
    assert torch.count_nonzero(model.layer1.linear.bias) == 0  # biases always zero
    std = w.std().item() if name != "zeros" else w.abs().max().item()
    assert std == pytest.approx(INIT_STD[name], rel=0.05, abs=1e-12)
    if name.endswith("uniform"):  # bound r = sqrt(3) * std
        assert w.abs().max().item() <= math.sqrt(3) * INIT_STD[name] + 1e-6
    if name == "orthogonal":
        torch.testing.assert_close(w @ w.T, torch.eye(FAN_OUT), atol=1e-4, rtol=0)
