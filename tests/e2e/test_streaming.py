"""data.in_memory=false, end to end: the same seed gives the same batches, the same final weights
(CPU) and the same metrics.json as the in-memory run, with dropout and augmentation on (both
draw random numbers: a DataLoader must not take any from them); and a streaming run SIGKILLed
mid-epoch and resumed ends exactly as the uninterrupted one."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import run_cfg, run_killed_at
from PIL import Image

from torchprac.data.splits import Split
from torchprac.data.stream import StreamSplit
from torchprac.files import load_checkpoint


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("imgs")
    rng = np.random.default_rng(0)
    for split, n in (("train", 30), ("test", 6)):
        for c, level in (("a", 60), ("b", 130), ("c", 200)):
            (root / split / c).mkdir(parents=True)
            for i in range(n):
                a = np.clip(rng.normal(level, 40, (8, 8, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(a).save(root / split / c / f"{i}.png")
    return root


def _overrides(folder: Path, in_memory: bool, workers: int = 2) -> list[str]:
    return [
        "data=image_folder",
        f"data.root={folder}",
        f"data.in_memory={str(in_memory).lower()}",
        f"data.workers={workers}",
        "model=cnn",
        "model.channels=[4]",
        "model.hidden=[16]",
        "reg=[dropout,augment]",
        "trainer.epochs=3",
        "trainer.batch_size=16",
        "trainer.log_every_n_steps=2",
        "trainer.device=cpu",
        "trainer.health.enabled=false",
        "viz.enabled=false",
    ]


def _final(m: dict) -> dict:
    return {k: m[k] for k in ("status", "epochs_run", "best_epoch", "objective", "metrics")}


def _recording(monkeypatch) -> list[tuple]:
    seen: list[tuple] = []
    for cls in (Split, StreamSplit):
        real = cls.take

        def take(self, idx, real=real):
            x, y = real(self, idx)
            seen.append((idx.tolist(), float(x.double().sum()), y.tolist()))
            return x, y

        monkeypatch.setattr(cls, "take", take)
    return seen


def test_streaming_equals_in_memory(folder, tmp_path, monkeypatch):
    seen = _recording(monkeypatch)
    _, mem = run_cfg(_overrides(folder, True), tmp_path / "mem")
    mem_batches, seen[:] = list(seen), []
    _, st = run_cfg(_overrides(folder, False), tmp_path / "stream")
    assert len(mem_batches) == 3 * 5 and seen == mem_batches  # the same batches, in the same order
    assert _final(st) == _final(mem)  # every float of every split
    a, b = (load_checkpoint(tmp_path / d / "checkpoints" / "last.pt") for d in ("mem", "stream"))
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert a["history"] == b["history"]


@pytest.mark.slow
def test_streaming_run_killed_mid_epoch_resumes_exactly(folder, tmp_path):
    ov = _overrides(folder, False)
    _, ref = run_cfg(ov, tmp_path / "ref")
    proc = run_killed_at(5 + 3, ov, tmp_path / "run")
    assert proc.returncode == -9, proc.stderr[-2000:]
    assert torch.load(tmp_path / "run" / "checkpoints" / "last.pt", weights_only=True)["epoch"] == 1
    _, m = run_cfg([*ov, "trainer.resume=auto"], tmp_path / "run")
    assert _final(m) == _final(ref)
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["epochs_run"] == 3
