"""Whole runs in-process (torchprac.run.run): the default run learns, metrics.json follows its
schema, early stopping keeps the best logged epoch, mixed precision and torch.compile train."""

from __future__ import annotations

import json
import math
import shutil

import pytest
from conftest import run_cfg, scalars


def test_default_run_on_digits_reaches_095(tmp_path):
    value, m = run_cfg([], tmp_path)
    assert m["status"] in ("completed", "early_stopped")
    assert m["metrics"]["dev"]["accuracy"] >= 0.95
    assert value == m["objective"]["value"] == m["metrics"]["dev"]["accuracy"]
    assert set(m["metrics"]) == {"train", "dev", "test"}
    assert m["diagnosis"]["verdict"] in ("ok", "high_bias", "high_variance", "high_bias_and_variance")


def test_metrics_json_schema(tmp_path):
    value, m = run_cfg(["trainer.epochs=2", "data=moons", "data.split=[0.7,0.3,0]"], tmp_path)
    assert set(m) >= {"status", "epochs_run", "best_epoch", "objective", "metrics", "diagnosis", "message"}
    assert "test" not in m["metrics"]  # no test split
    assert m["objective"] == {"name": "dev/accuracy", "value": m["metrics"]["dev"]["accuracy"], "mode": "max"}
    assert json.loads((tmp_path / "metrics.json").read_text()) == m
    assert (tmp_path / "checkpoints" / "last.pt").is_file() and (tmp_path / "checkpoints" / "best.pt").is_file()
    v2, m2 = run_cfg(["trainer.epochs=2", "data=moons", "trainer.objective=dev/loss"], tmp_path / "b")
    assert m2["objective"]["mode"] == "min" and v2 == m2["metrics"]["dev"]["loss"]


def test_early_stopping_restores_best_logged_dev_loss(tmp_path):
    # A large lr on a wide net overfits quickly: dev loss has a minimum, then rises.
    _, m = run_cfg(
        [
            "optimizer=adam",
            "optimizer.lr=0.01",
            "model.hidden=[256]",
            "data.train_subset=200",
            "trainer.epochs=60",
            "trainer.early_stopping.patience=4",
        ],
        tmp_path,
    )
    dev_losses = scalars(tmp_path, "loss/dev")
    assert m["status"] == "early_stopped" and m["epochs_run"] < 60
    assert len(dev_losses) == m["epochs_run"]
    best = min(dev_losses)
    assert m["metrics"]["dev"]["loss"] == pytest.approx(best, rel=1e-6, abs=1e-7)
    assert m["best_epoch"] == dev_losses.index(best) + 1
    assert dev_losses[-1] > best  # the last epoch was worse: weights really were restored


def test_restore_best_also_when_never_fired(tmp_path):
    _, m = run_cfg(
        [
            "optimizer=adam",
            "optimizer.lr=0.01",
            "model.hidden=[256]",
            "data.train_subset=200",
            "trainer.epochs=12",
            "trainer.early_stopping.patience=100",
        ],
        tmp_path,
    )
    dev = scalars(tmp_path, "loss/dev")
    assert m["status"] == "completed" and len(dev) == 12
    assert m["metrics"]["dev"]["loss"] == pytest.approx(min(dev), rel=1e-6)


def test_early_stopping_on_accuracy_keeps_the_best_epoch(tmp_path):
    # mode is derived from the monitor (max for accuracy): the restored weights are the best epoch's
    _, m = run_cfg(
        [
            "trainer.early_stopping.monitor=dev/accuracy",
            "trainer.early_stopping.patience=3",
            "trainer.epochs=12",
            "optimizer=adam",
            "optimizer.lr=0.01",
        ],
        tmp_path,
    )
    accs = scalars(tmp_path, "metric/accuracy_dev")
    assert m["metrics"]["dev"]["accuracy"] == pytest.approx(max(accs), abs=1e-6)
    assert m["best_epoch"] == accs.index(max(accs)) + 1


def test_bf16_mixed_precision_trains_on_cpu(tmp_path):
    _, m = run_cfg(["trainer.precision=bf16-mixed", "trainer.epochs=2", "trainer.health.enabled=false"], tmp_path)
    assert m["status"] == "completed"
    assert m["metrics"]["dev"]["accuracy"] > 0.5  # digits: learns in bf16 too


@pytest.mark.slow
@pytest.mark.skipif(
    shutil.which("cc") is None and shutil.which("gcc") is None, reason="torch.compile on CPU needs a C compiler"
)
def test_compiled_model_trains(tmp_path):
    _, m = run_cfg(["trainer.compile=true", "trainer.epochs=1", "trainer.health.enabled=false"], tmp_path)
    assert m["status"] == "completed"
    assert math.isfinite(m["metrics"]["dev"]["loss"])
