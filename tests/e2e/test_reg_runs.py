"""The reg group in real runs: every combination composes and learns, max-norm holds in the
trained weights, augmentation touches training batches only and is reproducible, and the
regularization demo presets overfit without regularization and respond to L2."""

from __future__ import annotations

import pytest
import torch
from conftest import SHARED_DATA, make_rc, run_cfg

import torchprac.data
from torchprac.data.augment import Augment

FAST_RUN = ["model.hidden=[32,16]", "trainer.epochs=2", "trainer.checkpoint.enabled=false"]


@pytest.mark.parametrize("reg", ["[l2,dropout,max_norm]", "[l1,augment]", "[]", "[elastic]", "[alpha_dropout]"])
def test_combinations_run(reg, tmp_path):
    # what each choice builds is checked in tests/unit/reg/test_regularizers.py
    ov = [f"reg={reg}", *FAST_RUN] + (["activation=selu", "init=lecun_normal"] if "alpha" in reg else [])
    _, m = run_cfg(ov, tmp_path)
    assert m["status"] == "completed"
    assert m["metrics"]["dev"]["accuracy"] > 0.5


def test_max_norm_holds_in_a_real_run(tmp_path):
    r = 0.5
    common = [
        "optimizer=sgd",
        "optimizer.lr=0.5",
        "model.hidden=[32]",
        "trainer.epochs=2",
        "trainer.checkpoint.enabled=true",
        "trainer.early_stopping.enabled=false",
    ]
    run_cfg([*common, "reg=[max_norm]", f"reg.max_norm.r={r}"], tmp_path / "mn")
    run_cfg([*common, "reg=[]"], tmp_path / "plain")

    def row_norms(run):
        sd = torch.load(run / "checkpoints" / "last.pt", weights_only=True)["model"]
        return {k: v.flatten(1).norm(dim=1) for k, v in sd.items() if k.endswith("weight") and v.ndim >= 2}

    constrained, plain = row_norms(tmp_path / "mn"), row_norms(tmp_path / "plain")
    assert set(constrained) == {"layer1.linear.weight", "head.weight"}
    for k, norms in constrained.items():
        assert (norms <= r + 1e-6).all(), k
        assert norms.max() > r - 1e-3, k  # the constraint is active, not trivially satisfied
        assert plain[k].max() > r, k  # without it the rows grow past r


# -- augmentation ------------------------------------------------------------------------------
def test_run_augments_training_batches_only_and_leaves_splits_bit_identical(tmp_path, monkeypatch):
    captured: dict = {}
    real_build_data = torchprac.data.build_data

    def spy_build_data(*a, **k):
        splits = real_build_data(*a, **k)
        captured["splits"] = splits
        captured["before"] = {n: (s.x.clone(), s.y.clone()) for n, s in splits.items()}
        return splits

    calls: list[tuple[torch.Tensor, torch.Tensor]] = []
    real_call = Augment.__call__

    def spy_call(self, x):
        out = real_call(self, x)
        calls.append((x.detach().clone(), out.detach().clone()))
        return out

    monkeypatch.setattr(torchprac.data, "build_data", spy_build_data)
    monkeypatch.setattr(Augment, "__call__", spy_call)
    _, m = run_cfg(
        ["reg=[augment]", "reg.augment.shift=1", "reg.augment.noise=0.1", "trainer.batch_size=128", *FAST_RUN],
        tmp_path / "a",
    )
    assert m["status"] == "completed"

    splits = captured["splits"]
    for name, (x0, y0) in captured["before"].items():  # every split, train included, untouched
        s = dict(splits.items())[name]
        assert torch.equal(s.x, x0) and torch.equal(s.y, y0), name
    # one call per training step (ceil(1079/128) = 9 per epoch), never for dev/test evaluation
    n_train = len(splits.train)
    assert len(calls) == 2 * -(-n_train // 128)
    train_x = splits.train.x.flatten(1)
    for inp, out in calls:
        assert len(inp) <= 128
        # every row of every augmented input batch is a row of train.x (never dev or test)
        assert (inp.flatten(1)[:, None, :] == train_x[None]).all(-1).any(1).all()
        assert not torch.equal(inp, out)


def test_augmented_run_is_reproducible_and_seed_dependent(tmp_path):
    ov = ["reg=[augment]", "reg.augment.noise=0.5", *FAST_RUN]
    _, a = run_cfg(ov, tmp_path / "a")
    _, b = run_cfg(ov, tmp_path / "b")
    assert a["metrics"] == b["metrics"]
    _, plain = run_cfg(["reg=[]", *FAST_RUN], tmp_path / "c")
    assert plain["metrics"]["train"] != a["metrics"]["train"]  # the augmentation did something


def test_augment_on_mnist1d_signals(tmp_path, shared_data):
    ov = [
        "data=mnist1d",
        f"data.root={SHARED_DATA / 'mnist1d'}",
        "data.train_subset=500",
        "reg=[augment]",
        "trainer.epochs=1",
        "trainer.checkpoint.enabled=false",
        "model.hidden=[32]",
    ]
    _, m = run_cfg(ov, tmp_path)
    assert m["status"] == "completed" and m["metrics"]["dev"]["accuracy"] > 0.1
    # the reg choice is visible in the run's TensorBoard hparams via hparams_of
    from torchprac.report.hparams import hparams_of

    assert hparams_of(make_rc(ov))["augment"] is True


# -- the regularization demo presets (the README's tables) --------------------------------------
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
