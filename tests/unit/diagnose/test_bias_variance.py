"""Bias/variance: the numbers follow the definitions, and the recipe never suggests a
regularizer the run already uses as if it were off."""

from __future__ import annotations

import itertools

import pytest

from torchprac.diagnose import diagnose


def test_bayes_error_and_thresholds():
    d = diagnose(0.10, 0.12, bayes_error=0.08, bias_threshold=0.05, variance_threshold=0.05)
    assert d.verdict == "ok" and d.avoidable_bias == pytest.approx(0.02) and d.variance == pytest.approx(0.02)
    assert diagnose(0.10, 0.12, bayes_error=0.0).verdict == "high_bias"
    assert diagnose(0.01, 0.12).verdict == "high_variance"
    assert diagnose(0.10, 0.30).verdict == "high_bias_and_variance"


# What "suggesting X as if it were off" looks like, for each lever the run can already use.
OFF_PHRASES = {
    "l2": ["add L2"],
    "elastic": ["add L2"],
    "dropout": ["add reg=[dropout]"],
    "alpha_dropout": ["add reg=[dropout]"],
    "augment": ["add reg=[augment]"],
}
REGS = {
    "l1": {"strength": 1e-5},
    "l2": {"strength": 1e-4},
    "elastic": {"l1": 1e-5, "l2": 1e-4},
    "dropout": {"keep_prob": 0.8},
    "alpha_dropout": {"keep_prob": 0.95},
    "max_norm": {"r": 3.0},
    "augment": {"shift": 1},
}


def _combos():
    names = sorted(REGS)
    for k in range(len(names) + 1):
        for combo in itertools.combinations(names, k):
            if not ("dropout" in combo and "alpha_dropout" in combo):
                yield combo


@pytest.mark.parametrize("early_stopping", [False, True])
@pytest.mark.parametrize("weight_decay", [0.0, 1e-3])
def test_recipe_never_suggests_an_active_regularizer_as_off(early_stopping, weight_decay):
    for combo in _combos():
        ctx = {
            "reg": {n: REGS[n] for n in combo},
            "early_stopping": early_stopping,
            "weight_decay": weight_decay,
            "hidden": [64],
            "epochs": 10,
            "optimizer": "adam",
            "scheduler": "onecycle",
            "activation": "relu",
            "batch_norm": "none",
        }
        recs = diagnose(0.30, 0.60, context=ctx).recommendations  # both: the bias and the variance recipe
        text = " | ".join(recs)
        for name in combo:
            for phrase in OFF_PHRASES.get(name, []):
                assert phrase not in text, (combo, phrase, recs)
            assert name in text, (combo, name, recs)  # ... and named as what to weaken or strengthen
        if weight_decay:
            assert "add L2" not in text and "optimizer.weight_decay" in text, recs
        if early_stopping:
            assert "enabled=true" not in text, recs
        assert "add a schedule" not in text  # a scheduler is on
        if not combo and not weight_decay:
            assert "add L2" in text and "add reg=[dropout]" in text  # off: these are the advice
