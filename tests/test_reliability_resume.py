"""Checkpoints and trainer.resume=auto: a run SIGKILLed mid-epoch and resumed ends with exactly
the metrics of an uninterrupted run (CPU); a damaged last.pt falls back to prev.pt; unsafe or
unusable checkpoints are refused with a clear CheckpointError."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from conftest import ROOT, make_cfg, run_cfg

from torchprac.errors import CheckpointError
from torchprac.train.checkpoint import load_checkpoint, save_atomic
from torchprac.train.resume import find_checkpoint

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
KILL_AT_STEP = STEPS_PER_EPOCH + 8  # the middle of epoch 2

CHILD = textwrap.dedent("""
    import os, signal, sys
    sys.path.insert(0, {tests!r})
    from conftest import make_cfg
    from torchprac.train import trainer as T

    step = T.Trainer._step
    def killing_step(self, *args, **kwargs):
        step(self, *args, **kwargs)
        if self.global_step == {kill_at}:
            os.kill(os.getpid(), signal.SIGKILL)  # no cleanup, no atexit: as hard as a kill gets
    T.Trainer._step = killing_step

    from torchprac.run import run
    run(make_cfg({overrides!r}, {run_dir!r}))
""")


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
    code = CHILD.format(tests=str(ROOT / "tests"), kill_at=KILL_AT_STEP, overrides=OVERRIDES, run_dir=str(tmp_path))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
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
    run = tmp_path / "run"
    shutil.copytree(ref_dir, run)
    (run / "metrics.json").unlink()
    last = run / "checkpoints" / "last.pt"
    last.write_bytes(last.read_bytes()[: last.stat().st_size // 2])

    with pytest.raises(CheckpointError, match=r"last\.pt is corrupt or truncated"):
        load_checkpoint(last)
    with caplog.at_level("WARNING", logger="torchprac"):
        _, m = run_cfg(OVERRIDES + ["trainer.resume=auto"], run)
    assert "last.pt is corrupt or truncated" in caplog.text
    assert "previous good checkpoint" in caplog.text and "prev.pt (epoch 1)" in caplog.text
    # prev.pt holds epoch 1: the last epoch is trained again and lands exactly where it did.
    assert _final(m) == _final(ref)


def test_pickled_callable_checkpoint_is_refused(tmp_path):
    path = tmp_path / "checkpoints" / "last.pt"
    path.parent.mkdir()
    torch.save({"model": {}, "hook": os.system}, path)  # a reference to code, pickled
    with pytest.raises(CheckpointError, match="refused.*weights_only"):
        load_checkpoint(path)
    with pytest.raises(CheckpointError, match="no usable checkpoint"):
        find_checkpoint(tmp_path)


def test_rotation_keeps_previous_and_rng_state_has_no_pickled_bytes(reference):
    ref_dir, _ = reference
    last = torch.load(ref_dir / "checkpoints" / "last.pt", weights_only=True)
    prev = torch.load(ref_dir / "checkpoints" / "prev.pt", weights_only=True)
    assert (last["epoch"], prev["epoch"]) == (2, 1)
    assert last["rng"]["numpy"]["keys"].dtype == torch.int64  # plain numbers, no pickle to unpickle


def test_resume_with_another_architecture_is_refused_and_run_dir_untouched(reference, tmp_path):
    ref_dir, _ = reference
    run = tmp_path / "run"
    shutil.copytree(ref_dir, run)
    before = {p: p.stat().st_mtime_ns for p in run.rglob("*")}
    from torchprac.run import run as run_fn

    with pytest.raises(CheckpointError, match="trained with another config .model was"):
        run_fn(make_cfg([o for o in OVERRIDES if "hidden" not in o] + ["model.hidden=[8]", "trainer.resume=auto"], run))
    assert {p: p.stat().st_mtime_ns for p in run.rglob("*")} == before


def test_resume_without_checkpoint_starts_fresh(tmp_path, caplog):
    with caplog.at_level("WARNING", logger="torchprac"):
        assert find_checkpoint(tmp_path) is None
    assert "starting a fresh run" in caplog.text


def test_save_atomic_leaves_no_temp_files(tmp_path):
    save_atomic({"model": {"w": torch.ones(2)}}, tmp_path / "x.pt")
    assert [p.name for p in tmp_path.iterdir()] == ["x.pt"]
    assert json.dumps(load_checkpoint(tmp_path / "x.pt")["model"]["w"].tolist()) == "[1.0, 1.0]"


@pytest.mark.parametrize(
    "scheduler", ["power", "exponential", "piecewise", "plateau", "onecycle", "cosine", "warmup_cosine"]
)
def test_every_scheduler_state_survives_a_weights_only_checkpoint(scheduler, tmp_path):
    """Resume restores the schedule: its state must load under weights_only=True and continue
    with the same learning rates."""
    from torchprac.optim import build_optim

    cfg = make_cfg([f"scheduler={scheduler}", "optimizer=sgd"])
    model = torch.nn.Sequential(torch.nn.Linear(4, 3))
    a = build_optim(cfg, model, steps_per_epoch=10, epochs=5)
    for _ in range(7):
        a.optimizer.step()
        a.scheduler.step(*([1.0] if scheduler == "plateau" else []))
    save_atomic(
        {"model": {}, "optimizer": a.optimizer.state_dict(), "scheduler": a.scheduler.state_dict()}, tmp_path / "s.pt"
    )
    b = build_optim(cfg, model, steps_per_epoch=10, epochs=5)
    ckpt = load_checkpoint(tmp_path / "s.pt")
    b.optimizer.load_state_dict(ckpt["optimizer"])  # chainable schedules read the current lr from here
    b.scheduler.load_state_dict(ckpt["scheduler"])
    for opt in (a, b):
        opt.optimizer.step()
        opt.scheduler.step(*([1.0] if scheduler == "plateau" else []))
    assert [g["lr"] for g in a.optimizer.param_groups] == [g["lr"] for g in b.optimizer.param_groups]


def test_resume_with_another_training_config_is_refused(tmp_path, capsys):
    from conftest import make_cfg

    from torchprac.run import main, run

    base = ["data=moons", "trainer.epochs=2", "scheduler=onecycle", "trainer.histograms=false"]
    run(make_cfg(base, tmp_path))
    before = (tmp_path / "metrics.json").read_text()
    with pytest.raises(SystemExit) as e:
        main(make_cfg(["data=moons", "trainer.epochs=4", "scheduler=onecycle", "trainer.resume=auto"], tmp_path))
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "trainer.epochs was 2, now 4" in err and "Traceback" not in err
    assert (tmp_path / "metrics.json").read_text() == before  # the earlier run dir is untouched
