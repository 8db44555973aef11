"""Your own tabular data — `data=csv`, `data=npz` — and scikit-learn's bundled offline tables
(`iris`, `wine`, `breast_cancer` for classification, `diabetes` for regression).

A CSV is read with the standard library's csv module: every feature column must be numeric;
the target may be numbers (class labels or a quantity, see data/target.py) or text labels.
Problems are reported with the column and the file's line number, never as a traceback."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np

from torchprac.data.sources import RawData, dataset
from torchprac.errors import ConfigError, DataError
from torchprac.registry import anything, flag, text


def _lines(lines: np.ndarray, limit: int = 5) -> str:
    shown = ", ".join(map(str, lines[:limit].tolist())) + (", ..." if len(lines) > limit else "")
    return f"line{'s' if len(lines) > 1 else ''} {shown}"


def _column_rule(v: Any) -> str | None:
    ok = (isinstance(v, str) and v != "") or (isinstance(v, int) and not isinstance(v, bool))
    return None if ok else "a column name of the file (or its 0-based index)"


def _columns_rule(v: Any) -> str | None:
    if isinstance(v, (list, tuple)) and v and all(_column_rule(c) is None for c in v):
        return None
    return "null (every column but the target) or a non-empty list of column names (or 0-based indices)"


def _path(path: str | None, key: str) -> Path:
    if not path:
        raise ConfigError(key, path, "the path of your file, e.g. data.path=my_table.csv")
    p = Path(str(path)).expanduser()
    if not p.is_file():
        raise DataError(f"{key}={str(path)!r}: no such file (resolved to {p.resolve()}).")
    return p


def read_table(path: Path, header: bool = True, delimiter: str = ",") -> tuple[list[str], np.ndarray, np.ndarray]:
    """(column names, cells as a 2-D str array, the file line number of each row).
    Blank lines are skipped; rows with another number of fields than the first are refused."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:  # -sig: drops a BOM (Excel's CSVs)
            reader = csv.reader(f, delimiter=delimiter)
            rows, lines = [], []
            for row in reader:
                if row and any(c.strip() for c in row):
                    rows.append(row)
                    lines.append(reader.line_num)
    except UnicodeDecodeError as e:
        raise DataError(f"{path} is not a UTF-8 text file ({e}); save it as CSV (UTF-8).") from None
    except csv.Error as e:
        raise DataError(f"{path} is not a readable CSV file (line {reader.line_num}: {e}).") from None
    except OSError as e:
        raise DataError(f"{path} cannot be read: {e.strerror or e}.") from None
    if not rows:
        raise DataError(f"{path} is empty.")
    width = len(rows[0])
    if header:
        names = [c.strip() for c in rows[0]]
        rows, lines = rows[1:], lines[1:]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise DataError(f"{path}: the header names the columns {dup} more than once.")
    else:
        names = [str(i) for i in range(width)]
    lines_a = np.asarray(lines, dtype=np.int64)
    ragged = np.asarray([len(r) != width for r in rows], dtype=bool)
    if ragged.any():
        first = int(np.flatnonzero(ragged)[0])
        raise DataError(
            f"{path}: ragged rows — {_lines(lines_a[ragged])} ha{'ve' if ragged.sum() > 1 else 's'} another number "
            f"of fields than the {'header' if header else 'first row'} ({width}); line {lines_a[first]} has "
            f"{len(rows[first])}. Check for missing or extra separators (data.delimiter={delimiter!r})."
        )
    if not rows:
        raise DataError(f"{path} has a header but no data rows.")
    return names, np.asarray(rows, dtype=str), lines_a


def _column(names: list[str], col: str | int, key: str, path: Path) -> int:
    if str(col) in names:
        return names.index(str(col))
    if isinstance(col, int) and -len(names) <= col < len(names):
        return col % len(names)
    raise ConfigError(key, col, f"a column of {path.name}: {names}")


def _numeric(cells: np.ndarray, name: str, lines: np.ndarray, path: Path, role: str) -> np.ndarray:
    """A column as float64; text or empty cells are refused, naming the column and lines."""
    stripped = np.char.strip(cells)
    empty = stripped == ""
    if empty.any():
        raise DataError(
            f"{path}: {role} column {name!r} has empty cells ({_lines(lines[empty])}). Fill or drop those rows "
            "before training."
        )
    try:
        return stripped.astype(np.float64)
    except ValueError:
        bad = np.array([not _is_float(c) for c in stripped.tolist()])
        example = stripped[bad][0]
        raise DataError(
            f"{path}: {role} column {name!r} is not numeric: {_lines(lines[bad])} hold text such as {example!r}. "
            "Leave it out with data.features=[...], or encode it as numbers (e.g. one column per category) first."
        ) from None


def _is_float(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


def read_csv(
    path: Path,
    target: str | int | None,
    features: list[str | int] | None = None,
    header: bool = True,
    delimiter: str = ",",
) -> tuple[np.ndarray, np.ndarray | None, list[str]]:
    """(x float32 (N, F), y raw (numbers as float64, else text; None when `target` is None or
    absent and not required), feature names)."""
    names, cells, lines = read_table(path, header, delimiter)
    t = None if target is None else _column(names, target, "data.target", path)
    if features is None:
        cols = [i for i in range(len(names)) if i != t]
    else:
        cols = [_column(names, c, "data.features", path) for c in features]
        if t is not None and t in cols:
            raise ConfigError("data.features", features, f"feature columns other than the target {names[t]!r}")
    if not cols:
        raise DataError(f"{path}: no feature columns besides the target {names[t]!r}.")
    x = np.stack([_numeric(cells[:, j], names[j], lines, path, "feature") for j in cols], axis=1)
    y = None
    if t is not None:
        col = np.char.strip(cells[:, t])
        empty = col == ""
        if empty.any():
            raise DataError(
                f"{path}: the target column {names[t]!r} is missing (empty) on {_lines(lines[empty])}. "
                "Drop those rows, or fill them in."
            )
        y = col.astype(np.float64) if all(_is_float(c) for c in np.unique(col).tolist()) else col
    return x.astype(np.float32), y, [names[j] for j in cols]


@dataset(
    "csv",
    path=text(optional=True),
    target=anything(optional=True, check=_column_rule),
    features=anything(optional=True, check=_columns_rule),
    header=flag(),
    delimiter=text(),
    test_path=text(optional=True),
)
def _csv(
    path: str | None = None,
    target: str | int | None = None,
    features: list | None = None,
    header: bool = True,
    delimiter: str = ",",
    test_path: str | None = None,
) -> RawData:
    p = _path(path, "data.path")
    if target is None:
        raise ConfigError("data.target", None, "the name of the column to predict (or its 0-based index)")
    x, y, feats = read_csv(p, target, features, header, delimiter)
    xt = yt = None
    if test_path is not None:
        # the test file's columns are chosen by the training file's names (any order)
        tp = _path(test_path, "data.test_path")
        by_name = feats if header else features
        xt, yt, _ = read_csv(tp, target, by_name, header, delimiter)
    return RawData(x, y, xt, yt, feature_names=feats)


@dataset("npz", path=text(optional=True))
def _npz(path: str | None = None) -> RawData:
    """Arrays x (N, ...), y (N,) or (N, 1); optional x_test, y_test (the official test split)."""
    p = _path(path, "data.path")
    try:
        with np.load(p, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except Exception as e:  # zip/npz corruption surfaces as many exception types
        raise DataError(f"{p} is not a readable .npz file ({type(e).__name__}: {e}).") from None
    missing = [k for k in ("x", "y") if k not in arrays]
    if missing:
        raise DataError(
            f"{p} lacks the array(s) {missing}; it holds {sorted(arrays)} (needs x, y; x_test, y_test optional)."
        )
    if ("x_test" in arrays) != ("y_test" in arrays):
        raise DataError(f"{p}: x_test and y_test come together; it holds {sorted(arrays)}.")
    out = []
    for xk, yk in (("x", "y"), ("x_test", "y_test")):
        if xk not in arrays:
            out += [None, None]
            continue
        x, y = arrays[xk], arrays[yk]
        if x.ndim < 2 or x.dtype.kind not in "iufb":
            raise DataError(f"{p}: {xk} must be a numeric array of shape (N, features...); got {x.dtype} {x.shape}.")
        if len(x) != len(y):
            raise DataError(f"{p}: {xk} has {len(x)} examples but {yk} has {len(y)}.")
        out += [x.astype(np.float32), y]
    if out[2] is not None and out[2].shape[1:] != out[0].shape[1:]:
        raise DataError(f"{p}: x_test examples have shape {out[2].shape[1:]}, x's have {out[0].shape[1:]}.")
    return RawData(out[0], out[1], out[2], out[3])


def _sklearn(loader: str, **kwargs: Any) -> RawData:
    import sklearn.datasets as skd

    d = getattr(skd, loader)(**kwargs)
    names = getattr(d, "target_names", None)
    return RawData(
        d.data.astype(np.float32),
        d.target if names is None else d.target.astype(np.int64),
        class_names=None if names is None else [str(n) for n in names],
        feature_names=[str(n) for n in d.feature_names],
        task="regression" if names is None else "classification",
    )


@dataset("iris")
def _iris() -> RawData:
    return _sklearn("load_iris")


@dataset("wine")
def _wine() -> RawData:
    return _sklearn("load_wine")


@dataset("breast_cancer")
def _breast_cancer() -> RawData:
    return _sklearn("load_breast_cancer")


@dataset("diabetes")
def _diabetes() -> RawData:
    # the raw measurements (scaled=False): what a user would put in a CSV to predict from
    return _sklearn("load_diabetes", scaled=False)
