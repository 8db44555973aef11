"""Checkpoints: written atomically (temp file + os.replace) so a kill at any moment leaves
the previous good file; loaded with torch.load(weights_only=True), which refuses pickled code."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch

from torchprac.files import load_checkpoint, save_atomic
from torchprac.train.callbacks import Callback

__all__ = ["CheckpointCallback", "load_checkpoint", "save_atomic", "rng_state", "set_rng_state"]


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

    def __init__(self, directory: str | Path, extra: dict | None = None, best=None) -> None:
        """`best`: the MonitorCallback whose improvements write best.pt (None: no best.pt)."""
        self.dir = Path(directory)
        self.extra = extra or {}
        self.best = best

    def on_epoch_end(self, trainer, logs: dict[str, float]) -> None:
        if trainer.dist.rank != 0:
            return
        payload = {**trainer.state_dict(), "rng": rng_state(trainer.generator), **self.extra}
        save_atomic(payload, self.dir / "last.pt", previous=self.dir / "prev.pt")
        if self.best is not None and self.best.best_epoch == trainer.epoch - 1:
            save_atomic({"model": payload["model"], "epoch": trainer.epoch, **self.extra}, self.dir / "best.pt")
