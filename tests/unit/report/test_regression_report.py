"""Regression runs in the reports: the sweep summary ranks them by R² (higher first) with R² /
RMSE / MAE columns, classification sweeps keep their columns, and the HParams metric keys
follow the task."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from torchprac.report.hparams import hparam_metrics
from torchprac.report.sweep_summary import COLUMNS, write_summary


def _job(root: Path, name: str, r2: float, rmse: float) -> None:
    d = root / name
    (d / ".hydra").mkdir(parents=True)
    (d / ".hydra" / "overrides.yaml").write_text(f"- optimizer.lr={name}\n")
    metrics = {s: {"loss": 1 - r2, "rmse": rmse, "mae": rmse * 0.8, "r2": r2} for s in ("train", "dev")}
    body = {"status": "completed", "epochs_run": 3, "best_epoch": 3, "message": "", "metrics": metrics}
    body["objective"] = {"name": "dev/r2", "value": r2, "mode": "max"}
    (d / "metrics.json").write_text(json.dumps(body))


def test_sweep_summary_of_regression_runs(tmp_path):
    _job(tmp_path, "0.1", r2=0.40, rmse=60.0)
    _job(tmp_path, "0.01", r2=0.55, rmse=50.0)
    rows = write_summary(tmp_path)
    assert [r["job"] for r in rows] == ["0.01", "0.1"]  # R²: higher is better
    with open(tmp_path / "summary.csv", newline="") as f:
        table = list(csv.DictReader(f))
    assert {"dev_r2", "dev_rmse", "train_mae"} <= set(table[0]) and "test_r2" not in table[0]
    assert float(table[0]["dev_r2"]) == 0.55 and float(table[0]["dev_rmse"]) == 50.0
    assert "dev_r2" in (tmp_path / "summary.md").read_text()


def test_classification_summary_columns_are_unchanged(tmp_path):
    d = tmp_path / "0"
    d.mkdir()
    (d / "metrics.json").write_text(
        json.dumps(
            {
                "status": "completed",
                "objective": {"name": "dev/accuracy", "value": 0.9, "mode": "max"},
                "metrics": {"dev": {"loss": 0.3, "accuracy": 0.9}},
            }
        )
    )
    write_summary(tmp_path)
    with open(tmp_path / "summary.csv", newline="") as f:
        assert tuple(next(csv.reader(f))) == COLUMNS


def test_hparam_metric_keys_follow_the_task():
    m = {"train": {"loss": 0.1, "rmse": 3.0, "mae": 2.0, "r2": 0.9}}
    hp = hparam_metrics(m, 4, ("loss", "rmse", "mae", "r2"))
    assert hp["hparam/train_r2"] == 0.9 and "hparam/train_accuracy" not in hp
    assert hp["hparam/test_rmse"] != hp["hparam/test_rmse"]  # NaN: no test split
    assert set(hparam_metrics({}, 1)) >= {"hparam/dev_loss", "hparam/dev_accuracy"}  # classification default
