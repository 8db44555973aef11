"""trainer.resume=auto: continue a run in its run dir from checkpoints/last.pt (or prev.pt when
last.pt is damaged). Everything the rest of the run depends on is restored — model, optimizer,
scheduler, early stopping, epoch/step, history, every RNG — so that on CPU a resumed run ends
with exactly the metrics of an uninterrupted one.

Two phases, so that a checkpoint that cannot be used fails before the run writes anything into
the (earlier) run dir: `find_checkpoint` right after validation, `restore_model` as soon as the
model and optimizer exist, `restore_trainer` once the Trainer exists."""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import nn

from torchprac.errors import CheckpointError
from torchprac.train.checkpoint import load_checkpoint, set_rng_state

log = logging.getLogger("torchprac")

# Newest first: CheckpointCallback rotates last.pt to prev.pt before writing a new last.pt.
CANDIDATES = ("last.pt", "prev.pt")
RESUME_KEYS = ("model", "optimizer", "scheduler", "early_stopping", "epoch", "global_step", "history", "rng")


def find_checkpoint(run_dir: Path, map_location: str | torch.device = "cpu") -> tuple[dict, Path] | None:
    """The newest usable checkpoint of the run, or None when it has none (a fresh start).
    A damaged last.pt is reported and skipped; when checkpoints exist but none is usable this
    raises CheckpointError instead of silently starting over."""
    folder = Path(run_dir) / "checkpoints"
    problems: list[str] = []
    for name in CANDIDATES:
        path = folder / name
        if not path.exists():
            continue
        try:
            ckpt = load_checkpoint(path, map_location)
            missing = [k for k in RESUME_KEYS if k not in ckpt]
            if missing:
                raise CheckpointError(f"Checkpoint {path} cannot be resumed from: it lacks {', '.join(missing)}.")
        except CheckpointError as e:
            problems.append(str(e))
            log.warning("%s Trying the previous checkpoint.", e)
            continue
        if problems:
            log.warning("resuming from the previous good checkpoint %s (epoch %d)", path, ckpt["epoch"])
        return ckpt, path
    if problems:
        raise CheckpointError(
            f"trainer.resume=auto: no usable checkpoint in {folder}. "
            + " ".join(problems)
            + " Move that folder aside to start the run over, or point paths.run_dir at another run."
        )
    log.warning(
        "trainer.resume=auto: no checkpoint in %s, starting a fresh run there "
        "(to continue a run, pass paths.run_dir=<that run's dir>)",
        folder,
    )
    return None


def _mismatch(path: Path, e: Exception) -> CheckpointError:
    detail = " ".join(ln.strip() for ln in str(e).splitlines() if ln.strip()) or type(e).__name__
    detail = detail if len(detail) <= 300 else detail[:297] + "..."
    return CheckpointError(
        f"Checkpoint {path} does not fit the model/optimizer built from this config ({detail}). "
        "Resume with the run's own config: see .hydra/overrides.yaml in its Hydra output dir."
    )


# What a resumed run must share with the checkpointed one: the rest (logging, checkpointing,
# resume itself) may change between the two invocations.
SAME_ON_RESUME = (
    "data",
    "model",
    "init",
    "activation",
    "reg",
    "optimizer",
    "scheduler",
    "clip",
    "trainer.epochs",
    "trainer.batch_size",
    "trainer.drop_last",
    "trainer.seed",
)


def check_same_config(ckpt: dict, path: Path, cfg) -> None:
    """Refuse to resume under a different training config (e.g. more epochs would break the
    schedule's step count mid-run, another batch size would change the epoch permutation)."""
    from omegaconf import OmegaConf

    if "config" not in ckpt:
        return
    old = OmegaConf.create(ckpt["config"])
    changed = []
    for key in SAME_ON_RESUME:
        a = OmegaConf.select(old, key, default=None)
        b = OmegaConf.select(cfg, key, default=None)
        a = OmegaConf.to_container(a, resolve=True) if OmegaConf.is_config(a) else a
        b = OmegaConf.to_container(b, resolve=True) if OmegaConf.is_config(b) else b
        if a != b:
            changed.append(f"{key} was {a!r}, now {b!r}")
    if changed:
        raise CheckpointError(
            f"trainer.resume=auto: {path} was trained with another config ({'; '.join(changed)}). "
            "Resume with the same settings, or start a new run dir."
        )


def restore_model(ckpt: dict, path: Path, model: nn.Module, optim) -> None:
    """Model, optimizer and scheduler state; refuses a checkpoint of another architecture."""
    try:
        model.load_state_dict(ckpt["model"])
        optim.optimizer.load_state_dict(ckpt["optimizer"])
        if (optim.scheduler is None) != (ckpt["scheduler"] is None):
            raise ValueError("the scheduler choice differs")
        if optim.scheduler is not None:
            optim.scheduler.load_state_dict(ckpt["scheduler"])
    except (RuntimeError, ValueError, KeyError, TypeError) as e:
        raise _mismatch(path, e) from None


def restore_trainer(ckpt: dict, trainer) -> None:
    """Epoch/step, history, early stopping, clip counters, callback states and all RNGs."""
    trainer.epoch, trainer.global_step = int(ckpt["epoch"]), int(ckpt["global_step"])
    trainer.history = list(ckpt["history"])
    trainer.es.load_state_dict(ckpt["early_stopping"])
    clip = ckpt.get("clipper")
    if clip:
        trainer.optim.clipper.fired, trainer.optim.clipper.steps = clip["fired"], int(clip["steps"])
    states = ckpt.get("callbacks") or {}
    for cb in trainer.callbacks:
        if type(cb).__name__ in states:
            cb.load_state_dict(states[type(cb).__name__])
    # Last: nothing may draw random numbers between here and the first step of the next epoch.
    set_rng_state(ckpt["rng"], trainer.generator)
    log.info("resumed at epoch %d, step %d", trainer.epoch, trainer.global_step)
