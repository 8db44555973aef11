"""Dataset readers. Each returns a RawData: arrays in their natural shape, plus the official
test split when the dataset has one. Everything is read fully into memory."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from torchprac.errors import DataError


@dataclass
class RawData:
    x: np.ndarray | torch.Tensor  # (N, *input_shape), float32
    y: np.ndarray  # (N,) int64
    x_test: np.ndarray | torch.Tensor | None = None
    y_test: np.ndarray | None = None


def _digits(cfg) -> RawData:
    from sklearn.datasets import load_digits

    d = load_digits()
    return RawData(d.images.astype(np.float32)[:, None] / 16.0, d.target.astype(np.int64))


def _moons(cfg) -> RawData:
    from sklearn.datasets import make_moons

    x, y = make_moons(n_samples=cfg.n_samples, noise=cfg.noise, random_state=cfg.get("seed", 0))
    return RawData(x.astype(np.float32), y.astype(np.int64))


def _circles(cfg) -> RawData:
    from sklearn.datasets import make_circles

    x, y = make_circles(
        n_samples=cfg.n_samples,
        noise=cfg.noise,
        factor=cfg.get("factor", 0.5),
        random_state=cfg.get("seed", 0),
    )
    return RawData(x.astype(np.float32), y.astype(np.int64))


def _blobs(cfg) -> RawData:
    from sklearn.datasets import make_blobs

    x, y = make_blobs(
        n_samples=cfg.n_samples,
        centers=cfg.get("centers", 3),
        n_features=cfg.get("n_features", 2),
        cluster_std=cfg.noise,
        random_state=cfg.get("seed", 0),
    )
    return RawData(x.astype(np.float32), y.astype(np.int64))


def _require_root(cfg, what: str, how: str) -> Path:
    if cfg.root is None:
        raise DataError(f"data.root is not set: {what}. {how}")
    root = Path(str(cfg.root)).expanduser()
    if not root.is_dir():
        raise DataError(
            f"data.root={str(cfg.root)!r} does not exist or is not a folder "
            f"(resolved to {root.resolve()}): {what}. {how}"
        )
    if not os.access(root, os.R_OK | os.X_OK):
        raise DataError(f"data.root={str(cfg.root)!r} is not readable: {what}.")
    return root


def _mnist1d(cfg) -> RawData:
    fname = cfg.get("file", "mnist1d_data.npz")
    how = (
        "Point data.root at the folder holding it (e.g. data.root=../shared/data/mnist1d), or "
        "regenerate it with the `mnist1d` package (make_dataset) and save x, y, x_test, y_test "
        "with numpy.savez."
    )
    root = _require_root(cfg, f"MNIST-1D needs {fname} (keys x, y, x_test, y_test)", how)
    path = root / fname
    if not path.is_file():
        raise DataError(f"MNIST-1D file {path} not found (data.root={str(cfg.root)!r}). {how}")
    try:
        with np.load(path, allow_pickle=False) as z:
            x, y, xt, yt = (z[k] for k in ("x", "y", "x_test", "y_test"))
    except KeyError as e:
        raise DataError(f"MNIST-1D file {path} lacks the array {e}; it needs x, y, x_test, y_test.") from None
    except Exception as e:  # zip/npz corruption surfaces as many exception types
        raise DataError(f"MNIST-1D file {path} is corrupt or unreadable ({type(e).__name__}: {e}).") from None
    if x.ndim != 2 or len(x) != len(y) or xt.ndim != 2 or len(xt) != len(yt):
        raise DataError(f"MNIST-1D file {path} has unexpected shapes x{x.shape} y{y.shape} x_test{xt.shape}.")
    # (N, 40) -> (N, 1, 40): one channel, so the cnn model uses Conv1d.
    return RawData(
        x.astype(np.float32)[:, None], y.astype(np.int64), xt.astype(np.float32)[:, None], yt.astype(np.int64)
    )


_TV = {"fashion_mnist": "FashionMNIST", "mnist": "MNIST", "cifar10": "CIFAR10"}


def _torchvision(cfg) -> RawData:
    import torchvision.datasets as tvd

    cls_name = _TV[cfg.name]
    cls = getattr(tvd, cls_name)
    sub = {"FashionMNIST": "FashionMNIST/raw", "MNIST": "MNIST/raw", "CIFAR10": "cifar-10-batches-py"}[cls_name]
    how = (
        f"torchvision expects the files under <data.root>/{sub}/. Copy them there "
        f"(e.g. data.root=../shared/data has FashionMNIST), or pass data.download=true on a machine "
        "with internet access."
    )
    download = bool(cfg.get("download", False))
    if download:
        Path(str(cfg.root)).expanduser().mkdir(parents=True, exist_ok=True)
    root = _require_root(cfg, f"{cls_name} is read from data.root", how)
    try:
        train = cls(str(root), train=True, download=download)
        test = cls(str(root), train=False, download=download)
    except RuntimeError as e:  # torchvision: "Dataset not found or corrupted..."
        raise DataError(f"{cls_name} not found under {root / sub} ({e}). {how}") from None
    except Exception as e:
        raise DataError(
            f"{cls_name} files under {root / sub} are corrupt or unreadable ({type(e).__name__}: {e})."
        ) from None

    def arrays(ds) -> tuple[torch.Tensor, np.ndarray]:
        data = torch.as_tensor(ds.data)
        if data.ndim == 3:  # (N, H, W) grey -> (N, 1, H, W)
            data = data[:, None]
        else:  # CIFAR: (N, H, W, C) -> (N, C, H, W)
            data = data.permute(0, 3, 1, 2)
        return data.float().div_(255.0), np.asarray(ds.targets, dtype=np.int64)

    x, y = arrays(train)
    xt, yt = arrays(test)
    return RawData(x, y, xt, yt)


READERS = {
    "digits": _digits,
    "moons": _moons,
    "circles": _circles,
    "blobs": _blobs,
    "mnist1d": _mnist1d,
    "fashion_mnist": _torchvision,
    "mnist": _torchvision,
    "cifar10": _torchvision,
}


def read(cfg) -> RawData:
    return READERS[cfg.name](cfg)
