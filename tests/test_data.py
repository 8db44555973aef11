"""Splits, normalisation, and every data YAML built (on generated files when ../shared is absent)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from conftest import make_cfg

from torchprac.data import auto_split_sizes, build_data
from torchprac.data.splits import split_indices
from torchprac.errors import ConfigError, DataError
from torchprac.validate import validate

CPU = torch.device("cpu")


def test_auto_split_sizes_follow_the_rule():
    assert auto_split_sizes(10_000) == (6_000, 2_000, 2_000)  # 60/20/20
    tr, dv, te = auto_split_sizes(1_000_000)  # computed, never materialised
    assert (tr / 1e6, dv / 1e6, te / 1e6) == (0.98, 0.01, 0.01)
    assert auto_split_sizes(4_000_000) == (3_980_000, 10_000, 10_000)  # 99.5/0.25/0.25


def test_split_is_stratified_seeded_and_disjoint():
    y = np.repeat(np.arange(5), 200)
    a = split_indices(y, "auto", seed=3, has_official_test=False)
    b = split_indices(y, "auto", seed=3, has_official_test=False)
    c = split_indices(y, "auto", seed=4, has_official_test=False)
    assert all(np.array_equal(p, q) for p, q in zip(a, b))
    assert not np.array_equal(a[1], c[1])
    tr, dv, te = a
    assert (len(tr), len(dv), len(te)) == (600, 200, 200)
    assert len(set(tr) | set(dv) | set(te)) == 1000
    for part in (dv, te):  # stratified: 40 of each class
        assert np.bincount(y[part]).tolist() == [40] * 5


def test_explicit_ratios_without_test():
    y = np.repeat(np.arange(2), 500)
    tr, dv, te = split_indices(y, [0.7, 0.3, 0.0], seed=0, has_official_test=False)
    assert (len(tr), len(dv), te) == (700, 300, None)


@pytest.mark.parametrize("split", [[0.5, 0.2, 0.2], [0.7], "half", [0.0, 1.0, 0.0], [1.2, -0.2, 0.0]])
def test_bad_ratios_are_refused(split):
    cfg = make_cfg([f"data.split={split!r}" if isinstance(split, str) else f"data.split={split}"], "/tmp/x")
    with pytest.raises(ConfigError, match="data.split"):
        validate(cfg)


def test_normalisation_uses_train_statistics_only():
    s = build_data(make_cfg(["data=moons", "data.n_samples=1000"], "/tmp/x").data, seed=0, device=CPU)
    raw = build_data(make_cfg(["data=moons", "data.n_samples=1000", "data.normalize=false"], "/tmp/x").data, 0, CPU)
    mu, sd = raw.train.x.double().mean(0), raw.train.x.double().std(0, unbiased=False)
    torch.testing.assert_close(s.mean.double(), mu, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(s.std.double(), sd, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(s.train.x.mean(0), torch.zeros(2), atol=1e-5, rtol=0)
    # dev/test transformed with the TRAIN statistics, not their own
    torch.testing.assert_close(s.dev.x, ((raw.dev.x - mu) / sd).float(), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(s.test.x, ((raw.test.x - mu) / sd).float(), rtol=1e-5, atol=1e-5)
    assert s.dev.x.mean(0).abs().max() > 1e-4  # dev is not re-centred on its own mean


def test_image_normalisation_is_per_channel():
    s = build_data(make_cfg([], "/tmp/x").data, 0, CPU)
    assert s.input_shape == (1, 8, 8) and s.mean.shape == (1, 1, 1)
    assert abs(s.train.x.mean().item()) < 1e-5 and s.train.x.std(unbiased=False).item() == pytest.approx(1, rel=1e-4)


@pytest.mark.parametrize(
    "name,shape,k", [("digits", (1, 8, 8), 10), ("moons", (2,), 2), ("circles", (2,), 2), ("blobs", (2,), 3)]
)
def test_builtin_sets(name, shape, k):
    s = build_data(make_cfg([f"data={name}"], "/tmp/x").data, 0, CPU)
    assert s.input_shape == shape and s.num_classes == k
    assert s.train.x.dtype == torch.float32 and s.train.y.dtype == torch.int64
    assert len(s.dev) == len(s.test) == int(0.2 * (len(s.train) + len(s.dev) + len(s.test)))


def test_mnist1d_official_test_kept(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(
        tmp_path / "mnist1d_data.npz",
        x=rng.normal(size=(500, 40)),
        y=np.arange(500) % 10,
        x_test=rng.normal(size=(100, 40)),
        y_test=np.arange(100) % 10,
    )
    s = build_data(make_cfg(["data=mnist1d", f"data.root={tmp_path}"], "/tmp/x").data, 0, CPU)
    assert s.input_shape == (1, 40) and len(s.test) == 100  # official test split stays the test set
    assert len(s.train) + len(s.dev) == 500 and len(s.dev) == 120  # 0.2 * (500 + 100)


def test_mnist1d_real(shared_data):
    s = build_data(make_cfg(["data=mnist1d", f"data.root={shared_data / 'mnist1d'}"], "/tmp/x").data, 0, CPU)
    assert (len(s.train), len(s.dev), len(s.test)) == (3000, 1000, 1000)


def _write_idx(path, arr: np.ndarray):
    magic = {1: 0x801, 3: 0x803}[arr.ndim]
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in arr.shape)
    path.write_bytes(header + arr.astype(np.uint8).tobytes())


@pytest.mark.parametrize("name,folder", [("mnist", "MNIST"), ("fashion_mnist", "FashionMNIST")])
def test_torchvision_idx_sets(tmp_path, name, folder):
    raw = tmp_path / folder / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 300), ("t10k", 50)):
        _write_idx(raw / f"{prefix}-images-idx3-ubyte", rng.integers(0, 255, (n, 28, 28)))
        _write_idx(raw / f"{prefix}-labels-idx1-ubyte", np.arange(n) % 10)
    s = build_data(make_cfg([f"data={name}", f"data.root={tmp_path}"], "/tmp/x").data, 0, CPU)
    assert s.input_shape == (1, 28, 28) and len(s.test) == 50 and s.num_classes == 10
    assert len(s.train) + len(s.dev) == 300 and len(s.dev) == 70  # 0.2 * (300 + 50)


def test_cifar10(tmp_path, monkeypatch):
    import torchvision.datasets as tvd
    import torchvision.datasets.cifar as tvc

    # Generated stand-in files: skip torchvision's md5 checks of the real archive.
    monkeypatch.setattr(tvd.CIFAR10, "_check_integrity", lambda self: True)
    monkeypatch.setattr(tvc, "check_integrity", lambda *a, **k: True)
    d = tmp_path / "cifar-10-batches-py"
    d.mkdir()
    rng = np.random.default_rng(0)
    for f in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        with open(d / f, "wb") as fh:
            pickle.dump(
                {"data": rng.integers(0, 255, (20, 3072), dtype=np.uint8), "labels": list(np.arange(20) % 10)}, fh
            )
    with open(d / "batches.meta", "wb") as fh:
        pickle.dump({"label_names": [str(i) for i in range(10)]}, fh)
    s = build_data(make_cfg(["data=cifar10", f"data.root={tmp_path}"], "/tmp/x").data, 0, CPU)
    assert s.input_shape == (3, 32, 32) and len(s.test) == 20 and s.mean.shape == (3, 1, 1)


def test_missing_root_says_where_and_how(tmp_path):
    with pytest.raises(DataError, match=r"FashionMNIST/raw.*data.download=true"):
        build_data(make_cfg(["data=fashion_mnist", f"data.root={tmp_path / 'nope'}"], "/tmp/x").data, 0, CPU)


def test_fashion_mnist_real(shared_data):
    s = build_data(make_cfg(["data=fashion_mnist", f"data.root={shared_data}"], "/tmp/x").data, 0, CPU)
    assert (len(s.train), len(s.dev), len(s.test)) == (50_000, 10_000, 10_000)


def test_classes_subset_and_train_subset():
    cfg = make_cfg(["data.classes=[3,8]", "data.train_subset=40"], "/tmp/x")
    s = build_data(cfg.data, 0, CPU)
    assert s.num_classes == 2 and len(s.train) == 40
    counts = torch.bincount(s.train.y).tolist()
    assert len(counts) == 2 and abs(counts[0] - counts[1]) <= 2  # stratified: 183:174 in digits
