"""Data stage: read a dataset, check it, split it (train/dev/test), normalise with train
statistics, and place every split on the run's device as tensors."""

from __future__ import annotations

import logging

import numpy as np
import torch

from torchprac.data.meta import DataMeta
from torchprac.data.normalize import Normalizer, fit_normalizer
from torchprac.data.sources import DataSpec, RawData
from torchprac.data.splits import Split, Splits, auto_split_sizes, split_indices
from torchprac.data.stream import ArrayExamples, Examples, StreamSplit, default_workers, should_stream, streamed_stats
from torchprac.data.target import CLASSIFICATION, REGRESSION, resolve_target
from torchprac.errors import ConfigError, DataError

__all__ = ["build_data", "DataMeta", "DataSpec", "RawData", "Split", "Splits", "auto_split_sizes", "check_raw"]

log = logging.getLogger("torchprac")


def _select_classes(x, y, classes):
    """Keep only `classes` and relabel them 0..k-1 in the given order."""
    keep = np.isin(y, classes)
    remap = {c: i for i, c in enumerate(classes)}
    if isinstance(x, Examples):  # decoded on demand: keep the rows' indices
        return x.subset(np.flatnonzero(keep)), np.vectorize(remap.get)(y[keep]).astype(np.int64)
    return x[torch.as_tensor(keep) if isinstance(x, torch.Tensor) else keep], np.vectorize(remap.get)(y[keep]).astype(
        np.int64
    )


def _rows(mask: np.ndarray, limit: int = 5) -> str:
    idx = np.flatnonzero(mask)
    shown = ", ".join(map(str, idx[:limit])) + (", ..." if len(idx) > limit else "")
    return f"{len(idx)} row(s): {shown}"


def check_raw(raw: RawData, name: str, task: str = CLASSIFICATION) -> None:
    """Labels are integers 0..k-1 with at least two classes, features finite, and every test
    label is one the training data has: checked before any training, naming array and rows.
    (Regression targets: data/target.py already checked they are finite numbers.)"""
    for arr_name, x, y in (("x/y", raw.x, raw.y), ("x_test/y_test", raw.x_test, raw.y_test)):
        if x is None:
            continue
        if len(x) != len(y):
            raise DataError(f"data={name}: {arr_name} have different lengths ({len(x)} examples, {len(y)} labels).")
        # images decoded on demand (Examples) are finite by construction: not decoded here
        xs = None if isinstance(x, Examples) else x if isinstance(x, torch.Tensor) else torch.from_numpy(np.asarray(x))
        bad = torch.zeros(1, dtype=torch.bool)
        if xs is not None:
            bad = ~torch.isfinite(xs.reshape(len(xs), -1).float()).all(1)
        if bool(bad.any()):
            which = arr_name.split("/")[0]
            raise DataError(
                f"data={name}: array {which} holds NaN or infinite values in {_rows(bad.numpy())}. "
                "Clean or impute them before training."
            )
        neg = np.asarray(y) < 0
        if task == CLASSIFICATION and neg.any():
            raise DataError(
                f"data={name}: labels {arr_name.split('/')[1]} must be class indices >= 0; negative in {_rows(neg)}."
            )
    if task != CLASSIFICATION:
        return
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


def _integer_labels(y: np.ndarray) -> bool:
    y = np.asarray(y)
    return y.dtype.kind in "iu" or (y.dtype.kind == "f" and bool(np.all(y == np.round(y))))


def _reorder_features(raw: RawData, meta: DataMeta, name: str) -> RawData:
    """Evaluation data: its feature columns in the order the model was trained on, by name."""
    want, have = meta.feature_names, raw.feature_names
    if not want or not have or list(want) == list(have):
        return raw
    missing = [f for f in want if f not in have]
    if missing:
        raise DataError(
            f"data={name}: the model was trained on the feature columns {list(want)}; this data lacks {missing}."
        )
    idx = [have.index(f) for f in want]
    xt = None if raw.x_test is None else raw.x_test[:, idx]
    return RawData(raw.x[:, idx], raw.y, xt, raw.y_test, raw.class_names, list(want))


def build_data(spec: DataSpec, seed: int, device: torch.device | str = "cpu", meta: DataMeta | None = None) -> Splits:
    """Read, check, split, normalise; returns Splits on `device`. `meta` (a checkpoint's
    DataMeta, to evaluate a trained model): its task, class names and training statistics are
    used unchanged instead of being fitted on this data."""
    raw = spec.read()
    classes = spec.classes
    if classes is not None:
        if spec.task == REGRESSION or (meta is not None and meta.task == REGRESSION):
            raise ConfigError("data.classes", classes, "null for a regression target")
        x, y, xt, yt = raw.x, raw.y, raw.x_test, raw.y_test
        if not _integer_labels(y):
            raise ConfigError("data.classes", classes, "null: it selects integer labels, and this target is not")
        present = set(np.unique(y).tolist())
        if len(classes) < 2 or len(set(classes)) != len(classes) or not set(classes) <= present:
            raise ConfigError("data.classes", classes, f"a list of at least 2 distinct labels among {sorted(present)}")
        x, y = _select_classes(x, y, classes)
        if xt is not None:
            xt, yt = _select_classes(xt, yt, classes)
        names = [raw.class_names[c] if raw.class_names else str(c) for c in classes]
        raw = RawData(x, y, xt, yt, names, raw.feature_names)
    fixed = meta.names if meta is not None and meta.task == CLASSIFICATION else None
    task, raw = resolve_target(raw, meta.task if meta is not None else spec.task, spec.name, fixed)
    if meta is not None:
        raw = _reorder_features(raw, meta, spec.name)
    x, y, xt, yt = raw.x, raw.y, raw.x_test, raw.y_test
    check_raw(raw, spec.name, task)
    if task == CLASSIFICATION:
        if spec.bayes_error >= 1:
            raise ConfigError("data.bayes_error", spec.bayes_error, "an error rate in [0, 1) for classification")
        num_classes = int(len(np.unique(y))) if classes is None else len(classes)
        num_classes = max(num_classes, int(y.max()) + 1, len(raw.class_names or []))
        if meta is not None:
            num_classes = meta.num_outputs
    else:
        num_classes = 1  # one output: the predicted value

    tr, dv, te = split_indices(
        y,
        spec.split,
        seed,
        has_official_test=xt is not None,
        n_official_test=0 if yt is None else len(yt),
        stratify=task == CLASSIFICATION,
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
        strat = strat if task == CLASSIFICATION else None
        tr, _ = train_test_split(tr, train_size=subset, random_state=seed, stratify=strat)
        tr = np.sort(tr)

    def take(a, idx):
        return (
            a[torch.as_tensor(idx)] if isinstance(a, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(a[idx]))
        )

    # data.in_memory: stream batches through a DataLoader when the decoded data would not fit
    lazy = isinstance(x, Examples)  # decoded on demand (image folders)
    workers = default_workers() if spec.workers is None else spec.workers
    if should_stream(spec.in_memory, _nbytes(x) + _nbytes(xt), spec.memory_limit, device):
        return _streaming(spec, raw, task, num_classes, (tr, dv, te), meta, device, workers)
    if lazy:  # into memory now, decoded by parallel workers
        x, xt = x.load(workers=workers), None if xt is None else xt.load(workers=workers)

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

    _check_shape(spec, meta, tuple(train.x.shape[1:]))
    mean = std = None
    norm = None
    if meta is not None:  # the checkpoint's training statistics, never refitted
        if meta.mean is not None:
            norm = Normalizer(meta.mean, meta.std)
    elif spec.normalize:
        # image folders: the batched float64 pass a streaming run makes, so both paths agree exactly
        norm = Normalizer(*streamed_stats(ArrayExamples(train.x))) if lazy else fit_normalizer(train.x)
    if norm is not None:
        mean, std = norm.mean, norm.std
        train.x, dev.x = norm(train.x), norm(dev.x)
        if test is not None:
            test.x = norm(test.x)
    y_mean, y_std = _target_scaling(spec, task, meta, train.y)
    if task == REGRESSION:
        for s in (train, dev, test):
            if s is not None:
                s.y = ((s.y.double() - y_mean) / y_std).float()

    def to_dev(s: Split | None) -> Split | None:
        if s is None:
            return None
        return Split(s.x.to(device, non_blocking=True).contiguous(), s.y.to(device, non_blocking=True))

    return Splits(
        train=to_dev(train),
        dev=to_dev(dev),
        test=to_dev(test),
        input_shape=tuple(train.x.shape[1:]),
        **_described(spec, raw, task, num_classes, mean, std, y_mean, y_std),
    )


def _described(spec, raw, task, num_classes, mean, std, y_mean, y_std) -> dict:
    """What Splits records about the data besides the tensors (in memory or streamed alike)."""
    return {
        "num_classes": num_classes,
        "mean": mean,
        "std": std,
        "name": spec.name,
        "task": task,
        "class_names": raw.class_names,
        "feature_names": raw.feature_names,
        "y_mean": y_mean,
        "y_std": y_std,
    }


def _nbytes(a) -> int:
    """Size of an input array (or of the examples a lazy source would decode) as float32."""
    if a is None:
        return 0
    return a.nbytes() if isinstance(a, Examples) else int(np.prod(tuple(a.shape))) * 4


def _check_shape(spec: DataSpec, meta: DataMeta | None, shape: tuple[int, ...]) -> None:
    if meta is not None and tuple(meta.input_shape) != shape:
        raise DataError(
            f"data={spec.name}: examples of shape {shape}, but the model was trained on "
            f"{tuple(meta.input_shape)} ({meta.source or 'its data'}"
            + (f", features {meta.feature_names}" if meta.feature_names else "")
            + "). Give it data of the same shape (feature count, image size and channels)."
        )


def _target_scaling(spec: DataSpec, task: str, meta: DataMeta | None, y_train: torch.Tensor) -> tuple[float, float]:
    """Regression: (mean, std) the target is standardised with (train statistics, or the checkpoint's)."""
    if task != REGRESSION:
        return 0.0, 1.0
    if meta is not None:
        return meta.y_mean, meta.y_std
    if not spec.normalize_target:
        return 0.0, 1.0
    # the MSE is then in units of the target's variance (data.bayes_error too)
    y64 = y_train.double()
    return float(y64.mean()), max(float(y64.std(unbiased=False)), 1e-12)


def _streaming(spec: DataSpec, raw: RawData, task: str, num_classes: int, idx, meta, device, workers: int) -> Splits:
    """Splits whose inputs stay where they are (files, host arrays) and reach the device batch by
    batch through a DataLoader (data/stream.py); the labels go to the device as usual."""
    tr, dv, te = idx
    ex = raw.x if isinstance(raw.x, Examples) else ArrayExamples(raw.x)
    ex_t = None if raw.x_test is None else raw.x_test if isinstance(raw.x_test, Examples) else ArrayExamples(raw.x_test)
    _check_shape(spec, meta, tuple(ex.shape))
    y = raw.y
    ys = {"train": torch.from_numpy(y[tr]), "dev": torch.from_numpy(y[dv])}
    parts = {"train": ex.subset(tr), "dev": ex.subset(dv)}
    if ex_t is not None:
        parts["test"], ys["test"] = ex_t, torch.from_numpy(raw.y_test)
    elif te is not None:
        parts["test"], ys["test"] = ex.subset(te), torch.from_numpy(y[te])
    mean = std = None
    if meta is not None:
        mean, std = meta.mean, meta.std
    elif spec.normalize:
        if isinstance(raw.x, Examples):
            mean, std = streamed_stats(parts["train"], workers)
        else:  # host arrays: exactly the in-memory path's statistics
            x_tr = raw.x[torch.as_tensor(tr)] if isinstance(raw.x, torch.Tensor) else torch.from_numpy(raw.x[tr])
            norm = fit_normalizer(x_tr.float())
            mean, std = norm.mean, norm.std
    y_mean, y_std = _target_scaling(spec, task, meta, ys["train"])
    splits = {}
    for name, part in parts.items():
        yy = ys[name]
        if task == REGRESSION:
            yy = ((yy.double() - y_mean) / y_std).float()
        splits[name] = StreamSplit(part, yy.to(device), mean, std, workers)
    log.info("data %s: streaming from %s with %d DataLoader worker(s)", spec.name, type(ex).__name__, workers)
    return Splits(
        train=splits["train"],
        dev=splits["dev"],
        test=splits.get("test"),
        input_shape=tuple(ex.shape),
        **_described(spec, raw, task, num_classes, mean, std, y_mean, y_std),
    )
