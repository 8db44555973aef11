"""Checkpoints and trainer.resume=auto: a run SIGKILLed mid-epoch and resumed ends with exactly
the metrics of an uninterrupted run (CPU); a damaged last.pt falls back to prev.pt; a resume
under another config is refused with the run dir untouched."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from conftest import make_cfg, run_cfg, run_killed_at

from torchprac.entry import main
from torchprac.errors import CheckpointError
from torchprac.files import load_checkpoint
from torchprac.run import run

# Exercises every piece of state resume restores: Adam moments, a per-step cosine schedule,
# dropout masks (torch RNG), the epoch permutation and augmentation (trainer generator), early
# stopping's best weights.
OVERRIDES = [
    "optimizer=adam",
    "reg=[dropout,augment]",
    "scheduler=cosine",
    "model.hidden=[32]",
    "trainer.epochs=2",
    "trainer.log_every_n_steps=5",
    "trainer.health.enabled=false",
    "trainer.device=cpu",  # exactness is promised on CPU
]
STEPS_PER_EPOCH = 17  # digits: 1079 training examples / batch 64
KILL_AT_STEP = STEPS_PER_EPOCH + 8  # the middle of epoch 2 (conftest.run_killed_at)


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> tuple[Path, dict]:
    """The uninterrupted run."""
    d = tmp_path_factory.mktemp("uninterrupted")
    _, m = run_cfg(OVERRIDES, d)
    return d, m


def _final(m: dict) -> dict:
    return {k: m[k] for k in ("status", "epochs_run", "best_epoch", "objective", "metrics")}


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_equals_uninterrupted_run(reference, tmp_path):
    ref_dir, ref = reference
    proc = run_killed_at(KILL_AT_STEP, OVERRIDES, tmp_path)
    assert proc.returncode == -9, proc.stderr[-2000:]  # SIGKILL
    assert not (tmp_path / "metrics.json").exists()
    assert torch.load(tmp_path / "checkpoints" / "last.pt", weights_only=True)["epoch"] == 1

    _, m = run_cfg(OVERRIDES + ["trainer.resume=auto"], tmp_path)
    assert _final(m) == _final(ref)  # exact: every float of every split
    a = load_checkpoint(ref_dir / "checkpoints" / "last.pt")
    b = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    assert a["global_step"] == b["global_step"] == 2 * STEPS_PER_EPOCH
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert a["history"] == b["history"]


def test_truncated_last_checkpoint_is_reported_and_resume_uses_previous(reference, tmp_path, caplog):
    ref_dir, ref = reference
    run_dir = tmp_path / "run"
    shutil.copytree(ref_dir, run_dir)
    (run_dir / "metrics.json").unlink()
    last = run_dir / "checkpoints" / "last.pt"
    last.write_bytes(last.read_bytes()[: last.stat().st_size // 2])

    with pytest.raises(CheckpointError, match=r"last\.pt is corrupt or truncated"):
        load_checkpoint(last)
    with caplog.at_level("WARNING", logger="torchprac"):
        _, m = run_cfg(OVERRIDES + ["trainer.resume=auto"], run_dir)
    assert "last.pt is corrupt or truncated" in caplog.text
    assert "previous good checkpoint" in caplog.text and "prev.pt (epoch 1)" in caplog.text
    # prev.pt holds epoch 1: the last epoch is trained again and lands exactly where it did.
    assert _final(m) == _final(ref)


def test_rotation_keeps_previous_and_rng_state_has_no_pickled_bytes(reference):
    ref_dir, _ = reference
    last = torch.load(ref_dir / "checkpoints" / "last.pt", weights_only=True)
    prev = torch.load(ref_dir / "checkpoints" / "prev.pt", weights_only=True)
    assert (last["epoch"], prev["epoch"]) == (2, 1)
    assert last["rng"]["numpy"]["keys"].dtype == torch.int64  # plain numbers, no pickle to unpickle


def test_resume_with_another_architecture_is_refused_and_run_dir_untouched(reference, tmp_path):
    ref_dir, _ = reference
    run_dir = tmp_path / "run"
    shutil.copytree(ref_dir, run_dir)
    before = {p: p.stat().st_mtime_ns for p in run_dir.rglob("*")}
    with pytest.raises(CheckpointError, match="trained with another config .model was"):
        run(
            make_cfg([o for o in OVERRIDES if "hidden" not in o] + ["model.hidden=[8]", "trainer.resume=auto"], run_dir)
        )
    assert {p: p.stat().st_mtime_ns for p in run_dir.rglob("*")} == before


def test_resume_with_another_training_config_is_refused(tmp_path, capsys):
    base = ["data=moons", "trainer.epochs=2", "scheduler=onecycle", "trainer.histograms=false"]
    run(make_cfg(base, tmp_path))
    before = (tmp_path / "metrics.json").read_text()
    with pytest.raises(SystemExit) as e:
        main(make_cfg(["data=moons", "trainer.epochs=4", "scheduler=onecycle", "trainer.resume=auto"], tmp_path))
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "trainer.epochs was 2, now 4" in err and "Traceback" not in err
    assert (tmp_path / "metrics.json").read_text() == before  # the earlier run dir is untouched
