"""Atomic writes, strict JSON and safe checkpoint loading."""

from __future__ import annotations

import json
import math
import os

import pytest
import torch

from torchprac.errors import CheckpointError
from torchprac.files import load_checkpoint, save_atomic, write_json


@pytest.mark.parametrize("content", [b"just some text\n", os.urandom(4096)])
def test_non_torch_files_are_called_corrupt_not_code(tmp_path, content):
    path = tmp_path / "x.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match="corrupt") as e:
        load_checkpoint(path)
    assert "code" not in str(e.value)


def test_pickled_callable_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    save_atomic({"model": {}, "hook": os.system}, path)
    with pytest.raises(CheckpointError, match="refused.*weights_only"):
        load_checkpoint(path)


def test_truncated_checkpoint_is_named(tmp_path):
    path = tmp_path / "last.pt"
    save_atomic({"model": {"w": torch.randn(100, 100)}}, path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointError, match=r"last\.pt is corrupt or truncated"):
        load_checkpoint(path)


def test_missing_and_foreign_checkpoints(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.pt")
    torch.save({"weights": torch.ones(1)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a torchprac checkpoint"):
        load_checkpoint(tmp_path / "other.pt")


def test_save_atomic_leaves_no_temp_files(tmp_path):
    save_atomic({"model": {"w": torch.ones(2)}}, tmp_path / "x.pt")
    assert [p.name for p in tmp_path.iterdir()] == ["x.pt"]
    assert json.dumps(load_checkpoint(tmp_path / "x.pt")["model"]["w"].tolist()) == "[1.0, 1.0]"


def test_write_json_is_strict(tmp_path):
    write_json(tmp_path / "m.json", {"a": math.inf, "b": [math.nan, 1.0], "c": {"d": -math.inf}})
    text = (tmp_path / "m.json").read_text()
    assert json.loads(text) == {"a": None, "b": [None, 1.0], "c": {"d": None}}
    assert "Infinity" not in text and "NaN" not in text
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]


def _disk_full(*_a, **_k):
    raise OSError(28, "No space left on device")


def test_a_full_disk_names_the_file_and_keeps_the_previous_version(tmp_path, monkeypatch):
    from torchprac import files
    from torchprac.files import DiskError

    path = tmp_path / "last.pt"
    save_atomic({"model": {"w": torch.ones(3)}, "epoch": 1}, path)
    monkeypatch.setattr(files.os, "fsync", _disk_full)
    with pytest.raises(DiskError) as e:
        save_atomic({"model": {"w": torch.zeros(3)}, "epoch": 2}, path)
    msg = str(e.value)
    assert str(path) in msg and "The disk is full" in msg and "previous version" in msg
    monkeypatch.undo()
    assert load_checkpoint(path)["epoch"] == 1  # the epoch-1 file, whole
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temp file left behind
