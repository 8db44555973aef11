"""Every dataset reader of the data group (on generated files when ../shared is absent)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from conftest import CPU, make_rc

from torchprac.data import build_data
from torchprac.errors import DataError


def _data(overrides):
    return build_data(make_rc(overrides).data, 0, CPU)


@pytest.mark.parametrize(
    "name,shape,k", [("digits", (1, 8, 8), 10), ("moons", (2,), 2), ("circles", (2,), 2), ("blobs", (2,), 3)]
)
def test_builtin_sets(name, shape, k):
    s = _data([f"data={name}"])
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
    s = _data(["data=mnist1d", f"data.root={tmp_path}"])
    assert s.input_shape == (1, 40) and len(s.test) == 100  # official test split stays the test set
    assert len(s.train) + len(s.dev) == 500 and len(s.dev) == 120  # 0.2 * (500 + 100)


def test_mnist1d_real(shared_data):
    s = _data(["data=mnist1d", f"data.root={shared_data / 'mnist1d'}"])
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
    s = _data([f"data={name}", f"data.root={tmp_path}"])
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
    s = _data(["data=cifar10", f"data.root={tmp_path}"])
    assert s.input_shape == (3, 32, 32) and len(s.test) == 20 and s.mean.shape == (3, 1, 1)


def test_missing_root_says_where_and_how(tmp_path):
    with pytest.raises(DataError, match=r"FashionMNIST/raw.*data.download=true"):
        _data(["data=fashion_mnist", f"data.root={tmp_path / 'nope'}"])


def test_fashion_mnist_real(shared_data):
    s = _data(["data=fashion_mnist", f"data.root={shared_data}"])
    assert (len(s.train), len(s.dev), len(s.test)) == (50_000, 10_000, 10_000)
