"""The overfit_digits preset does what the regularization demo needs: it memorises its small
training subset (train accuracy 1) and is diagnosed high_variance."""

from __future__ import annotations

from conftest import run_cfg


def test_overfit_digits_overfits_and_is_diagnosed(tmp_path):
    _, m = run_cfg(["experiment=overfit_digits", "trainer.epochs=40", "trainer.health.enabled=false"], tmp_path)
    train, dev = m["metrics"]["train"]["accuracy"], m["metrics"]["dev"]["accuracy"]
    assert train == 1.0 and dev < 0.95
    assert m["diagnosis"]["verdict"] == "high_variance"
    assert m["epochs_run"] == 40  # early stopping is off in the preset
    assert abs(m["diagnosis"]["variance"] - ((1 - dev) - (1 - train))) < 1e-9  # dev error - train error
