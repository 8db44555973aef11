"""Checkpoints: written atomically (temp file + os.replace) so a kill at any moment leaves
the previous good file; loaded with torch.load(weights_only=True), which refuses pickled code."""

from __future__ import annotations

import os
import pickle
import random
import tempfile
import zipfile
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
        raise CheckpointError(
            f"Checkpoint {path} was refused: it holds Python objects that torch.load(weights_only=True) "
            f"will not unpickle (possibly code). Only tensors and plain containers are accepted. ({str(e).splitlines()[0]})"
        ) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as e:
        raise CheckpointError(f"Checkpoint {path} is corrupt or truncated ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}).") from None
    if not isinstance(obj, dict) or "model" not in obj:
        raise CheckpointError(f"Checkpoint {path} is not a torchprac checkpoint (no 'model' state dict).")
    return obj


def rng_state(trainer_generator: torch.Generator) -> dict:
    state = {
        "torch": torch.get_rng_state(),
        "numpy": torch.from_numpy(np.frombuffer(pickle.dumps(np.random.get_state()), dtype=np.uint8).copy()),
        "python": torch.tensor(list(pickle.dumps(random.getstate())), dtype=torch.uint8),
        "trainer": trainer_generator.get_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


class CheckpointCallback(Callback):
    """checkpoints/last.pt every epoch, checkpoints/best.pt whenever the monitor improves."""

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
            **self.extra,
        }

    def on_epoch_end(self, trainer, logs: dict[str, float]) -> None:
        if trainer.rank != 0:
            return
        payload = self.payload(trainer)
        save_atomic(payload, self.dir / "last.pt")
        if trainer.es.best_epoch == trainer.epoch - 1:
            save_atomic({"model": payload["model"], "epoch": trainer.epoch, **self.extra}, self.dir / "best.pt")
