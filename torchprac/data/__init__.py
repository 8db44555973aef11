"""Data stage: read a dataset, check it, split it (train/dev/test), normalise with train
statistics, and place every split on the run's device as tensors."""

from __future__ import annotations

import numpy as np
import torch

from torchprac.data.normalize import fit_normalizer
from torchprac.data.sources import DataSpec, RawData
from torchprac.data.splits import Split, Splits, auto_split_sizes, split_indices
from torchprac.errors import ConfigError, DataError

__all__ = ["build_data", "DataSpec", "RawData", "Split", "Splits", "auto_split_sizes", "check_raw"]


def _select_classes(x, y, classes):
    """Keep only `classes` and relabel them 0..k-1 in the given order."""
    keep = np.isin(y, classes)
    remap = {c: i for i, c in enumerate(classes)}
    return x[torch.as_tensor(keep) if isinstance(x, torch.Tensor) else keep], np.vectorize(remap.get)(y[keep]).astype(
        np.int64
    )


def _rows(mask: np.ndarray, limit: int = 5) -> str:
    idx = np.flatnonzero(mask)
    shown = ", ".join(map(str, idx[:limit])) + (", ..." if len(idx) > limit else "")
    return f"{len(idx)} row(s): {shown}"


def check_raw(raw: RawData, name: str) -> None:
    """Labels are integers 0..k-1 with at least two classes, features finite, and every test
    label is one the training data has: checked before any training, naming array and rows."""
    for arr_name, x, y in (("x/y", raw.x, raw.y), ("x_test/y_test", raw.x_test, raw.y_test)):
        if x is None:
            continue
        if len(x) != len(y):
            raise DataError(f"data={name}: {arr_name} have different lengths ({len(x)} examples, {len(y)} labels).")
        xs = x if isinstance(x, torch.Tensor) else torch.from_numpy(np.asarray(x))
        bad = ~torch.isfinite(xs.reshape(len(xs), -1).float()).all(1)
        if bool(bad.any()):
            which = arr_name.split("/")[0]
            raise DataError(
                f"data={name}: array {which} holds NaN or infinite values in {_rows(bad.numpy())}. "
                "Clean or impute them before training."
            )
        neg = np.asarray(y) < 0
        if neg.any():
            raise DataError(
                f"data={name}: labels {arr_name.split('/')[1]} must be class indices >= 0; negative in {_rows(neg)}."
            )
    classes = set(np.unique(raw.y).tolist())
    if len(classes) < 2:
        raise DataError(
            f"data={name}: the training data has a single class ({sorted(classes)}); classification needs at least 2."
        )
    if raw.y_test is not None:
        unseen = ~np.isin(raw.y_test, list(classes))
        if unseen.any():
            raise DataError(
                f"data={name}: y_test has labels {sorted(set(np.asarray(raw.y_test)[unseen].tolist()))} that the "
                f"training data never has ({_rows(unseen)}); the model could never predict them."
            )


def build_data(spec: DataSpec, seed: int, device: torch.device | str = "cpu") -> Splits:
    """Read, check, split, normalise; returns Splits on `device`."""
    raw = spec.read()
    x, y, xt, yt = raw.x, raw.y, raw.x_test, raw.y_test
    classes = spec.classes
    if classes is not None:
        present = set(np.unique(y).tolist())
        if len(classes) < 2 or len(set(classes)) != len(classes) or not set(classes) <= present:
            raise ConfigError("data.classes", classes, f"a list of at least 2 distinct labels among {sorted(present)}")
        x, y = _select_classes(x, y, classes)
        if xt is not None:
            xt, yt = _select_classes(xt, yt, classes)
        raw = RawData(x, y, xt, yt)
    check_raw(raw, spec.name)
    num_classes = int(len(np.unique(y))) if classes is None else len(classes)
    num_classes = max(num_classes, int(y.max()) + 1)

    tr, dv, te = split_indices(
        y, spec.split, seed, has_official_test=xt is not None, n_official_test=0 if yt is None else len(yt)
    )
    if len(dv) == 0 or len(tr) == 0:
        raise ConfigError(
            "data.split",
            spec.split,
            "ratios that leave at least one example in train and in dev",
            f"With {len(y)} examples this gives train {len(tr)}, dev {len(dv)}.",
        )
    subset = spec.train_subset
    if subset is not None and subset < len(tr):
        from sklearn.model_selection import train_test_split

        strat = y[tr] if np.unique(y[tr], return_counts=True)[1].min() >= 2 and subset >= num_classes else None
        tr, _ = train_test_split(tr, train_size=subset, random_state=seed, stratify=strat)
        tr = np.sort(tr)

    def take(a, idx):
        return (
            a[torch.as_tensor(idx)] if isinstance(a, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(a[idx]))
        )

    x_all = x if isinstance(x, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(x))
    train = Split(take(x_all, tr).float(), torch.from_numpy(y[tr]))
    dev = Split(take(x_all, dv).float(), torch.from_numpy(y[dv]))
    if xt is not None:
        xt_t = xt if isinstance(xt, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(xt))
        test = Split(xt_t.float(), torch.from_numpy(yt))
    elif te is not None:
        test = Split(take(x_all, te).float(), torch.from_numpy(y[te]))
    else:
        test = None

    mean = std = None
    if spec.normalize:
        norm = fit_normalizer(train.x)
        mean, std = norm.mean, norm.std
        train.x, dev.x = norm(train.x), norm(dev.x)
        if test is not None:
            test.x = norm(test.x)

    def to_dev(s: Split | None) -> Split | None:
        if s is None:
            return None
        return Split(s.x.to(device, non_blocking=True).contiguous(), s.y.to(device, non_blocking=True))

    return Splits(
        train=to_dev(train),
        dev=to_dev(dev),
        test=to_dev(test),
        input_shape=tuple(train.x.shape[1:]),
        num_classes=num_classes,
        mean=mean,
        std=std,
        name=spec.name,
    )
