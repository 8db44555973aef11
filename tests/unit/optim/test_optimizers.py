"""The optimizer group: each choice is the real torch.optim class with two parameter groups
(weight decay on weights only)."""

from __future__ import annotations

import pytest
import torch
from conftest import conf_choices, make_model, make_optimization
from torch import nn

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
    rc, model = make_model(
        [f"optimizer={name}", "optimizer.weight_decay=0.01", "model.batch_norm=after"], (1, 8, 8), 10
    )
    opt = make_optimization(rc, model).optimizer
    assert type(opt) is OPT_CLASS[name]
    assert opt.defaults["lr"] == pytest.approx(rc.optimizer.lr)
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
    assert rc.optimizer.full_batch == (name == "gd")
