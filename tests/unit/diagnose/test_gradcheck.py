"""Gradient check: passes on every model x activation x reg combination the presets use, fails
(naming the tensor) on a deliberately wrong backward, and is not fooled by kinks."""

from __future__ import annotations

from collections import OrderedDict

import pytest
import torch
from conftest import CONF, CPU, make_rc, wrong_backward_model
from torch import nn

from torchprac.data import build_data
from torchprac.data.splits import Split
from torchprac.diagnose.gradcheck import check_gradients, run_gradcheck, verdict
from torchprac.errors import GradcheckError
from torchprac.run import build_model

INPUT_SHAPES = {"digits": (1, 8, 8), "circles": (2,), "moons": (2,), "fashion_mnist": (1, 28, 28)}
PRESETS = sorted(p.stem for p in (CONF / "experiment").glob("*.yaml"))
# presets whose gradients are all large enough to check (no layer below the resolution)
HEALTHY = ("default_dnn", "init_he", "init_zeros", "overfit_digits", "overfit_moons", "self_normalizing")
HEALTHY += ("transfer_a", "transfer_b_on_a", "transfer_b_scratch")


def _check_cfg(overrides: list[str], n_classes: int = 3, **kw):
    """The run's gradcheck stage on the config's model and penalty (random inputs of its shape)."""
    rc = make_rc(overrides)
    shape = INPUT_SHAPES.get(rc.data.name)
    if shape is None:  # another dataset (e.g. a tabular preset): its real shape and classes
        splits = build_data(rc.data, 0, CPU)
        shape, n_classes = splits.input_shape, splits.num_classes
    torch.manual_seed(0)
    model = build_model(rc, shape, n_classes, CPU)
    x, y = torch.randn(32, *shape), torch.randint(0, n_classes, (32,))
    l1, l2 = rc.reg.penalty_strengths()
    return run_gradcheck(model, Split(x, y), l1=l1, l2=l2, seed=rc.trainer.seed, **kw)


@pytest.mark.parametrize("preset", PRESETS)
def test_gradcheck_passes_for_each_preset_model(preset):
    # no pretrained model A (nothing reused, nothing frozen): the check is about the architecture
    report = _check_cfg(
        [f"experiment={preset}", "model.pretrained=null", "transfer.freeze_epochs=0"], coords_per_tensor=8
    )
    assert report.passed, report.table()
    # tiny: below the finite-difference resolution (the vanishing preset's early layers)
    assert all(r.verdict in ("ok", "kink", "tiny") for r in report.rows), report.table()
    tiny = any(r.verdict == "tiny" for r in report.rows)
    if preset == "vanishing_sigmoid":
        assert tiny, report.table()
    if preset in HEALTHY:
        assert not tiny, report.table()


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


def test_gradcheck_fails_on_wrong_backward_naming_the_tensor(tmp_path):
    x, y = torch.randn(16, 5), torch.randint(0, 3, (16,))
    report = check_gradients(wrong_backward_model(), x, y)
    assert not report.passed
    assert report.worst.name == "layer2.linear.weight"
    rows = {r.name: r for r in report.rows}
    # g = 2 g_true: ||g_approx - g|| / (||g_approx|| + ||g||) = 1 / 3 exactly
    assert rows["layer2.linear.weight"].rel_diff == pytest.approx(1 / 3, abs=1e-6)
    assert rows["layer2.linear.weight"].verdict == "bug"
    assert rows["layer2.linear.weight"].torch_ok is False
    # gradients flowing to the layer below through the correct input-gradient stay right
    assert rows["layer1.linear.weight"].verdict == "ok" and rows["head.weight"].verdict == "ok"
    with pytest.raises(GradcheckError, match=r"layer2\.linear\.weight"):
        run_gradcheck(wrong_backward_model(), Split(x, y), run_dir=tmp_path)
    saved = (tmp_path / "gradcheck.json").read_text()
    assert '"passed": false' in saved and '"worst_tensor": "layer2.linear.weight"' in saved


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


def test_the_model_itself_is_left_untouched():
    model = wrong_backward_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    check_gradients(model, torch.randn(8, 5), torch.randint(0, 3, (8,)))
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert next(model.parameters()).dtype == torch.float32 and model.training


def test_progress_bar_steps_through_every_tensor(monkeypatch):
    """Long checks (a 100-layer net takes minutes) show a tqdm bar over the tensors; tqdm's
    disable=None hides it when stderr is not a terminal."""
    import tqdm.auto

    seen = {}

    def bar(iterable, **kw):
        seen.update(kw, items=list(iterable))
        return seen["items"]

    monkeypatch.setattr(tqdm.auto, "tqdm", bar)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    report = check_gradients(model, torch.randn(8, 3), torch.randint(0, 2, (8,)), coords_per_tensor=2)
    assert seen["items"] == ["0.weight", "0.bias", "2.weight", "2.bias"] == [r.name for r in report.rows]
    assert seen["desc"] == "gradient check" and seen["disable"] is None
