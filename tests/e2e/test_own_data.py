"""Your own data, end to end: a regression CSV trains a linear model to the least-squares fit,
the diagnosis sees high variance on a tiny training set, and the trained model is used —
mode=predict reproduces the model's own evaluation and reads new inputs with the checkpoint's
stored mu/sigma (not refitted), mode=evaluate reproduces metrics.json, and inputs that do not fit
the model are refused."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import make_cfg, make_rc, run_cfg

from torchprac.data import build_data
from torchprac.errors import CheckpointError, ConfigError, DataError
from torchprac.run import run

FAST = ["trainer.health.enabled=false", "viz.enabled=false"]


def _write_csv(path: Path, header: list[str], rows) -> Path:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def _read_predictions(path: Path) -> tuple[list[str], list[list[str]]]:
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    return rows[0], rows[1:]


def _use(overrides: list[str], run_dir: Path) -> float:
    return run(make_cfg([*FAST, *overrides], run_dir))


@pytest.fixture(scope="module")
def linear_csv(tmp_path_factory) -> Path:
    """y = Xw + b + noise, 300 rows, features on different scales."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 4)) * [1, 5, 0.2, 2] + [0, 10, 1, -3]
    y = x @ np.array([2.0, -0.5, 8.0, 1.0]) + 7 + rng.normal(0, 2.0, 300)
    return _write_csv(tmp_path_factory.mktemp("lin") / "lin.csv", ["a", "b", "c", "d", "y"], np.c_[x, y].tolist())


@pytest.fixture(scope="module")
def flowers(tmp_path_factory) -> tuple[Path, Path]:
    """A trained classifier on a CSV with text labels: (the CSV, its run dir)."""
    from sklearn.datasets import load_iris

    d = load_iris()
    root = tmp_path_factory.mktemp("flowers")
    rows = [[*x, d.target_names[t]] for x, t in zip(d.data.tolist(), d.target)]
    path = _write_csv(root / "flowers.csv", ["sl", "sw", "pl", "pw", "species"], rows)
    run_dir = root / "run"
    run_cfg([*FAST, "data=csv", f"data.path={path}", "data.target=species", "trainer.epochs=15"], run_dir)
    return path, run_dir


def _r2(y: np.ndarray, pred: np.ndarray) -> float:
    return 1 - ((y - pred) ** 2).sum() / ((y - y.mean()) ** 2).sum()


def test_linear_regression_reaches_the_least_squares_r2(linear_csv, tmp_path):
    ov = [*FAST, "data=csv", f"data.path={linear_csv}", "data.target=y", "model.hidden=[]", "trainer.epochs=80"]
    _, m = run_cfg(ov, tmp_path / "run")
    assert set(m["metrics"]["dev"]) == {"loss", "rmse", "mae", "r2"}
    assert m["objective"]["name"] == "dev/r2" and m["objective"]["mode"] == "max"  # dev/accuracy follows the task

    # numpy's least squares on the same (seeded) split: any affine rescaling leaves R² unchanged
    s = build_data(make_rc(ov).data, seed=42)
    xs = {k: np.c_[v.x.double().numpy(), np.ones(len(v))] for k, v in s.items()}
    ys = {k: v.y.double().numpy() * s.y_std + s.y_mean for k, v in s.items()}
    w, *_ = np.linalg.lstsq(xs["train"], ys["train"], rcond=None)
    for split in ("train", "dev", "test"):
        best = _r2(ys[split], xs[split] @ w)
        assert m["metrics"][split]["r2"] == pytest.approx(best, abs=0.01), split
        rmse = math.sqrt(((ys[split] - xs[split] @ w) ** 2).mean())
        assert m["metrics"][split]["rmse"] == pytest.approx(rmse, rel=0.05)  # in y's units (noise std 2)
    # the regression error is the loss: with data.bayes_error=0 all of the noise counts as avoidable bias
    assert m["diagnosis"]["avoidable_bias"] == pytest.approx(m["metrics"]["train"]["loss"], abs=1e-9)


def test_diagnosis_flags_high_variance_on_20_examples_with_a_large_mlp(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.uniform(-2, 2, size=(400, 3))
    y = np.sin(2 * x[:, 0]) + x[:, 1] ** 2 - x[:, 2] + rng.normal(0, 0.3, 400)
    path = _write_csv(tmp_path / "wavy.csv", ["a", "b", "c", "y"], np.c_[x, y].tolist())
    ov = [
        *FAST,
        "data=csv",
        f"data.path={path}",
        "data.target=y",
        "data.train_subset=20",
        "model.hidden=[256,256]",
        "optimizer=adam",
        "optimizer.lr=0.003",
        "trainer.epochs=300",
        "trainer.early_stopping.enabled=false",
        "trainer.early_stopping.restore_best=false",
    ]
    _, m = run_cfg(ov, tmp_path / "run")
    d, loss = m["diagnosis"], {s: m["metrics"][s]["loss"] for s in ("train", "dev")}
    assert loss["train"] < 0.02  # memorised: the regression error is the (standardised) MSE
    assert d["verdict"] == "high_variance" and d["variance"] == pytest.approx(loss["dev"] - loss["train"], abs=1e-6)
    assert any("train_subset=20" in r for r in d["recommendations"])


def _test_rows(run_dir: Path, csv_path: Path) -> np.ndarray:
    """Row indices of the run's test split (the same seeded split the run made)."""
    rc = make_rc(["data=csv", f"data.path={csv_path}", "data.target=species"])
    from torchprac.data.splits import split_indices
    from torchprac.data.tabular import read_csv

    _, y, _ = read_csv(csv_path, "species")
    codes = np.searchsorted(sorted(set(y.tolist())), y)
    return split_indices(codes, rc.data.split, 42, has_official_test=False)[2]


def test_predict_on_the_training_csv_equals_the_models_own_evaluation(flowers, tmp_path):
    path, run_dir = flowers
    metrics = json.loads((run_dir / "metrics.json").read_text())["metrics"]
    n = _use(["mode=predict", f"model.pretrained={run_dir}", f"predict.input={path}"], tmp_path / "pred")
    header, rows = _read_predictions(tmp_path / "pred" / "predictions.csv")
    assert n == 150 and header == ["id", "prediction", "prob_setosa", "prob_versicolor", "prob_virginica"]
    probs = np.array([[float(v) for v in r[2:]] for r in rows])
    truth = np.array([r[-1] for r in csv.reader(open(path))][1:])
    y = np.searchsorted(["setosa", "versicolor", "virginica"], truth)
    te = _test_rows(run_dir, path)
    assert [r[1] for r in rows] == [["setosa", "versicolor", "virginica"][i] for i in probs.argmax(1)]
    assert (probs[te].argmax(1) == y[te]).mean() == pytest.approx(metrics["test"]["accuracy"], abs=1e-6)
    assert -np.log(probs[te, y[te]]).mean() == pytest.approx(metrics["test"]["loss"], abs=1e-4)

    # mode=evaluate on the same data: the run's own train/dev/test numbers, and all 150 rows
    acc = _use(["mode=evaluate", f"model.pretrained={run_dir}", "data=csv", f"data.path={path}", "data.target=species"],
               tmp_path / "eval")  # fmt: skip
    ev = json.loads((tmp_path / "eval" / "evaluation.json").read_text())
    for split in ("train", "dev", "test"):
        for k in ("loss", "accuracy"):
            assert ev["metrics"][split][k] == pytest.approx(metrics[split][k], abs=1e-6)
    assert acc == pytest.approx((probs.argmax(1) == y).mean(), abs=1e-6)
    cm = np.array(ev["confusion"]["all"])
    assert cm.sum() == 150 and np.trace(cm) == round(acc * 150) and ev["class_names"][0] == "setosa"


def test_predict_reuses_the_checkpoints_mu_sigma(flowers, tmp_path):
    from torchprac.predict import load_trained

    path, run_dir = flowers
    x = np.array([r[:4] for r in csv.reader(open(path))][1:], dtype=np.float64)
    shifted = _write_csv(tmp_path / "shifted.csv", ["pw", "pl", "sw", "sl"], (x[:, ::-1] + 3.0).tolist())
    _use(["mode=predict", f"model.pretrained={run_dir}", f"predict.input={shifted}"], tmp_path / "p1")
    _use(["mode=predict", f"model.pretrained={run_dir}", f"predict.input={path}"], tmp_path / "p0")
    got = np.array([[float(v) for v in r[2:]] for r in _read_predictions(tmp_path / "p1" / "predictions.csv")[1]])
    plain = np.array([[float(v) for v in r[2:]] for r in _read_predictions(tmp_path / "p0" / "predictions.csv")[1]])

    trained = load_trained(run_dir)  # by hand: the checkpoint's training statistics on the shifted input
    xs = torch.tensor(x + 3.0, dtype=torch.float32)
    with torch.no_grad():
        want = torch.softmax(trained.model((xs - trained.meta.mean) / trained.meta.std), 1).numpy()
    np.testing.assert_allclose(got, want, atol=2e-6)
    # statistics refitted on the new input would cancel the shift and give the unshifted answers
    assert np.abs(got - plain).max() > 0.05
    # and mu is the TRAINING split's: not the whole file's mean
    assert not np.allclose(trained.meta.mean.numpy(), x.mean(0), atol=1e-4)


def test_inputs_that_do_not_fit_the_model_are_refused(flowers, tmp_path):
    path, run_dir = flowers
    pre = ["mode=predict", f"model.pretrained={run_dir}"]
    few = _write_csv(tmp_path / "few.csv", ["sl", "sw", "pl"], [[1, 2, 3]])
    with pytest.raises(DataError, match=r"lacks \['pw'\]"):
        _use([*pre, f"predict.input={few}"], tmp_path / "a")
    np.savez(tmp_path / "x.npz", x=np.zeros((3, 5), np.float32))
    with pytest.raises(DataError, match=r"shape \(5,\).*trained on \(4,\)"):
        _use([*pre, f"predict.input={tmp_path / 'x.npz'}"], tmp_path / "b")
    other = _write_csv(tmp_path / "other.csv", ["sl", "sw", "pl", "pw", "species"], [[1, 2, 3, 4, "rose"]] * 3)
    with pytest.raises(DataError, match=r"labels \['rose'\] that are not among the checkpoint's classes"):
        _use(["mode=evaluate", f"model.pretrained={run_dir}", "data=csv", f"data.path={other}", "data.target=species"],
             tmp_path / "c")  # fmt: skip
    with pytest.raises(DataError, match="labels .*'class_0'.* not among the checkpoint's classes"):
        _use(["mode=evaluate", f"model.pretrained={run_dir}", "data=wine"], tmp_path / "d")
    np.savez(tmp_path / "five.npz", x=np.zeros((6, 5), np.float32), y=np.array(["setosa", "virginica"] * 3))
    with pytest.raises(DataError, match=r"examples of shape \(5,\), but the model was trained on \(4,\)"):
        _use(["mode=evaluate", f"model.pretrained={run_dir}", "data=npz", f"data.path={tmp_path / 'five.npz'}"],
             tmp_path / "g")  # fmt: skip

    with pytest.raises(ConfigError, match="predict.input"):
        _use(pre, tmp_path / "e")
    old = tmp_path / "old.pt"
    torch.save({"model": {}, "input_shape": [4]}, old)
    with pytest.raises(CheckpointError, match="holds no description of its data"):
        _use(["mode=predict", f"model.pretrained={old}", f"predict.input={path}"], tmp_path / "f")


def test_a_regression_objective_on_classification_is_refused_before_training(tmp_path):
    with pytest.raises(ConfigError, match="trainer.objective='dev/r2'"):
        run_cfg([*FAST, "trainer.objective=dev/r2", "trainer.epochs=1"], tmp_path / "run")
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_regression_run_logs_its_metrics_and_predicts_in_target_units(linear_csv, tmp_path):
    from conftest import events

    ov = ["data=csv", f"data.path={linear_csv}", "data.target=y", "model.hidden=[16]", "trainer.epochs=5"]
    _, m = run_cfg([*FAST, *ov, "trainer.early_stopping.monitor=dev/rmse"], tmp_path / "run")
    ea = events(tmp_path / "run")
    tags = set(ea.Tags()["scalars"])
    assert {"metric/r2_dev", "metric/rmse_dev", "metric/mae_train", "hparam/test_r2"} <= tags
    assert "metric/accuracy_dev" not in tags
    best = min(range(5), key=lambda i: ea.Scalars("metric/rmse_dev")[i].value)
    assert m["best_epoch"] == best + 1  # early stopping followed dev/rmse (lower is better)

    _use(["mode=predict", f"model.pretrained={tmp_path / 'run'}", f"predict.input={linear_csv}"], tmp_path / "p")
    header, rows = _read_predictions(tmp_path / "p" / "predictions.csv")
    assert header == ["id", "prediction"] and len(rows) == 300
    data = np.array(list(csv.reader(open(linear_csv)))[1:], dtype=np.float64)
    pred = np.array([float(r[1]) for r in rows])
    from torchprac.data.splits import split_indices

    te = split_indices(data[:, -1], "auto", 42, has_official_test=False, stratify=False)[2]
    rmse = math.sqrt(((pred[te] - data[te, -1]) ** 2).mean())
    assert rmse == pytest.approx(m["metrics"]["test"]["rmse"], rel=1e-4)


def test_image_folder_trains_predicts_and_refuses_another_size(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, n in (("train", 12), ("test", 4)):
        for c, level in (("dark", 40), ("light", 200)):
            (tmp_path / "img" / split / c).mkdir(parents=True)
            for i in range(n):
                a = np.clip(rng.normal(level, 20, (6, 6, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(a).save(tmp_path / "img" / split / c / f"{i}.png")
    ov = [*FAST, "data=image_folder", f"data.root={tmp_path / 'img'}", "trainer.epochs=10", "data.grayscale=true"]
    _, m = run_cfg(ov, tmp_path / "run")
    assert m["metrics"]["test"]["accuracy"] == 1.0  # dark vs light: trivially separable
    _use(["mode=predict", f"model.pretrained={tmp_path / 'run'}", f"predict.input={tmp_path / 'img' / 'test'}"],
         tmp_path / "p")  # fmt: skip
    header, rows = _read_predictions(tmp_path / "p" / "predictions.csv")
    assert header == ["id", "prediction", "prob_dark", "prob_light"]
    assert [r[0].split("/")[0] for r in rows] == [r[1] for r in rows]  # every image in its class folder
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "big.png")
    with pytest.raises(DataError, match="8x8 pixels; the model was trained on 6x6"):
        _use(["mode=predict", f"model.pretrained={tmp_path / 'run'}", f"predict.input={tmp_path / 'big.png'}"],
             tmp_path / "q")  # fmt: skip
