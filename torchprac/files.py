"""File writing and reading every stage shares: atomic writes (temp file + os.replace, so a
kill at any moment leaves the previous good file), strict JSON, and safe checkpoint loading
(torch.load(weights_only=True), which refuses pickled code)."""

from __future__ import annotations

import json
import math
import os
import pickle
import tempfile
from pathlib import Path
from typing import Any

import torch

from torchprac.errors import CheckpointError, TorchpracError


class DiskError(TorchpracError):
    """A run dir that cannot be written (read-only, full disk)."""


def _atomic(path: Path, write, previous: Path | None = None) -> None:
    """`previous`: where the current `path` moves once the new version is safely written (so a
    full disk leaves `path` itself untouched, not only its copy)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        if previous is not None and path.exists():
            os.replace(path, previous)
        os.replace(tmp, path)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        full = " The disk is full." if e.errno == 28 else ""
        raise DiskError(
            f"Cannot write {path}: {e.strerror or e}.{full} The previous version of that file (if any) is intact; "
            "free space or choose another paths.run_dir / hydra.run.dir."
        ) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_atomic(obj: Any, path: str | Path, previous: str | Path | None = None) -> None:
    _atomic(Path(path), lambda f: torch.save(obj, f), None if previous is None else Path(previous))


def strict(obj: Any) -> Any:
    """Non-finite floats -> None: strict JSON parsers reject NaN and Infinity."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: strict(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [strict(v) for v in obj]
    return obj


def write_json(path: str | Path, obj: Any) -> None:
    data = (json.dumps(strict(obj), indent=2, allow_nan=False) + "\n").encode()
    _atomic(Path(path), lambda f: f.write(data))


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """Load a torchprac checkpoint safely; every failure is a CheckpointError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"Checkpoint {path} does not exist.")
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        if "global" not in str(e).lower():  # random bytes fail unpickling too: that is corruption, not code
            raise CheckpointError(
                f"Checkpoint {path} is corrupt or not a torch checkpoint (it does not unpickle)."
            ) from None
        # torch's message is a page long; the line naming the refused global is what matters.
        what = next((ln.strip() for ln in str(e).splitlines() if "GLOBAL" in ln or "global" in ln), "")
        raise CheckpointError(
            f"Checkpoint {path} was refused: it holds Python objects that torch.load(weights_only=True) "
            f"will not unpickle (possibly code). Only tensors and plain containers are accepted."
            + (f" ({what})" if what else "")
        ) from None
    except Exception as e:  # zip/pickle/tensor corruption surfaces as many exception types
        first = str(e).split(". ")[0].strip().rstrip(".")
        raise CheckpointError(
            f"Checkpoint {path} is corrupt or truncated, or not a torch checkpoint ({type(e).__name__}: {first})."
        ) from None
    if not isinstance(obj, dict) or "model" not in obj:
        raise CheckpointError(f"Checkpoint {path} is not a torchprac checkpoint (no 'model' state dict).")
    return obj
