"""The data group: dataset readers, each registered with its own keys beside the keys every
dataset shares (split, normalize, ...). A reader returns a RawData: arrays in their natural
shape, plus the official test split when the dataset has one, read fully into memory."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from torchprac.data.splits import check_ratios
from torchprac.errors import ConfigError, DataError
from torchprac.registry import Param, anything, flag, int_list, integer, num, one_of, register, text


@dataclass
class RawData:
    x: np.ndarray | torch.Tensor  # (N, *input_shape), float32
    y: np.ndarray  # (N,): int64 class indices, or a raw target (floats, strings: data/target.py encodes it)
    x_test: np.ndarray | torch.Tensor | None = None
    y_test: np.ndarray | None = None
    class_names: list[str] | None = None  # names of the class indices 0..k-1, when the source has them
    feature_names: list[str] | None = None  # tabular sources: the feature columns, in order
    task: str | None = None  # what the target is when the source knows (data.task=auto follows it)


@dataclass
class DataSpec:
    """A dataset choice before it is read: `read()` gives the RawData; the rest says how the
    splits are made (data/__init__.py's build_data)."""

    name: str
    read: Callable[[], RawData]
    split: Any = "auto"
    normalize: bool = True
    bayes_error: float = 0.0
    classes: list[int] | None = None
    train_subset: int | None = None
    task: str = "auto"  # auto | classification | regression (data/target.py infers auto)
    normalize_target: bool = True  # regression: standardise y with the training split's mean/std
    in_memory: Any = "auto"  # auto | true | false: false streams batches through a DataLoader (data/stream.py)
    memory_limit: float | None = None  # GiB above which auto streams (None: half the free RAM / GPU memory)
    workers: int | None = None  # streaming DataLoader workers (None: min(4, cores - 1))


def _split_rule(v: Any) -> str | None:
    try:
        check_ratios(v)
    except ConfigError as e:
        return e.allowed
    return None


COMMON: dict[str, Param] = {
    "root": text(optional=True),
    "split": anything(optional=False, check=_split_rule),
    "normalize": flag(),
    "bayes_error": num(0),  # an error rate (< 1, checked with the task) or, for regression, a loss
    "classes": int_list(0, optional=True),
    "train_subset": integer(1, optional=True),
    "task": one_of("auto", "classification", "regression"),
    "normalize_target": flag(),
    "in_memory": one_of("auto", True, False),
    "memory_limit": num(0, lo_open=True, optional=True),
    "workers": integer(0, optional=True),
}


def dataset(name: str, **params: Param) -> Callable[[Callable[..., RawData]], Callable[..., RawData]]:
    """Register reader `fn(**its keys)` as data=name; the shared keys make the DataSpec."""

    def deco(fn: Callable[..., RawData]) -> Callable[..., RawData]:
        def build(
            split: Any = "auto",
            normalize: bool = True,
            bayes_error: float = 0.0,
            classes: list[int] | None = None,
            train_subset: int | None = None,
            task: str = "auto",
            normalize_target: bool = True,
            in_memory: Any = "auto",
            memory_limit: float | None = None,
            workers: int | None = None,
            **kwargs: Any,
        ) -> DataSpec:
            read = partial(fn, **{k: v for k, v in kwargs.items() if k in params})
            return DataSpec(
                name,
                read,
                split,
                normalize,
                bayes_error,
                classes,
                train_subset,
                task,
                normalize_target,
                in_memory,
                memory_limit,
                workers,
            )

        register("data", name, **{**COMMON, **params})(build)
        return fn

    return deco


_TOY = {"n_samples": integer(20), "noise": num(0), "seed": integer(0)}


@dataset("digits")
def _digits() -> RawData:
    from sklearn.datasets import load_digits

    d = load_digits()
    return RawData(d.images.astype(np.float32)[:, None] / 16.0, d.target.astype(np.int64))


@dataset("moons", **_TOY)
def _moons(n_samples: int = 1000, noise: float = 0.2, seed: int = 0) -> RawData:
    from sklearn.datasets import make_moons

    x, y = make_moons(n_samples=n_samples, noise=noise, random_state=seed)
    return RawData(x.astype(np.float32), y.astype(np.int64))


@dataset("circles", **_TOY, factor=num(0, 1, hi_open=True))
def _circles(n_samples: int = 1000, noise: float = 0.1, factor: float = 0.5, seed: int = 0) -> RawData:
    from sklearn.datasets import make_circles

    x, y = make_circles(n_samples=n_samples, noise=noise, factor=factor, random_state=seed)
    return RawData(x.astype(np.float32), y.astype(np.int64))


@dataset("blobs", **_TOY, centers=integer(2), n_features=integer(1))
def _blobs(n_samples: int = 1000, noise: float = 1.0, centers: int = 3, n_features: int = 2, seed: int = 0) -> RawData:
    from sklearn.datasets import make_blobs

    x, y = make_blobs(n_samples=n_samples, centers=centers, n_features=n_features, cluster_std=noise, random_state=seed)
    return RawData(x.astype(np.float32), y.astype(np.int64))


def _require_root(root_s: str | None, what: str, how: str) -> Path:
    if root_s is None:
        raise DataError(f"data.root is not set: {what}. {how}")
    root = Path(str(root_s)).expanduser()
    if not root.is_dir():
        raise DataError(
            f"data.root={str(root_s)!r} does not exist or is not a folder (resolved to {root.resolve()}): {what}. {how}"
        )
    if not os.access(root, os.R_OK | os.X_OK):
        raise DataError(f"data.root={str(root_s)!r} is not readable: {what}.")
    return root


@dataset("mnist1d", root=text(optional=True), file=text())
def _mnist1d(root: str | None = None, file: str = "mnist1d_data.npz") -> RawData:
    fname = file
    how = (
        "Point data.root at the folder holding it (e.g. data.root=../shared/data/mnist1d), or "
        "regenerate it with the `mnist1d` package (make_dataset) and save x, y, x_test, y_test "
        "with numpy.savez."
    )
    root_p = _require_root(root, f"MNIST-1D needs {fname} (keys x, y, x_test, y_test)", how)
    path = root_p / fname
    if not path.is_file():
        raise DataError(f"MNIST-1D file {path} not found (data.root={str(root)!r}). {how}")
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


def _torchvision(name: str, root: str | None = None, download: bool = False) -> RawData:
    import torchvision.datasets as tvd

    cls_name = _TV[name]
    cls = getattr(tvd, cls_name)
    sub = {"FashionMNIST": "FashionMNIST/raw", "MNIST": "MNIST/raw", "CIFAR10": "cifar-10-batches-py"}[cls_name]
    how = (
        f"torchvision expects the files under <data.root>/{sub}/. Copy them there "
        f"(e.g. data.root=../shared/data has FashionMNIST), or pass data.download=true on a machine "
        "with internet access."
    )
    if download and root is not None:
        Path(str(root)).expanduser().mkdir(parents=True, exist_ok=True)
    root_p = _require_root(root, f"{cls_name} is read from data.root", how)
    try:
        train = cls(str(root_p), train=True, download=download)
        test = cls(str(root_p), train=False, download=download)
    except RuntimeError as e:  # torchvision: "Dataset not found or corrupted..."
        raise DataError(f"{cls_name} not found under {root_p / sub} ({e}). {how}") from None
    except Exception as e:
        raise DataError(
            f"{cls_name} files under {root_p / sub} are corrupt or unreadable ({type(e).__name__}: {e})."
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


for _name in _TV:
    dataset(_name, root=text(optional=True), download=flag())(partial(_torchvision, _name))
