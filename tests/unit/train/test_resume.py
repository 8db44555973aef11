"""trainer.resume=auto, the unit parts: which checkpoint is used, what is refused."""

from __future__ import annotations

import os

import pytest
import torch
import yaml

from torchprac.errors import CheckpointError
from torchprac.train.resume import check_same_config, find_checkpoint


def test_pickled_callable_checkpoint_is_refused(tmp_path):
    path = tmp_path / "checkpoints" / "last.pt"
    path.parent.mkdir()
    torch.save({"model": {}, "hook": os.system}, path)  # a reference to code, pickled
    with pytest.raises(CheckpointError, match="no usable checkpoint"):
        find_checkpoint(tmp_path)


def test_resume_without_checkpoint_starts_fresh(tmp_path, caplog):
    with caplog.at_level("WARNING", logger="torchprac"):
        assert find_checkpoint(tmp_path) is None
    assert "starting a fresh run" in caplog.text


def test_a_checkpoint_lacking_resume_state_is_skipped_for_the_previous(tmp_path, caplog):
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    torch.save({"model": {}}, folder / "last.pt")  # e.g. a best.pt copied over last.pt
    full = {k: 0 for k in ("optimizer", "callbacks", "epoch", "global_step", "history", "rng")}
    torch.save({"model": {}, **full, "epoch": 1}, folder / "prev.pt")
    with caplog.at_level("WARNING", logger="torchprac"):
        ckpt, path = find_checkpoint(tmp_path)
    assert path.name == "prev.pt" and ckpt["epoch"] == 1
    assert "lacks optimizer" in caplog.text and "previous good checkpoint" in caplog.text


def test_another_training_config_is_refused_naming_what_changed(tmp_path):
    old = {"trainer": {"epochs": 2, "batch_size": 64, "seed": 42}, "model": {"hidden": [16]}}
    ckpt = {"config": yaml.safe_dump(old)}
    check_same_config(ckpt, tmp_path / "last.pt", {**old, "trainer": {**old["trainer"], "progress": True}})
    with pytest.raises(CheckpointError) as e:
        check_same_config(ckpt, tmp_path / "last.pt", {**old, "trainer": {**old["trainer"], "epochs": 4}})
    assert "trainer.epochs was 2, now 4" in str(e.value)
