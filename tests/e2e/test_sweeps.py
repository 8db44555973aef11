"""Multirun: basic launcher (a diverging, a failing and a completing job), joblib, Optuna with a
resumable sqlite study, submitit_local, each ending with the summary.md / summary.csv ranking.
(The ranking itself: tests/unit/report/test_sweep_summary.py.)"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from conftest import FAST, run_cli

# Tiny and quick; the summary, not the accuracy, is under test.
TINY = [
    *FAST,
    "model.hidden=[16]",
    "trainer.epochs=1",
    "trainer.checkpoint.enabled=false",
    "trainer.health.enabled=false",
]


def _csv(root: Path) -> list[dict]:
    with open(root / "summary.csv", newline="") as f:
        return list(csv.DictReader(f))


def _metrics(job: Path) -> dict:
    return json.loads((job / "metrics.json").read_text())


@pytest.mark.slow
def test_basic_multirun_goes_on_past_a_diverged_and_a_failed_job(tmp_path):
    # identity activation: a deep linear net, which lr=1000 blows up to a non-finite loss.
    sweep = tmp_path / "sweep"
    p = run_cli(
        [
            "-m",
            "optimizer=sgd",
            "activation=identity",
            "optimizer.lr=1000,0.05,-1",
            *TINY,
            "trainer.epochs=2",
            f"hydra.sweep.dir={sweep}",
        ],
        cwd=tmp_path,
    )
    assert p.returncode == 0, p.stderr[-3000:]
    diverged, completed, failed = (_metrics(sweep / str(i)) for i in range(3))
    assert diverged["status"] == "diverged" and diverged["objective"]["value"] is None  # -inf, strict JSON
    assert "non-finite" in diverged["message"] and "\n" not in diverged["message"]
    assert "optimizer.lr" in diverged["message"]  # the hint
    assert completed["status"] == "completed" and completed["metrics"]["dev"]["accuracy"] > 0.5
    assert failed["status"] == "failed" and "optimizer.lr=-1" in failed["message"]
    assert "Traceback" not in p.stderr

    rows = _csv(sweep)
    assert [(r["rank"], r["job"], r["status"]) for r in rows] == [
        ("1", "1", "completed"),
        ("2", "0", "diverged"),
        ("3", "2", "failed"),
    ]
    assert rows[0]["overrides"].split()[:3] == ["optimizer=sgd", "activation=identity", "optimizer.lr=0.05"]
    assert float(rows[0]["dev_accuracy"]) == completed["metrics"]["dev"]["accuracy"]
    md = (sweep / "summary.md").read_text()
    assert "3 runs: 1 completed, 1 diverged, 1 failed" in md and "dev/accuracy (max)" in md
    assert md.index("optimizer.lr=0.05") < md.index("optimizer.lr=1000") < md.index("optimizer.lr=-1")


@pytest.mark.slow
def test_joblib_launcher_runs_two_jobs_in_parallel(tmp_path):
    """`hydra/launcher=joblib` is torchprac's watched pool (conf/hydra/launcher/joblib.yaml)."""
    sweep = tmp_path / "sweep"
    p = run_cli(
        ["-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "reg=[],[l2]", *TINY, f"hydra.sweep.dir={sweep}"],
        cwd=tmp_path,
    )
    assert p.returncode == 0, p.stderr[-3000:]
    assert "Launching 2 jobs, 2 at a time, each in a watched worker process" in p.stdout + p.stderr
    rows = _csv(sweep)
    assert sorted(r["job"] for r in rows) == ["0", "1"] and {r["status"] for r in rows} == {"completed"}
    assert _metrics(sweep / "1")["status"] == "completed"
    assert "reg=[l2]" in {o for r in rows for o in r["overrides"].split()}


@pytest.mark.slow
def test_optuna_sqlite_study_resumes_on_second_invocation(tmp_path):
    optuna = pytest.importorskip("optuna")
    db = f"sqlite:///{tmp_path / 'optuna.db'}"
    args = ["hparams_search=optuna", f"hydra.sweeper.storage={db}", "hydra.sweeper.study_name=t", *TINY]
    p1 = run_cli([*args, "hydra.sweeper.n_trials=3", f"hydra.sweep.dir={tmp_path / 's1'}"], cwd=tmp_path)
    assert p1.returncode == 0, p1.stderr[-3000:]
    study = optuna.load_study(study_name="t", storage=db)
    assert len(study.trials) == 3 and study.direction == optuna.study.StudyDirection.MAXIMIZE
    assert len(_csv(tmp_path / "s1")) == 3
    # The objective Optuna saw is the dev accuracy train.py returned.
    best = max(_metrics(tmp_path / "s1" / str(i))["objective"]["value"] for i in range(3))
    assert study.best_value == pytest.approx(best)

    p2 = run_cli([*args, "hydra.sweeper.n_trials=1", f"hydra.sweep.dir={tmp_path / 's2'}"], cwd=tmp_path)
    assert p2.returncode == 0, p2.stderr[-3000:]
    assert len(optuna.load_study(study_name="t", storage=db).trials) == 4  # resumed, not restarted


@pytest.mark.slow
def test_submitit_local_launcher(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    sweep = tmp_path / "sweep"
    p = run_cli(
        ["-m", "hydra/launcher=submitit_local", "hydra.launcher.timeout_min=5", *TINY, f"hydra.sweep.dir={sweep}"],
        cwd=tmp_path,
    )
    assert p.returncode == 0, p.stderr[-3000:]
    assert _metrics(sweep / "0")["status"] == "completed"
    assert (sweep / ".submitit").is_dir()
    assert [r["status"] for r in _csv(sweep)] == ["completed"]
