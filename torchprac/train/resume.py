"""trainer.resume=auto: continue a run in its run dir from checkpoints/last.pt (or prev.pt when
last.pt is damaged). Everything the rest of the run depends on is restored — model, optimizer,
scheduler, early stopping, epoch/step, history, every RNG — so that on CPU a resumed run ends
with exactly the metrics of an uninterrupted one.

Two steps, so that a checkpoint that cannot be used fails before the run writes anything into
the (earlier) run dir: `find_checkpoint` (+ `check_same_config`) right after the config is
read, and `restore` once the Trainer exists."""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from torchprac.errors import CheckpointError
from torchprac.files import load_checkpoint
from torchprac.train.checkpoint import set_rng_state

log = logging.getLogger("torchprac")

# Newest first: CheckpointCallback moves last.pt to prev.pt once the new last.pt is written.
CANDIDATES = ("last.pt", "prev.pt")
RESUME_KEYS = ("model", "optimizer", "callbacks", "epoch", "global_step", "history", "rng")


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
        "trainer.resume=auto: no checkpoint in %s, starting a fresh run there (a run writes checkpoints only "
        "with trainer.checkpoint.enabled=true)",
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
    "trainer.batch_size",
    "trainer.drop_last",
    "trainer.seed",
)


LENGTH_FREE_SCHEDULES = ("none", "power", "exponential", "piecewise", "plateau")


def _select(tree: dict, dotted: str):
    node = tree
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def check_same_config(ckpt: dict, path: Path, config: dict) -> None:
    """Refuse to resume under a different training config (e.g. another batch size would
    change the epoch permutation). `config`: this run's resolved config as plain containers."""
    import yaml

    if "config" not in ckpt:
        return
    old = yaml.safe_load(ckpt["config"]) or {}
    changed = []
    old_epochs, new_epochs = _select(old, "trainer.epochs"), _select(config, "trainer.epochs")
    if old_epochs != new_epochs:
        # More epochs continue the same run unless the schedule's shape depends on its length.
        sched = _select(config, "scheduler.name")
        if sched not in LENGTH_FREE_SCHEDULES or (new_epochs or 0) < (old_epochs or 0):
            changed.append(
                f"trainer.epochs was {old_epochs!r}, now {new_epochs!r} (only more epochs, and only with "
                f"scheduler {'/'.join(LENGTH_FREE_SCHEDULES)}, whose lr does not depend on the run's length)"
            )
    for key in SAME_ON_RESUME:
        a, b = _select(old, key), _select(config, key)
        if a != b:
            changed.append(f"{key} was {a!r}, now {b!r}")
    if changed:
        raise CheckpointError(
            f"trainer.resume=auto: {path} was trained with another config ({'; '.join(changed)}). "
            "Resume with the same settings, or start a new run dir."
        )


def restore(ckpt: dict, path: Path, trainer) -> None:
    """Model, optimizer, scheduler, early stopping, epoch/step, history, clip counters and
    every callback's state, then all RNGs; refuses a checkpoint of another architecture."""
    names = {type(cb).__name__ for cb in trainer.callbacks}
    saved = set(ckpt.get("callbacks") or {})
    sched = {"LRSchedulerCallback"}
    if (sched & names) != (sched & saved):
        raise _mismatch(path, ValueError("the scheduler choice differs"))
    try:
        trainer.load_state_dict(ckpt)
    except (RuntimeError, ValueError, KeyError, TypeError) as e:
        raise _mismatch(path, e) from None
    # Last: nothing may draw random numbers between here and the first step of the next epoch.
    set_rng_state(ckpt["rng"], trainer.generator)
    log.info("resumed at epoch %d, step %d", trainer.epoch, trainer.global_step)
