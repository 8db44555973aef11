"""The reg group (torchprac/reg/__init__.py): each regularizer declares its role, and each stage
asks only for its role: loss terms (summed penalty strengths), model edits (dropout layers),
constraints (max-norm) and batch transforms (augment); the HParams row has fixed keys."""

from __future__ import annotations

import pytest
import torch
from conftest import make_model, make_optimization, make_rc
from torch import nn

from torchprac.data.augment import Augment
from torchprac.errors import ConfigError
from torchprac.nn import InvertedDropout
from torchprac.reg import HPARAM_DEFAULTS, Regularizers, alpha_dropout, augment, dropout, elastic, l1, l2, max_norm
from torchprac.reg.constraints import MaxNorm

ROLES = {
    "l1": "loss_term",
    "l2": "loss_term",
    "elastic": "loss_term",
    "dropout": "model_edit",
    "alpha_dropout": "model_edit",
    "max_norm": "constraint",
    "augment": "batch_transform",
}


def test_every_choice_declares_its_role():
    rc = make_rc(["reg=[l1,l2,elastic,dropout,max_norm,augment]"])
    assert {n: r.role for n, r in rc.reg.items.items()} == {n: ROLES[n] for n in rc.reg.names}
    assert make_rc(["reg=[alpha_dropout]"]).reg.items["alpha_dropout"].role == "model_edit"


@pytest.mark.parametrize("reg", ["[l2,dropout,max_norm]", "[l1,augment]", "[]", "[elastic]", "[alpha_dropout]"])
def test_each_stage_gets_only_its_role(reg):
    ov = [f"reg={reg}", "model.hidden=[32,16]"] + (["activation=selu", "init=lecun_normal"] if "alpha" in reg else [])
    names = set(reg.strip("[]").split(",")) - {""}
    rc, model = make_model(ov, (1, 8, 8), 10)
    optim = make_optimization(rc, model)
    assert any(isinstance(m, InvertedDropout) for m in model.modules()) == ("dropout" in names)
    assert any(isinstance(m, nn.AlphaDropout) for m in model.modules()) == ("alpha_dropout" in names)
    assert (optim.penalty is not None) == bool(names & {"l1", "l2", "elastic"})
    if optim.penalty is not None:
        assert (optim.penalty.l1 > 0) == bool(names & {"l1", "elastic"})
        assert (optim.penalty.l2 > 0) == bool(names & {"l2", "elastic"})
    assert any(isinstance(c, MaxNorm) for c in optim.constraints) == ("max_norm" in names)
    assert (rc.reg.transform((1, 8, 8)) is not None) == ("augment" in names)


def test_penalty_strengths_are_summed_over_the_loss_terms():
    rc = make_rc(
        ["reg=[l1,l2,elastic]", "reg.l1.strength=0.001", "reg.l2.strength=0.01", "reg.elastic.l1=0.002"]
        + ["reg.elastic.l2=0.03"]
    )
    s1, s2 = rc.reg.penalty_strengths()
    assert s1 == pytest.approx(0.003) and s2 == pytest.approx(0.04)
    penalty = rc.reg.penalty(nn.Linear(3, 2))
    assert (penalty.l1, penalty.l2) == (s1, s2)
    assert Regularizers().penalty_strengths() == (0, 0) and Regularizers().penalty(nn.Linear(3, 2)) is None


@pytest.mark.parametrize(
    "regs,expected",
    [
        ([], {}),
        ([l2(1e-3)], {"l2": 1e-3}),
        ([l1(1e-5), elastic(1e-5, 1e-4), l2(1e-3)], {"l1": 2e-5, "l2": 1e-3 + 1e-4}),
        ([dropout([0.9, 0.7])], {"keep_prob": 0.8, "dropout": "inverted"}),
        ([alpha_dropout(0.95, 0.9)], {"keep_prob": 0.95, "input_keep_prob": 0.9, "dropout": "alpha"}),
        ([max_norm(2.0), augment()], {"max_norm": 2.0, "augment": True}),
    ],
)
def test_hparams_keys_are_fixed_and_filled_by_role(regs, expected):
    hp = Regularizers.of(*regs).hparams()
    assert list(hp) == list(HPARAM_DEFAULTS)  # the same keys whatever is selected
    assert hp == pytest.approx({**HPARAM_DEFAULTS, **expected})


def test_dropout_and_alpha_dropout_together_are_refused():
    with pytest.raises(ConfigError) as e:
        Regularizers.from_config({"dropout": {}, "alpha_dropout": {}})
    assert e.value.key == "reg"


def test_unknown_regularizer_is_refused_listing_the_choices():
    with pytest.raises(ConfigError) as e:
        Regularizers.from_config({"l3": {}})
    assert e.value.key == "reg.l3" and "l1, l2" in e.value.allowed


def test_keep_prob_list_must_match_the_hidden_layers():
    d = dropout([0.5, 0.6])
    assert d.keep_probs(2, "k") == [0.5, 0.6] and dropout(0.7).keep_probs(3, "k") == [0.7] * 3
    with pytest.raises(ConfigError, match="one keep_prob per hidden layer"):
        d.keep_probs(3, "reg.dropout.keep_prob")


def test_config_reaches_the_augment_object():
    rc = make_rc(["reg=[augment]", "reg.augment.flip=true", "reg.augment.shift=2", "reg.augment.noise=0.2"])
    aug = rc.reg.transform((1, 8, 8), torch.Generator())
    assert isinstance(aug, Augment)
    assert (aug.flip, aug.shift, aug.noise, aug.images) == (True, 2, 0.2, True)
    assert make_rc(["reg=[l2]"]).reg.transform((1, 8, 8)) is None  # nothing selected: no augmentation
