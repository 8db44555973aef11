"""The HParams row: a FLAT, FIXED key set. Every run logs the same keys (0 / 'none' for what
is off), so the HParams tab compares runs that chose different groups."""

from __future__ import annotations

from typing import Any

from torchprac.metrics import SPLITS


def hparams_of(rc, batch_size: int | None = None) -> dict[str, Any]:
    """`rc`: a config.RunConfig; `batch_size`: the effective one (clamped to the training
    split, or the whole split for gd), which is what the run used."""
    t = rc.trainer
    return {
        "data": rc.data.name,
        "model": rc.model.name,
        "hidden": str(list(rc.model.hidden)),
        "batch_norm": rc.model.batch_norm,
        "init": rc.choices.get("init", ""),
        "activation": rc.choices.get("activation", ""),
        "optimizer": rc.optimizer.name,
        "lr": rc.optimizer.lr,
        "momentum": rc.optimizer.momentum,
        "weight_decay": rc.optimizer.weight_decay,
        "batch_size": int(batch_size if batch_size is not None else t.batch_size),
        "epochs": int(t.epochs),
        "scheduler": rc.schedule.name,
        "clip": rc.clip.kind,
        "clip_threshold": float(rc.clip.threshold),
        **rc.reg.hparams(),
        "seed": int(t.seed),
    }


def hparam_metrics(metrics: dict, epochs_run: int, names: tuple[str, ...] = ("loss", "accuracy")) -> dict[str, float]:
    """The fixed metric keys of the HParams tab (NaN for a split the run does not have); `names`:
    the task's (train/task.py), loss and accuracy for classification, loss, rmse, mae, r2 for regression."""
    hp = {f"hparam/{s}_{k}": metrics.get(s, {}).get(k, float("nan")) for s in SPLITS for k in names}
    hp["hparam/epochs_run"] = float(epochs_run)
    return hp
