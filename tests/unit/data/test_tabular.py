"""Your own tables (torchprac/data/tabular.py, data/target.py): CSV and npz round trips whose
splits and normalisation equal a hand computation (training statistics only), task inference,
and every malformed file refused with the column / line it is about."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.model_selection import train_test_split

from torchprac import registry
from torchprac.data import build_data
from torchprac.errors import ConfigError, DataError

SEED = 7


def _write_csv(path: Path, header: list[str] | None, rows: list[list]) -> Path:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        if header is not None:
            w.writerow(header)
        w.writerows(rows)
    return path


def _table(n: int = 100, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3)) * [1.0, 10.0, 0.1] + [0.0, 50.0, -3.0]
    labels = np.array(["cat", "dog", "emu"])[rng.integers(0, 3, n)]
    return x.astype(np.float32), labels


def _data(**node):
    return registry.build("data", {"name": node.pop("name", "csv"), **node})


def _by_hand_split(y: np.ndarray, seed: int, stratify: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The documented rule: dev = test = 0.2 m; test carved first (seed), then dev (seed + 1)."""
    m = len(y)
    held = int(0.2 * m)
    idx = np.arange(m)
    rest, test = train_test_split(idx, test_size=held, random_state=seed, stratify=y if stratify else None)
    rest = np.sort(rest)
    train, dev = train_test_split(rest, test_size=held, random_state=seed + 1, stratify=y[rest] if stratify else None)
    return np.sort(train), np.sort(dev), np.sort(test)


def _standardise(x: np.ndarray, rows: np.ndarray, ref: np.ndarray) -> np.ndarray:
    mu = ref.astype(np.float64).mean(0)
    sigma = ref.astype(np.float64).std(0)  # population std, as the normaliser
    return ((x[rows] - mu) / sigma).astype(np.float32)


def test_csv_round_trip_splits_and_train_only_normalisation(tmp_path):
    x, labels = _table()
    path = _write_csv(tmp_path / "t.csv", ["a", "b", "c", "animal"], [[*r, lab] for r, lab in zip(x.tolist(), labels)])
    s = build_data(_data(path=str(path), target="animal"), SEED)

    assert s.task == "classification" and s.class_names == ["cat", "dog", "emu"]  # text labels, sorted
    assert s.feature_names == ["a", "b", "c"] and s.input_shape == (3,) and s.num_classes == 3
    y = np.searchsorted(["cat", "dog", "emu"], labels)
    tr, dv, te = _by_hand_split(y, SEED, stratify=True)
    for split, rows in ((s.train, tr), (s.dev, dv), (s.test, te)):
        assert split.y.tolist() == y[rows].tolist()
        # mu, sigma of the TRAINING rows only, applied unchanged to dev and test
        np.testing.assert_allclose(split.x.numpy(), _standardise(x, rows, x[tr]), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(s.mean.numpy(), x[tr].astype(np.float64).mean(0), rtol=1e-6)


def test_csv_features_by_name_header_off_and_a_test_file(tmp_path):
    x, labels = _table(60)
    rows = [[lab, *r] for r, lab in zip(x.tolist(), labels)]
    train = _write_csv(tmp_path / "train.csv", ["animal", "a", "b", "c"], rows[:40])
    # the test file's columns in another order: picked by name
    test = _write_csv(tmp_path / "test.csv", ["c", "animal", "b", "a"], [[r[3], r[0], r[2], r[1]] for r in rows[40:]])
    s = build_data(_data(path=str(train), target="animal", features=["c", "a"], test_path=str(test)), SEED)
    assert s.feature_names == ["c", "a"] and len(s.test) == 20
    expected_test = (x[40:][:, [2, 0]] - s.mean.numpy()) / s.std.numpy()
    np.testing.assert_allclose(s.test.x.numpy(), expected_test, rtol=1e-5, atol=1e-5)

    # no header: columns are named by their index; the target by index too
    plain = _write_csv(tmp_path / "plain.csv", None, [[*r, int(lab == "dog")] for r, lab in zip(x.tolist(), labels)])
    s2 = build_data(_data(path=str(plain), target=3, header=False), SEED)
    assert s2.feature_names == ["0", "1", "2"] and s2.task == "classification" and s2.num_classes == 2


def test_npz_round_trip_keeps_the_official_test_split(tmp_path):
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(50, 4)).astype(np.float32), rng.integers(0, 2, 50)
    xt, yt = rng.normal(size=(10, 4)).astype(np.float32) + 5, rng.integers(0, 2, 10)
    np.savez(tmp_path / "d.npz", x=x, y=y, x_test=xt, y_test=yt)
    s = build_data(_data(name="npz", path=str(tmp_path / "d.npz")), SEED)
    assert len(s.test) == 10 and len(s.train) + len(s.dev) == 50
    tr = np.sort(_pool_train(y, SEED))
    np.testing.assert_allclose(s.mean.numpy(), x[tr].astype(np.float64).mean(0), rtol=1e-5)
    np.testing.assert_allclose(s.std.numpy(), x[tr].astype(np.float64).std(0), rtol=1e-5)
    # the official test split: normalised with the training statistics, labels unchanged
    np.testing.assert_allclose(s.test.x.numpy(), _standardise(xt, np.arange(10), x[tr]), rtol=1e-5, atol=1e-5)
    assert s.test.y.tolist() == yt.tolist()


def _pool_train(y: np.ndarray, seed: int) -> np.ndarray:
    """Dev carved from the official training pool: min(0.2 * (pool + test), pool // 2), stratified."""
    n_dev = min(int(0.2 * (len(y) + 10)), len(y) // 2)
    train, _ = train_test_split(np.arange(len(y)), test_size=n_dev, random_state=seed, stratify=y)
    return train


def test_regression_csv_plain_split_and_standardised_target(tmp_path):
    rng = np.random.default_rng(2)
    x = rng.normal(size=(80, 2)).astype(np.float32)
    y = (3 * x[:, 0] - x[:, 1] + 100 + rng.normal(0, 0.1, 80)).astype(np.float32)
    path = _write_csv(tmp_path / "r.csv", ["u", "v", "y"], [[*a, b] for a, b in zip(x.tolist(), y.tolist())])
    s = build_data(_data(path=str(path), target="y"), SEED)
    assert s.task == "regression" and s.num_classes == 1 and s.class_names is None
    tr, dv, te = _by_hand_split(y, SEED, stratify=False)  # plain seeded: no strata for a quantity
    y_csv = np.array([float(f"{v!r}") for v in y.tolist()])
    mu, sd = y_csv[tr].mean(), y_csv[tr].std()
    assert s.y_mean == pytest.approx(mu, rel=1e-6) and s.y_std == pytest.approx(sd, rel=1e-6)
    for split, rows in ((s.train, tr), (s.dev, dv), (s.test, te)):
        assert split.y.dtype == torch.float32 and split.y.shape == (len(rows),)
        np.testing.assert_allclose(split.y.numpy(), (y_csv[rows] - mu) / sd, rtol=1e-5, atol=1e-5)
    # normalize_target=false: the raw values
    raw = build_data(_data(path=str(path), target="y", normalize_target=False), SEED)
    np.testing.assert_allclose(raw.train.y.numpy(), y_csv[tr], rtol=1e-6)


@pytest.mark.parametrize(
    "target,requested,expected",
    [
        (np.array([0.5, 1.25, 2.0, 3.5] * 5), "auto", "regression"),  # fractional values: a quantity
        (np.array([0, 1, 2, 1] * 5), "auto", "classification"),  # integers: labels
        (np.array([0.0, 1.0, 2.0, 1.0] * 5), "auto", "classification"),  # few whole numbers: labels
        (np.array([0, 1, 2, 1] * 5), "regression", "regression"),  # overridden
    ],
)
def test_task_inference(tmp_path, target, requested, expected):
    x = np.arange(len(target), dtype=np.float32)[:, None]
    np.savez(tmp_path / "d.npz", x=x, y=target)
    s = build_data(_data(name="npz", path=str(tmp_path / "d.npz"), task=requested), SEED)
    assert s.task == expected


def test_ambiguous_and_impossible_targets_are_refused(tmp_path):
    x = np.zeros((200, 1), np.float32)
    np.savez(tmp_path / "many.npz", x=x, y=np.arange(200, dtype=np.float64))  # 200 whole numbers
    with pytest.raises(ConfigError) as e:
        build_data(_data(name="npz", path=str(tmp_path / "many.npz")), SEED)
    assert e.value.key == "data.task" and "200 distinct whole numbers" in str(e.value)
    np.savez(tmp_path / "frac.npz", x=x[:20], y=np.linspace(0, 1, 20))
    with pytest.raises(DataError, match="fractional values"):
        build_data(_data(name="npz", path=str(tmp_path / "frac.npz"), task="classification"), SEED)
    with pytest.raises(ConfigError, match="data.classes"):
        build_data(_data(name="npz", path=str(tmp_path / "frac.npz"), classes=[0, 1]), SEED)


def _bad(tmp_path: Path, text: str, **node) -> str:
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises((DataError, ConfigError)) as e:
        build_data(_data(path=str(path), **node), SEED)
    return str(e.value)


def test_text_feature_column_is_named_with_its_lines(tmp_path):
    msg = _bad(tmp_path, "a,colour,y\n1,2,0\n2,red,1\n3,4,0\n4,blue,1\n", target="y")
    assert "column 'colour' is not numeric" in msg and "lines 3, 5" in msg and "'red'" in msg
    assert "data.features" in msg  # how to leave it out


def test_missing_target_column_and_missing_target_values(tmp_path):
    msg = _bad(tmp_path, "a,b,y\n1,2,0\n2,3,1\n", target="label")
    assert msg.startswith("Invalid config: data.target='label'") and "['a', 'b', 'y']" in msg
    msg = _bad(tmp_path, "a,b,y\n1,2,0\n2,3,\n3,4,1\n", target="y")
    assert "target column 'y' is missing (empty) on line 3" in msg
    msg = _bad(tmp_path, "a,b,y\n1,,0\n2,3,1\n", target="y")
    assert "feature column 'b' has empty cells (line 2)" in msg
    assert _bad(tmp_path, "a,y\n1,0\n", target=None).startswith("Invalid config: data.target=None")


def test_ragged_rows_are_named(tmp_path):
    msg = _bad(tmp_path, "a,b,y\n1,2,0\n2,3\n3,4,1,9\n5,6,1\n", target="y")
    assert "ragged rows" in msg and "lines 3, 4" in msg and "(3)" in msg


def test_bad_paths_and_npz_contents(tmp_path):
    with pytest.raises(ConfigError, match="data.path"):
        build_data(_data(target="y"), SEED)
    with pytest.raises(DataError, match="no such file"):
        build_data(_data(path=str(tmp_path / "nope.csv"), target="y"), SEED)
    np.savez(tmp_path / "noy.npz", x=np.zeros((4, 2)))
    with pytest.raises(DataError, match=r"lacks the array\(s\) \['y'\]"):
        build_data(_data(name="npz", path=str(tmp_path / "noy.npz")), SEED)
    with pytest.raises(ConfigError, match="data.features"):
        build_data(_data(path=str(_write_csv(tmp_path / "f.csv", ["a", "y"], [[1, 0]])), target="y", features=[]), SEED)


@pytest.mark.parametrize(
    "name,shape,classes",
    [("iris", (4,), 3), ("wine", (13,), 3), ("breast_cancer", (30,), 2), ("diabetes", (10,), 1)],
)
def test_sklearn_tables(name, shape, classes):
    s = build_data(_data(name=name), SEED)
    assert s.input_shape == shape and s.num_classes == classes and len(s.feature_names) == shape[0]
    assert s.task == ("regression" if name == "diabetes" else "classification")
    if name == "iris":
        assert s.class_names == ["setosa", "versicolor", "virginica"]
        assert torch.bincount(s.test.y).tolist() == [10, 10, 10]  # stratified
