"""Metric naming: config spelling <-> (split, name) <-> TensorBoard / history tag, and the
improving direction, decided here once."""

from __future__ import annotations

import math

import pytest

from torchprac.errors import ConfigError
from torchprac.metrics import Metric, Status, tag


@pytest.mark.parametrize(
    "spelled,split,name,tb_tag,mode",
    [
        ("dev/loss", "dev", "loss", "loss/dev", "min"),
        ("dev/accuracy", "dev", "accuracy", "metric/accuracy_dev", "max"),
        ("train/loss", "train", "loss", "loss/train", "min"),
        ("train/accuracy", "train", "accuracy", "metric/accuracy_train", "max"),
        ("test/accuracy", "test", "accuracy", "metric/accuracy_test", "max"),
    ],
)
def test_spelling_tag_and_mode(spelled, split, name, tb_tag, mode):
    m = Metric.parse(spelled)
    assert (m.split, m.name) == (split, name)
    assert m.tag == tb_tag == tag(split, name)
    assert m.mode == mode
    assert str(m) == spelled and Metric.parse(str(m)) == m


@pytest.mark.parametrize("bad", ["dev/f1", "loss/dev", "val/loss", "dev", ""])
def test_unknown_spelling_is_a_config_error_naming_the_key(bad):
    with pytest.raises(ConfigError) as e:
        Metric.parse(bad, "trainer.objective")
    assert e.value.key == "trainer.objective" and "dev/loss or dev/accuracy" in e.value.allowed


def test_worst_and_better_follow_the_direction():
    loss, acc = Metric("dev", "loss"), Metric("dev", "accuracy")
    assert loss.worst() == math.inf and acc.worst() == -math.inf
    assert loss.better(0.4, 0.5) and not loss.better(0.5, 0.4)
    assert acc.better(0.9, 0.8) and not acc.better(0.8, 0.9)
    # min_delta: the improvement must exceed it
    assert not loss.better(0.495, 0.5, min_delta=0.01) and loss.better(0.48, 0.5, min_delta=0.01)
    assert not acc.better(0.505, 0.5, min_delta=0.01) and acc.better(0.52, 0.5, min_delta=0.01)
    assert loss.better(0.5, loss.worst()) and acc.better(0.0, acc.worst())


def test_status_is_its_string():
    assert [str(s) for s in Status] == ["completed", "early_stopped", "diverged", "failed"]
    assert Status.EARLY_STOPPED == "early_stopped" and f"{Status.DIVERGED}" == "diverged"
