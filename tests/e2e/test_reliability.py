"""Nothing through, nothing lost: the reliability cases that need more than one bad override
(the one-override cases are rows of test_bad_inputs.py)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT, make_cfg, run_cfg, run_cli

QUICK = ["trainer.epochs=2", "trainer.progress=false", "trainer.histograms=false", "viz.enabled=false"]


def _files(d: Path) -> dict[str, bytes]:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


def _strict(text: str) -> dict:
    def refuse(c: str):
        raise ValueError(f"non-standard JSON constant {c}")

    return json.loads(text, parse_constant=refuse)


@pytest.mark.slow
def test_a_second_run_in_the_same_dir_is_refused_and_the_first_is_byte_identical(tmp_path):
    run = tmp_path / "run"
    first = run_cli([*QUICK, f"hydra.run.dir={run}"], cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    before = _files(run)
    assert "metrics.json" in before and any(k.startswith("checkpoints/") for k in before)

    again = run_cli([*QUICK, "optimizer=adam", f"hydra.run.dir={run}"], cwd=tmp_path)
    assert again.returncode == 2 and "Traceback" not in again.stderr
    assert "already holds a finished run" in again.stderr and "trainer.overwrite=true" in again.stderr
    assert _files(run) == before  # metrics, checkpoints, events, .hydra/ and train.log untouched

    replaced = run_cli([*QUICK, "optimizer=adam", "trainer.overwrite=true", f"hydra.run.dir={run}"], cwd=tmp_path)
    assert replaced.returncode == 0, replaced.stderr
    assert _strict((run / "metrics.json").read_text())["status"] == "completed"
    assert (run / "metrics.json").read_bytes() != before["metrics.json"]


def test_in_process_run_refuses_a_dir_holding_a_run(tmp_path):
    from torchprac.errors import ConfigError
    from torchprac.run import run

    run_cfg([*QUICK], tmp_path)
    before = _files(tmp_path)
    with pytest.raises(ConfigError) as e:
        run(make_cfg([*QUICK, "optimizer=adam"], tmp_path))
    assert e.value.key == "paths.run_dir"
    assert _files(tmp_path) == before


@pytest.mark.slow
def test_resume_reapplies_the_runs_overrides_and_may_add_epochs(tmp_path):
    """2 epochs, then resume with only the run dir and 3 epochs == an uninterrupted 3-epoch run."""
    common = ["optimizer=adam", "trainer.early_stopping.enabled=false", *QUICK[1:]]
    a, b = tmp_path / "a", tmp_path / "b"
    assert run_cli([*common, "trainer.epochs=2", f"hydra.run.dir={a}"], cwd=tmp_path).returncode == 0
    resumed = run_cli(["trainer.resume=auto", "trainer.epochs=3", f"hydra.run.dir={a}"], cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert "re-applying the run's own overrides" in resumed.stderr and "optimizer=adam" in resumed.stderr
    assert run_cli([*common, "trainer.epochs=3", f"hydra.run.dir={b}"], cwd=tmp_path).returncode == 0
    ma, mb = (_strict((d / "metrics.json").read_text()) for d in (a, b))
    assert ma["epochs_run"] == mb["epochs_run"] == 3
    assert ma["metrics"] == mb["metrics"]  # bit-identical on CPU
    assert "completed 3 epochs" in (a / "train.log").read_text()  # the run's own log holds the result


def test_more_epochs_are_refused_when_the_schedule_depends_on_the_run_length(tmp_path):
    from torchprac.errors import CheckpointError
    from torchprac.run import run

    run_cfg([*QUICK, "scheduler=onecycle"], tmp_path)
    with pytest.raises(CheckpointError, match="trainer.epochs was 2, now 3"):
        run(make_cfg([*QUICK[1:], "trainer.epochs=3", "scheduler=onecycle", "trainer.resume=auto"], tmp_path))


@pytest.mark.slow
def test_ctrl_c_prints_one_line_with_the_resume_command(tmp_path):
    run = tmp_path / "run"
    args = [sys.executable, str(ROOT / "train.py"), "trainer.epochs=500", "trainer.early_stopping.enabled=false"]
    args += ["trainer.progress=false", "viz.enabled=false", f"hydra.run.dir={run}"]
    p = subprocess.Popen(args, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 240
    while not (run / "checkpoints" / "last.pt").exists() and time.time() < deadline and p.poll() is None:
        time.sleep(0.2)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 130, err
    assert "Traceback" not in out + err
    line = next(ln for ln in err.splitlines() if ln.startswith("interrupted"))
    assert str(run / "checkpoints") in line and f"trainer.resume=auto hydra.run.dir={run}" in line


def test_diverged_run_writes_strict_json_with_null_objective(tmp_path):
    _, _ = run_cfg(["optimizer.lr=1e6", "trainer.early_stopping.enabled=false", *QUICK], tmp_path)
    m = _strict((tmp_path / "metrics.json").read_text())
    assert m["status"] == "diverged" and m["objective"]["value"] is None and m["metrics"] == {}


def test_stalled_training_is_diagnosed_when_every_gradient_is_tiny(tmp_path):
    """A deep ReLU net with a far too small init: no first/last-layer gap to speak of at step 0,
    but every update/weight ratio ~1e-8 — the health monitor says training is stalled."""
    ov = ["model.hidden=[64,64,64,64,64,64]", "init=normal", "init.std=0.01", "trainer.health.every_n_steps=5"]
    _, m = run_cfg([*ov, *QUICK], tmp_path)
    warnings = " ".join(m["health"]["warnings"])
    assert "stalled at step 0" in warnings and m["metrics"]["dev"]["accuracy"] < 0.2


def test_ddp_refuses_batch_norm_on_cpu_and_freezing():
    import torch

    from torchprac.config import RunConfig
    from torchprac.distributed import DistContext
    from torchprac.errors import ConfigError
    from torchprac.run import check_distributed

    ddp = DistContext(rank=0, world_size=2, device=torch.device("cpu"))
    rc = RunConfig.from_cfg(make_cfg(["model.batch_norm=before"]))
    with pytest.raises(ConfigError) as e:
        check_distributed(rc, torch.nn.Linear(2, 2), ddp)
    assert e.value.key == "model.batch_norm"


def _holder_of(path: Path) -> int | None:
    """The pid of the process that has `path` open (Linux /proc), if any."""
    for fd_dir in Path("/proc").glob("[0-9]*/fd"):
        try:
            if any(os.readlink(fd) == str(path) for fd in fd_dir.iterdir()):
                return int(fd_dir.parent.name)
        except OSError:  # a process that ended or is not ours
            continue
    return None


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="finds the job's process through /proc")
def test_a_killed_joblib_worker_costs_only_its_job(tmp_path):
    """`hydra/launcher=joblib`, one worker: while job 0 (a long run) trains, the worker process
    running it (the one holding job 0's train.log open) is SIGKILLed. The sweep records job 0 as
    failed, starts a fresh worker for job 1, which completes, and writes the summary."""
    sweep = tmp_path / "sweep"
    args = ["-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=1", "trainer.epochs=500,2"]
    cmd = [sys.executable, str(ROOT / "train.py"), *args, *QUICK[1:], "trainer.early_stopping=false"]
    proc = subprocess.Popen(
        [*cmd, f"hydra.sweep.dir={sweep}"], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    log0, victim, deadline = (sweep / "0" / "train.log").resolve(), None, time.monotonic() + 240
    while victim is None and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.5)
        victim = _holder_of(log0) if log0.exists() else None
    assert victim is not None and victim != proc.pid, "job 0's worker process was not found"
    os.kill(victim, signal.SIGKILL)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-2000:]
    assert "Traceback" not in err
    killed = _strict((sweep / "0" / "metrics.json").read_text())
    assert killed["status"] == "failed" and "killed by SIGKILL" in killed["message"]
    assert _strict((sweep / "1" / "metrics.json").read_text())["status"] == "completed"
    assert "1 completed, 1 failed" in (sweep / "summary.md").read_text()


@pytest.mark.slow
def test_a_job_past_the_launcher_timeout_is_killed_and_recorded(tmp_path):
    """hydra.launcher.timeout=15 with one worker: job 0 (2000 epochs) is killed when its 15 s
    are up and recorded as failed; job 1 runs on a fresh worker and completes."""
    sweep = tmp_path / "sweep"
    args = ["-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=1", "hydra.launcher.timeout=15"]
    args += ["trainer.epochs=2000,2", "trainer.early_stopping=false", *QUICK[1:], f"hydra.sweep.dir={sweep}"]
    t0 = time.monotonic()
    p = run_cli(args, cwd=tmp_path, timeout=600)
    assert p.returncode == 0, p.stderr[-2000:]
    timed_out = _strict((sweep / "0" / "metrics.json").read_text())
    assert timed_out["status"] == "failed" and "hydra.launcher.timeout=15 s" in timed_out["message"]
    assert _strict((sweep / "1" / "metrics.json").read_text())["status"] == "completed"
    assert "1 completed, 1 failed" in (sweep / "summary.md").read_text()
    assert time.monotonic() - t0 < 300  # 2000 epochs were not run to the end


def test_optuna_sampler_is_not_seeded_so_a_resumed_study_explores_new_points():
    from omegaconf import OmegaConf

    preset = OmegaConf.load(ROOT / "conf" / "hparams_search" / "optuna.yaml")
    assert preset.hydra.sweeper.sampler.seed is None
