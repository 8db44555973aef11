"""Gradient check: passes on every model x activation x reg combination the presets use, fails
(naming the tensor) on a deliberately wrong backward, and is not fooled by kinks."""

from __future__ import annotations

import json
from collections import OrderedDict

import pytest
import torch
from conftest import CONF, make_cfg, run_cfg
from torch import nn

from torchprac.config import reg_cfg
from torchprac.diagnose.gradcheck import check_gradients, run_gradcheck, verdict
from torchprac.errors import GradcheckError
from torchprac.nn import build_model

INPUT_SHAPES = {"digits": (1, 8, 8), "circles": (2,), "moons": (2,), "fashion_mnist": (1, 28, 28)}
PRESETS = sorted(p.stem for p in (CONF / "experiment").glob("*.yaml"))


class _Batch:
    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.x, self.y = x, y


def _check_cfg(overrides: list[str], n_classes: int = 3, **kw):
    cfg = make_cfg(overrides)
    shape = INPUT_SHAPES[cfg.data.name]
    torch.manual_seed(0)
    model = build_model(cfg, shape, n_classes)
    x, y = torch.randn(32, *shape), torch.randint(0, n_classes, (32,))
    return run_gradcheck(cfg, model, _Batch(x, y), reg_cfg(cfg), **kw)


@pytest.mark.parametrize("preset", PRESETS)
def test_gradcheck_passes_for_each_preset_model(preset):
    report = _check_cfg([f"experiment={preset}"], coords_per_tensor=8)
    assert report.passed, report.table()
    # tiny: below the finite-difference resolution (the vanishing preset's early layers)
    assert all(r.verdict in ("ok", "kink", "tiny") for r in report.rows), report.table()
    assert any(r.verdict == "tiny" for r in report.rows) == (preset == "vanishing_sigmoid")


@pytest.mark.parametrize(
    "overrides",
    [
        ["model=cnn", "model.channels=[3,4]", "model.hidden=[6]", "model.batch_norm=before", "reg=[l1,l2]"],
        ["activation=tanh", "init=xavier_normal", "reg=[elastic,dropout,max_norm]", "model.batch_norm=after"],
        ["activation=leaky_relu", "reg=[l1]", "model.hidden=[16,16]"],
        ["activation=gelu", "optimizer=adam", "reg=[l2,augment]", "model.hidden=[16]"],
    ],
)
def test_gradcheck_passes_for_other_combinations(overrides):
    report = _check_cfg(overrides, coords_per_tensor=8)
    assert report.passed, report.table()


def test_verdict_bands():
    assert [verdict(v) for v in (1e-9, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, float("nan"))] == [
        "ok",
        "ok",
        "check",
        "check",
        "suspect",
        "suspect",
        "bug",
        "bug",
    ]


class _DoubleWeightGrad(torch.autograd.Function):
    """y = x W^T + b whose backward returns 2x the true dL/dW (input and bias grads are right)."""

    @staticmethod
    def forward(ctx, x, w, b):
        ctx.save_for_backward(x, w)
        return x @ w.T + b

    @staticmethod
    def backward(ctx, g):
        x, w = ctx.saved_tensors
        return g @ w, 2.0 * g.T @ x, g.sum(0)


class BadLinear(nn.Linear):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _DoubleWeightGrad.apply(x, self.weight, self.bias)


def _bad_model(n_in: int = 5, n_out: int = 3) -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        OrderedDict(
            flatten=nn.Flatten(),
            layer1=nn.Sequential(OrderedDict(linear=nn.Linear(n_in, 8), act=nn.Tanh())),
            layer2=nn.Sequential(OrderedDict(linear=BadLinear(8, 6), act=nn.Tanh())),
            head=nn.Linear(6, n_out),
        )
    )


def test_gradcheck_fails_on_wrong_backward_naming_the_tensor():
    x, y = torch.randn(16, 5), torch.randint(0, 3, (16,))
    report = check_gradients(_bad_model(), x, y)
    assert not report.passed
    assert report.worst.name == "layer2.linear.weight"
    rows = {r.name: r for r in report.rows}
    # g = 2 g_true: ||g_approx - g|| / (||g_approx|| + ||g||) = 1 / 3 exactly
    assert rows["layer2.linear.weight"].rel_diff == pytest.approx(1 / 3, abs=1e-6)
    assert rows["layer2.linear.weight"].verdict == "bug"
    assert rows["layer2.linear.weight"].torch_ok is False
    # gradients flowing to the layer below through the correct input-gradient stay right
    assert rows["layer1.linear.weight"].verdict == "ok" and rows["head.weight"].verdict == "ok"
    cfg = make_cfg([])
    with pytest.raises(GradcheckError, match=r"layer2\.linear\.weight"):
        run_gradcheck(cfg, _bad_model(), _Batch(x, y), {})


def test_gradcheck_mode_exits_nonzero_naming_the_tensor(tmp_path, monkeypatch, capsys):
    """mode=gradcheck end to end through run.main: exit status 2, the tensor in the message."""
    import torchprac.nn
    from torchprac.run import main

    monkeypatch.setattr(torchprac.nn, "build_model", lambda cfg, shape, k: _bad_model(64, k))
    with pytest.raises(SystemExit) as e:
        main(make_cfg(["mode=gradcheck"], tmp_path))
    assert e.value.code == 2
    assert "layer2.linear.weight" in capsys.readouterr().err
    saved = json.loads((tmp_path / "gradcheck.json").read_text())
    assert saved["passed"] is False and saved["worst_tensor"] == "layer2.linear.weight"
    assert not (tmp_path / "metrics.json").exists()  # it never trained


def test_trainer_gradcheck_runs_before_training(tmp_path):
    _, m = run_cfg(
        ["trainer.gradcheck=true", "trainer.epochs=1", "trainer.checkpoint.enabled=false", "reg=[l2]"], tmp_path
    )
    assert m["gradcheck"]["passed"] is True
    assert m["gradcheck"]["worst_rel_diff"] < 1e-7
    assert m["status"] == "completed"


def test_relu_kink_is_skipped_not_reported_as_a_bug():
    """A hidden ReLU unit whose pre-activation is exactly 0 on every example, with a non-zero
    weight below it: finite differences of its incoming weights straddle the kink."""
    torch.manual_seed(0)
    model = nn.Sequential(
        OrderedDict(layer1=nn.Sequential(OrderedDict(linear=nn.Linear(4, 6), act=nn.ReLU())), head=nn.Linear(6, 3))
    )
    with torch.no_grad():
        model.layer1.linear.weight[0].zero_()
        model.layer1.linear.bias[0] = 0.0
    x, y = torch.randn(8, 4), torch.randint(0, 3, (8,))
    report = check_gradients(model, x, y, coords_per_tensor=100)  # every coordinate
    rows = {r.name: r for r in report.rows}
    assert rows["layer1.linear.weight"].skipped >= 4  # row 0's coordinates
    assert rows["layer1.linear.bias"].skipped >= 1
    assert report.kink_margin == 0.0
    assert rows["layer1.linear.weight"].verdict == "ok"
    assert report.passed, report.table()


def test_l1_penalty_at_zero_weights_passes():
    report = _check_cfg(["init=zeros", "reg=[l1]", "data=circles", "activation=tanh"], coords_per_tensor=8)
    assert report.passed, report.table()
