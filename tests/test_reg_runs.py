"""The reg group end to end: combinations compose in real runs, the penalty shows up in
TensorBoard, max_norm holds in a real run's weights, and bad input is one clear message."""

from __future__ import annotations

import pytest
import torch
from conftest import make_cfg, run_cfg, run_cli
from torch import nn

from torchprac.config import reg_cfg
from torchprac.data.augment import build_augment
from torchprac.errors import ConfigError
from torchprac.nn import InvertedDropout, build_model
from torchprac.optim import build_optim
from torchprac.optim.constraints import MaxNorm

FAST_RUN = ["model.hidden=[32,16]", "trainer.epochs=2", "trainer.checkpoint.enabled=false"]


@pytest.mark.parametrize("reg", ["[l2,dropout,max_norm]", "[l1,augment]", "[]", "[elastic]", "[alpha_dropout]"])
def test_combinations_run_and_every_part_is_active(reg, tmp_path):
    ov = [f"reg={reg}", *FAST_RUN] + (["activation=selu", "init=lecun_normal"] if "alpha" in reg else [])
    cfg = make_cfg(ov)
    names = set(reg.strip("[]").split(",")) - {""}
    # what each choice builds
    model = build_model(cfg, (1, 8, 8), 10)
    optim = build_optim(cfg, model, 10, 2)
    assert any(isinstance(m, InvertedDropout) for m in model.modules()) == ("dropout" in names)
    assert any(isinstance(m, nn.AlphaDropout) for m in model.modules()) == ("alpha_dropout" in names)
    assert (optim.penalty is not None) == bool(names & {"l1", "l2", "elastic"})
    if optim.penalty is not None:
        assert (optim.penalty.l1 > 0) == bool(names & {"l1", "elastic"})
        assert (optim.penalty.l2 > 0) == bool(names & {"l2", "elastic"})
    assert any(isinstance(c, MaxNorm) for c in optim.constraints) == ("max_norm" in names)
    assert (build_augment(reg_cfg(cfg), (1, 8, 8)) is not None) == ("augment" in names)
    # and the run goes through
    _, m = run_cfg(ov, tmp_path)
    assert m["status"] == "completed"
    assert m["metrics"]["dev"]["accuracy"] > 0.5


def test_penalty_tags_in_tensorboard(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    lam = 1e-3
    run_cfg(["reg=[l2]", f"reg.l2.strength={lam}", "trainer.log_every_n_steps=5", *FAST_RUN], tmp_path)
    ea = EventAccumulator(str(tmp_path), size_guidance={"scalars": 0})
    ea.Reload()
    tags = set(ea.Tags()["scalars"])
    assert {"loss/data", "loss/penalty", "loss/total", "loss/train"} <= tags
    data, pen, total, train = (
        [e.value for e in ea.Scalars(t)] for t in ("loss/data", "loss/penalty", "loss/total", "loss/train")
    )
    assert len(pen) >= 4 and all(p > 0 for p in pen)
    for d, p, t, tr in zip(data, pen, total, train):
        assert t == pytest.approx(d + p, rel=1e-6)
        assert tr == d  # loss/train stays the data loss
    # the penalty is (lambda/2) sum ||W||^2: for he_normal weights about lambda/2 * (sum of fan_out * 2)
    assert 0.1 * lam < pen[0] < 100 * lam


def test_no_penalty_tags_without_a_penalty(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run_cfg(["reg=[dropout]", *FAST_RUN], tmp_path)
    ea = EventAccumulator(str(tmp_path))
    ea.Reload()
    assert "loss/penalty" not in ea.Tags()["scalars"]


def test_max_norm_holds_in_a_real_run(tmp_path):
    r = 0.5
    common = [
        "optimizer=sgd",
        "optimizer.lr=0.5",
        "model.hidden=[32]",
        "trainer.epochs=2",
        "trainer.checkpoint.enabled=true",
        "trainer.early_stopping.enabled=false",
    ]
    run_cfg([*common, "reg=[max_norm]", f"reg.max_norm.r={r}"], tmp_path / "mn")
    run_cfg([*common, "reg=[]"], tmp_path / "plain")

    def row_norms(run):
        sd = torch.load(run / "checkpoints" / "last.pt", weights_only=True)["model"]
        return {k: v.flatten(1).norm(dim=1) for k, v in sd.items() if k.endswith("weight") and v.ndim >= 2}

    constrained, plain = row_norms(tmp_path / "mn"), row_norms(tmp_path / "plain")
    assert set(constrained) == {"layer1.linear.weight", "head.weight"}
    for k, norms in constrained.items():
        assert (norms <= r + 1e-6).all(), k
        assert norms.max() > r - 1e-3, k  # the constraint is active, not trivially satisfied
        assert plain[k].max() > r, k  # without it the rows grow past r


# -- bad input ------------------------------------------------------------------------------
BAD = [
    (["reg=[dropout]", "reg.dropout.keep_prob=0"], "reg.dropout.keep_prob"),
    (["reg=[dropout]", "reg.dropout.keep_prob=1.01"], "reg.dropout.keep_prob"),
    (["reg=[dropout]", "reg.dropout.keep_prob=[0.5,0.5,0.5]"], "reg.dropout.keep_prob"),
    (["reg=[dropout]", "reg.dropout.keep_prob=[0.5,1.5]"], "reg.dropout.keep_prob"),
    (["reg=[dropout]", "reg.dropout.input_keep_prob=[0.8,0.8]"], "reg.dropout.input_keep_prob"),
    (["reg=[dropout]", "reg.dropout.input_keep_prob=0"], "reg.dropout.input_keep_prob"),
    (["reg=[alpha_dropout]", "reg.alpha_dropout.keep_prob=-0.5"], "reg.alpha_dropout.keep_prob"),
    (["reg=[l2]", "reg.l2.strength=-0.01"], "reg.l2.strength"),
    (["reg=[l1]", "reg.l1.strength=-1e-5"], "reg.l1.strength"),
    (["reg=[elastic]", "reg.elastic.l2=-1"], "reg.elastic.l2"),
    (["reg=[max_norm]", "reg.max_norm.r=0"], "reg.max_norm.r"),
    (["reg=[max_norm]", "reg.max_norm.r=-3"], "reg.max_norm.r"),
    (["reg=[dropout,alpha_dropout]"], "reg"),
]


@pytest.mark.parametrize("overrides,key", BAD, ids=[b[0][-1] for b in BAD])
def test_bad_reg_values_name_the_key(overrides, key, tmp_path):
    with pytest.raises(ConfigError) as e:
        run_cfg(overrides, tmp_path)
    assert e.value.key == key
    assert f"Invalid config: {key}=" in str(e.value) and "Allowed:" in str(e.value)
    assert not (tmp_path / "metrics.json").exists()


@pytest.mark.parametrize(
    "overrides,key,allowed",
    [
        (["reg=[l2]", "reg.l2.strength=-1"], "reg.l2.strength", ">= 0"),
        (["reg=[max_norm]", "reg.max_norm.r=0"], "reg.max_norm.r", "> 0"),
    ],
    ids=["negative_lambda", "r_zero"],
)
def test_bad_reg_through_main_exits_2_with_one_paragraph(overrides, key, allowed, tmp_path, capsys):
    from torchprac.run import main

    with pytest.raises(SystemExit) as e:
        main(make_cfg(overrides, tmp_path))
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert key in err and allowed in err and "Traceback" not in err


@pytest.mark.parametrize(
    "overrides,key,allowed",
    [
        (["reg=[dropout]", "reg.dropout.keep_prob=1.5"], "reg.dropout.keep_prob", "<= 1"),
        (["reg=[dropout]", "reg.dropout.keep_prob=[0.5]"], "reg.dropout.keep_prob", "one keep_prob per hidden layer"),
        (["reg=[dropout]", "reg.dropout.input_keep_prob=[0.5]"], "reg.dropout.input_keep_prob", "a single number"),
    ],
    ids=["keep_prob", "list_length", "input_list"],
)
def test_bad_reg_from_the_command_line(overrides, key, allowed, tmp_path):
    p = run_cli([*overrides, f"hydra.run.dir={tmp_path}", "trainer.progress=false"])
    assert p.returncode == 2, p.stdout + p.stderr
    assert "Traceback" not in p.stderr and "Traceback" not in p.stdout
    assert key in p.stderr and allowed in p.stderr
