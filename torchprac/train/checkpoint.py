"""Checkpoints: written atomically (temp file + os.replace) so a kill at any moment leaves
the previous good file; loaded with torch.load(weights_only=True), which refuses pickled code."""

from __future__ import annotations

import os
import pickle
import random
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from torchprac.errors import CheckpointError
from torchprac.train.callbacks import Callback


def save_atomic(obj: Any, path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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


def rng_state(trainer_generator: torch.Generator) -> dict:
    """Every RNG the run draws from, as tensors and plain numbers only: pickled bytes here
    would have to be unpickled on resume, which is what weights_only=True exists to avoid."""
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    py_version, py_state, py_gauss = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "name": str(np_name),
            "keys": torch.from_numpy(np_keys.astype(np.int64)),
            "pos": int(np_pos),
            "has_gauss": int(np_has_gauss),
            "cached_gaussian": float(np_gauss),
        },
        "python": {
            "version": int(py_version),
            "state": torch.tensor(py_state, dtype=torch.int64),
            "gauss_next": py_gauss,
        },
        "trainer": trainer_generator.get_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict, trainer_generator: torch.Generator) -> None:
    """Inverse of rng_state."""
    torch.set_rng_state(state["torch"].cpu())
    n = state["numpy"]
    np.random.set_state(
        (n["name"], n["keys"].cpu().numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"])
    )
    p = state["python"]
    random.setstate((p["version"], tuple(p["state"].tolist()), p["gauss_next"]))
    trainer_generator.set_state(state["trainer"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


class CheckpointCallback(Callback):
    """checkpoints/last.pt every epoch (the one before it kept as prev.pt, so a last.pt damaged
    on disk still leaves a good one to resume from), best.pt whenever the monitor improves."""

    def __init__(self, directory: str | Path, extra: dict | None = None) -> None:
        self.dir = Path(directory)
        self.extra = extra or {}

    def payload(self, trainer) -> dict:
        opt = trainer.optim
        return {
            "model": trainer.model.state_dict(),
            "optimizer": opt.optimizer.state_dict(),
            "scheduler": opt.scheduler.state_dict() if opt.scheduler is not None else None,
            "early_stopping": trainer.es.state_dict(),
            "epoch": trainer.epoch,
            "global_step": trainer.global_step,
            "history": trainer.history,
            "rng": rng_state(trainer.generator),
            "clipper": {"fired": opt.clipper.fired, "steps": opt.clipper.steps},
            "callbacks": {type(cb).__name__: cb.state_dict() for cb in trainer.callbacks},
            **self.extra,
        }

    def on_epoch_end(self, trainer, logs: dict[str, float]) -> None:
        if trainer.rank != 0:
            return
        payload = self.payload(trainer)
        last = self.dir / "last.pt"
        if last.exists():
            os.replace(last, self.dir / "prev.pt")
        save_atomic(payload, last)
        if trainer.es.best_epoch == trainer.epoch - 1:
            save_atomic({"model": payload["model"], "epoch": trainer.epoch, **self.extra}, self.dir / "best.pt")
