"""The HParams row: a flat, fixed key set whatever the groups chose (0 / 'none' when off)."""

from __future__ import annotations

import math

import pytest
from conftest import HPARAM_KEYS, OTHER_CHOICES, make_rc

from torchprac.report.hparams import hparam_metrics, hparams_of


def test_same_flat_keys_across_different_groups():
    a = hparams_of(make_rc([]))
    b = hparams_of(make_rc(OTHER_CHOICES))
    assert list(a) == list(b)
    assert HPARAM_KEYS <= set(a)
    assert a["l2"] == 0 and b["l2"] == 1e-3  # 0 when off
    assert a["optimizer"] == "nesterov" and b["optimizer"] == "adam"
    assert b["keep_prob"] == 0.8 and a["keep_prob"] == 1.0
    assert (a["clip"], a["clip_threshold"], b["clip"], b["clip_threshold"]) == ("none", 0.0, "norm", 1.0)
    assert (b["init"], b["activation"], b["scheduler"]) == ("xavier_normal", "tanh", "cosine")
    assert all(isinstance(v, (int, float, str, bool)) for v in b.values())  # flat: TensorBoard takes these


def test_batch_size_is_the_effective_one():
    assert hparams_of(make_rc(["trainer.batch_size=64"]), batch_size=40)["batch_size"] == 40
    assert hparams_of(make_rc(["trainer.batch_size=64"]))["batch_size"] == 64


def test_metric_keys_are_fixed_with_nan_for_a_missing_split():
    hp = hparam_metrics({"train": {"loss": 0.1, "accuracy": 0.9}, "dev": {"loss": 0.2, "accuracy": 0.8}}, 3)
    assert hp["hparam/dev_accuracy"] == 0.8 and hp["hparam/epochs_run"] == 3.0
    assert math.isnan(hp["hparam/test_loss"]) and math.isnan(hp["hparam/test_accuracy"])
    assert sorted(hp) == sorted(
        [f"hparam/{s}_{k}" for s in ("train", "dev", "test") for k in ("loss", "accuracy")] + ["hparam/epochs_run"]
    )
    assert hp["hparam/train_loss"] == pytest.approx(0.1)
