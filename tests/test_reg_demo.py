"""The regularization demo presets do what the demo needs: they overfit without regularization,
and L2 visibly pulls the dev loss down (the README's tables)."""

from __future__ import annotations

from conftest import run_cfg


def test_overfit_digits_overfits_and_is_diagnosed(tmp_path):
    _, m = run_cfg(["experiment=overfit_digits", "trainer.epochs=40", "trainer.health.enabled=false"], tmp_path)
    train, dev = m["metrics"]["train"]["accuracy"], m["metrics"]["dev"]["accuracy"]
    assert train == 1.0 and dev < 0.95
    assert m["diagnosis"]["verdict"] == "high_variance"
    assert m["epochs_run"] == 40  # early stopping is off in the preset
    assert abs(m["diagnosis"]["variance"] - ((1 - dev) - (1 - train))) < 1e-9  # dev error - train error


def test_overfit_moons_l2_shrinks_the_generalisation_gap(tmp_path):
    _, none = run_cfg(["experiment=overfit_moons", "reg=[]"], tmp_path / "none")
    _, l2 = run_cfg(["experiment=overfit_moons", "reg=[l2]"], tmp_path / "l2")
    n, r = none["metrics"], l2["metrics"]
    assert n["train"]["accuracy"] == 1.0 and n["dev"]["loss"] > 5 * n["train"]["loss"]  # memorised
    assert r["train"]["loss"] > n["train"]["loss"]  # the penalty costs training fit...
    assert r["dev"]["loss"] < 0.7 * n["dev"]["loss"]  # ...and buys a much better dev loss
    gap = lambda m: m["dev"]["loss"] - m["train"]["loss"]  # noqa: E731
    assert gap(r) < gap(n)
