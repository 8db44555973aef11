"""The target column: which task it is (`data.task=auto` infers it where the values say so
unambiguously) and its encoding — class indices 0..k-1 with their names for classification,
float32 values for regression."""

from __future__ import annotations

import numpy as np

from torchprac.data.sources import RawData
from torchprac.errors import ConfigError, DataError

CLASSIFICATION, REGRESSION = "classification", "regression"
# Integral float targets with at most this many distinct values read as class labels.
MAX_AUTO_CLASSES = 50


def _rows(mask: np.ndarray, limit: int = 5) -> str:
    idx = np.flatnonzero(mask)
    return f"{len(idx)} row(s): " + ", ".join(map(str, idx[:limit])) + (", ..." if len(idx) > limit else "")


def _flat(y: np.ndarray, name: str, which: str) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:  # (N, 1) column vector
        y = y[:, 0]
    if y.ndim != 1:
        raise DataError(f"data={name}: {which} must hold one target per example, shape (N,) or (N, 1); got {y.shape}.")
    return y


def _is_text(y: np.ndarray) -> bool:
    return y.dtype.kind in "USO"


def _integral(y: np.ndarray) -> bool:
    return bool(np.all(np.isfinite(y)) and np.all(y == np.round(y)))


def infer_task(y: np.ndarray, requested: str, name: str) -> str:
    """`requested` (auto | classification | regression) made definite from the target values."""
    if requested != "auto":
        return requested
    if _is_text(y) or y.dtype.kind in "iub":
        return CLASSIFICATION  # integer arrays and text are labels
    if not _integral(y):
        return REGRESSION  # fractional values: a quantity
    k = len(np.unique(y))
    if k <= MAX_AUTO_CLASSES:
        return CLASSIFICATION
    raise ConfigError(
        "data.task",
        "auto",
        "classification or regression",
        f"data={name}: the target holds {k} distinct whole numbers, which could be class labels or a "
        "quantity; say which with data.task=regression or data.task=classification.",
    )


def _label_names(y: np.ndarray) -> np.ndarray:
    """Text of each label: '3' for 3 and 3.0, the string itself for text."""
    if _is_text(y):
        return np.char.strip(y.astype(str))
    if y.dtype.kind == "f":
        return np.array([f"{v:g}" for v in y.tolist()], dtype=str)
    return y.astype(np.int64).astype(str)


def _encode(y: np.ndarray, names: list[str], which: str, name: str, fixed: bool) -> np.ndarray:
    text = _label_names(y)
    index = {n: i for i, n in enumerate(names)}
    unknown = ~np.isin(text, names)
    if unknown.any():
        where = "the checkpoint's classes" if fixed else "the training data's classes"
        raise DataError(
            f"data={name}: {which} has labels {sorted(set(text[unknown].tolist()))[:10]} that are not among "
            f"{where} {names[:20]} ({_rows(unknown)})."
        )
    return np.array([index[t] for t in text.tolist()], dtype=np.int64)


def resolve_target(
    raw: RawData, requested: str, name: str, class_names: list[str] | None = None
) -> tuple[str, RawData]:
    """(task, RawData with encoded targets and, where known, its class names).

    Integer label arrays (every built-in dataset) are kept as the class indices they are.
    Text and float labels become indices 0..k-1 in sorted order, named by their text.
    `class_names` (a checkpoint's classes, for evaluation) fixes the mapping by name."""
    y = _flat(raw.y, name, "y")
    yt = None if raw.y_test is None else _flat(raw.y_test, name, "y_test")
    if _is_text(y):
        missing = np.char.strip(y.astype(str)) == ""
        if missing.any():
            raise DataError(f"data={name}: the target is missing (empty) in {_rows(missing)}; drop or fill those rows.")
    elif y.dtype.kind == "f" and not np.all(np.isfinite(y)):
        bad = ~np.isfinite(y)
        raise DataError(f"data={name}: the target is missing (NaN or infinite) in {_rows(bad)}; drop or fill them.")
    task = infer_task(y, raw.task if requested == "auto" and raw.task else requested, name)
    if task == REGRESSION:
        for which, arr in (("y", y), ("y_test", yt)):
            if arr is not None and _is_text(arr):
                raise DataError(
                    f"data={name}: data.task=regression needs a numeric target, but {which} holds text "
                    f"(e.g. {str(arr[0])!r}). Use data.task=classification for labels."
                )
        yt_f = None if yt is None else yt.astype(np.float32)
        return task, RawData(raw.x, y.astype(np.float32), raw.x_test, yt_f, None, raw.feature_names)
    if not _is_text(y) and not _integral(y):
        bad = ~((y == np.round(y)) & np.isfinite(y))
        raise DataError(
            f"data={name}: data.task=classification needs whole-number or text labels; the target has "
            f"fractional values in {_rows(bad)}. Use data.task=regression for a quantity."
        )
    if class_names is None and y.dtype.kind in "iu" and (yt is None or yt.dtype.kind in "iu"):
        # Class indices already (digits, torchvision, npz labels): unchanged.
        return task, RawData(raw.x, y.astype(np.int64), raw.x_test, yt, raw.class_names, raw.feature_names)
    fixed = class_names is not None
    if class_names is None:
        uniq = np.unique(_label_names(y))
        # numeric labels in numeric order (2 before 10), text in text order
        class_names = sorted(uniq.tolist(), key=float) if not _is_text(y) else uniq.tolist()
    elif raw.class_names is not None and y.dtype.kind in "iu":
        y = np.asarray(raw.class_names, dtype=str)[y]  # indices of the source -> their names
        if yt is not None:
            yt = np.asarray(raw.class_names, dtype=str)[yt]
    enc = _encode(y, class_names, "y", name, fixed)
    enc_t = None if yt is None else _encode(yt, class_names, "y_test", name, True)
    return task, RawData(raw.x, enc, raw.x_test, enc_t, list(class_names), raw.feature_names)
