"""The range test on a torchprac model: the `step(lr)` closure that trains the model one
mini-batch with the run's optimizer, penalty, clipping, constraints and precision (the
configured scheduler is not involved), the state it must leave as it found it, and the outputs
(lr_find.json, figures/lr_find.png, TensorBoard).

Everything the test touches is restored afterwards, bit for bit: the weights and buffers (batch
norm statistics), the gradients, the optimizer state (moments, step counts, each group's lr),
the clipping counters, the GradScaler, and the Python, NumPy and torch (CPU and CUDA) random
states. So `trainer.lr_find=true` trains from the same initial weights as a run without it.

Under torchrun every rank runs the test on its shard of each global batch and averages the
gradients itself (the model is not wrapped in DDP yet); the loss that decides when to stop is
the global one (train) or rank 0's (dev), so every rank stops at the same step, and the
recommended lr is rank 0's, broadcast."""

from __future__ import annotations

import copy
import json
import logging
import math
import random
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from torchprac.data.splits import Split
from torchprac.distributed import DistContext
from torchprac.train.step import Optimization
from torchprac.tune.lr_find import LRFindSettings, RangeTest, lr_range_test

log = logging.getLogger("torchprac")

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def cross_entropy(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits.float(), y)


# -- leaving everything as it was ----------------------------------------------------------------
@dataclass
class Saved:
    model: dict[str, torch.Tensor]
    grads: list[torch.Tensor | None]
    optimizer: dict[str, Any]
    clipper: tuple[Any, int] | None
    scaler: dict[str, Any] | None
    rng: dict[str, Any]
    modes: list[bool]  # each module's training flag


def save_state(model: nn.Module, optim: Optimization) -> Saved:
    c, s = optim.clipper, optim.precision.scaler
    return Saved(
        model={k: v.detach().clone() for k, v in model.state_dict().items()},
        grads=[None if p.grad is None else p.grad.detach().clone() for p in model.parameters()],
        optimizer=copy.deepcopy(optim.optimizer.state_dict()),  # state_dict() returns live tensors
        clipper=None if c is None else (None if c.fired is None else c.fired.clone(), c.steps),
        scaler=None if s is None else copy.deepcopy(s.state_dict()),
        rng={
            "python": random.getstate(),
            "numpy": np.random.get_state(),
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None,
        },
        modes=[m.training for m in model.modules()],
    )


def restore_state(model: nn.Module, optim: Optimization, saved: Saved) -> None:
    model.load_state_dict(saved.model)  # copies into the same tensors: the optimizer's references hold
    for p, g in zip(model.parameters(), saved.grads):
        p.grad = g
    optim.optimizer.load_state_dict(saved.optimizer)
    if optim.clipper is not None and saved.clipper is not None:
        optim.clipper.fired, optim.clipper.steps = saved.clipper
    if optim.precision.scaler is not None and saved.scaler is not None:
        optim.precision.scaler.load_state_dict(saved.scaler)
    random.setstate(saved.rng["python"])
    np.random.set_state(saved.rng["numpy"])
    torch.set_rng_state(saved.rng["torch"])
    if saved.rng["cuda"] is not None:
        torch.cuda.set_rng_state_all(saved.rng["cuda"])
    for m, training in zip(model.modules(), saved.modes):
        m.training = training


# -- the step closure ----------------------------------------------------------------------------
def _batches(n: int, batch: int, dist: DistContext, generator: torch.Generator, device: torch.device):
    """This rank's indices of global batches of batch × world_size examples, epoch after epoch
    (a last partial batch is skipped: every step of the test sees the same batch size)."""
    gb = batch * dist.world_size
    while True:
        perm = torch.randperm(n, device=device, generator=generator)
        dist.broadcast_(perm)
        for i in range(max(1, n // gb)):
            yield perm[i * gb : (i + 1) * gb].tensor_split(dist.world_size)[dist.rank]


def _all_reduce_grads(model: nn.Module, world_size: int) -> Callable[[], None]:
    """What DDP does to the gradients: the mean over the ranks (each rank's loss is its shard's mean)."""
    import torch.distributed as tdist

    def hook() -> None:
        for p in model.parameters():
            if p.grad is not None:
                tdist.all_reduce(p.grad)
                p.grad.div_(world_size)

    return hook


def _global_mean(loss: torch.Tensor, n: int, dist: DistContext) -> float:
    """The mean loss over every rank's shard (this rank's: `loss` over `n` examples)."""
    if not dist.enabled:
        return float(loss)
    import torch.distributed as tdist

    sums = torch.stack([loss.double() * n, loss.new_tensor(float(n), dtype=torch.float64)])
    tdist.all_reduce(sums)
    return float(sums[0] / sums[1])


def make_step(
    model: nn.Module,
    optim: Optimization,
    train: Split,
    batch_size: int,
    *,
    base_lr: float,
    dev: Split | None = None,
    augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
    loss_fn: LossFn = cross_entropy,
    seed: int = 0,
    dist: DistContext | None = None,
) -> Callable[[float], float]:
    """`step(lr)`: every param group's lr set to lr × (its lr / base_lr) — groups keep their
    ratios, e.g. after transfer unfreezing — then one optimisation step on the next mini-batch.
    Returns that batch's loss before the step (the global mean across ranks), or with `dev`,
    the loss on `dev` after the step (rank 0's)."""
    dist = dist or DistContext()
    device = train.x.device
    opt = optim.optimizer
    ratios = [g["lr"] / base_lr for g in opt.param_groups]
    gen = torch.Generator(device=device).manual_seed(seed)
    batches = _batches(len(train), min(batch_size, len(train)), dist, gen, device)
    before_step = [_all_reduce_grads(model, dist.world_size)] if dist.enabled else []

    def step(lr: float) -> float:
        for g, r in zip(opt.param_groups, ratios):
            g["lr"] = lr * r
        model.train()
        idx = next(batches)
        xb, yb = train.x.index_select(0, idx), train.y.index_select(0, idx)
        if augment is not None:
            xb = augment(xb)
        with optim.precision.autocast():
            loss = loss_fn(model(xb), yb)
        optim.step(loss, before_step)
        if dev is not None:
            return float(dist.broadcast_(dev_loss(model, dev, loss_fn, optim.precision.autocast)))
        return _global_mean(loss.detach(), len(yb), dist)

    return step


@torch.no_grad()
def dev_loss(model: nn.Module, dev: Split, loss_fn: LossFn, autocast, batch: int = 4096) -> torch.Tensor:
    """Mean loss over `dev` in eval mode (batch norm uses its running statistics), on the device."""
    model.eval()
    total = torch.zeros((), device=dev.x.device)
    for i in range(0, len(dev), batch):
        with autocast():
            out = model(dev.x[i : i + batch])
        total += loss_fn(out, dev.y[i : i + batch]).float() * len(dev.y[i : i + batch])
    return total / len(dev)


def dev_subset(dev: Split, n: int, seed: int) -> Split:
    """A fixed random subset of n dev examples (the whole split when it is smaller)."""
    if n >= len(dev):
        return dev
    idx = torch.randperm(len(dev), generator=torch.Generator().manual_seed(seed))[:n].to(dev.x.device)
    return Split(dev.x.index_select(0, idx), dev.y.index_select(0, idx))


def find_lr(
    model: nn.Module,
    optim: Optimization,
    train: Split,
    settings: LRFindSettings,
    batch_size: int,
    *,
    base_lr: float,
    dev: Split | None = None,
    augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
    loss_fn: LossFn = cross_entropy,
    seed: int = 0,
    dist: DistContext | None = None,
) -> RangeTest:
    """The range test with `optim` on `model`; both (and the random states) are restored after.
    `base_lr`: the lr the test's lr stands for (optimizer.lr); `dev` is used when
    settings.eval == "dev" (a fixed subset of settings.dev_examples)."""
    use_dev = dev_subset(dev, settings.dev_examples, seed) if settings.eval == "dev" and dev is not None else None
    saved = save_state(model, optim)
    try:
        step = make_step(
            model, optim, train, batch_size, base_lr=base_lr, dev=use_dev, augment=augment,
            loss_fn=loss_fn, seed=seed, dist=dist,
        )  # fmt: skip
        return lr_range_test(step, settings.lrs(), settings.beta, settings.diverge_factor)
    finally:
        restore_state(model, optim, saved)


# -- outputs -------------------------------------------------------------------------------------
def write_outputs(test: RangeTest, settings: LRFindSettings, run_dir: Path, logger, title: str = "") -> None:
    """lr_find.json, figures/lr_find.png, TensorBoard scalars (lr_find/*, x = step), the figure
    as an image and the summary as text; rank 0 only (the caller checks)."""
    from torchprac.files import write_json
    from torchprac.tune.plot import plot_range_test
    from torchprac.viz.figures import publish

    write_json(run_dir / "lr_find.json", {**test.to_dict(), "settings": asdict(settings)})
    fig = plot_range_test(test, title or "learning-rate range test")
    publish(fig, run_dir / "figures" / "lr_find.png", getattr(logger, "writer", None), "lr_find", 0)
    for i, (lr, loss, sm) in enumerate(zip(test.lrs, test.losses, test.smoothed)):
        logger.scalars({"lr_find/lr": lr, "lr_find/loss": loss, "lr_find/smoothed_loss": sm}, i)
    logger.text("lr_find", "\n\n".join(test.summary()))


# -- the run's stage -----------------------------------------------------------------------------
@dataclass
class LRFound:
    """The test's outcome for the run: the lr it trains with and what metrics.json records."""

    test: RangeTest | None  # None: reused from a resumed run's lr_find.json
    lr: float  # the lr the run uses (the recommended one, or optimizer.lr when there is none)
    configured_lr: float
    record: dict[str, Any]

    def apply(self, rc):
        """`rc` (config.RunConfig) with optimizer.lr = the found lr: the optimizer and the
        scheduler are then built at it, and the HParams row records it."""
        spec = replace(rc.optimizer, kwargs={**rc.optimizer.kwargs, "lr": self.lr})
        return replace(rc, optimizer=spec)


def run_lr_find(
    rc, model: nn.Module, splits, optim: Optimization, batch_size: int, logger, dist: DistContext, run_dir: Path,
    resumed: bool = False,
) -> LRFound:  # fmt: skip
    """mode=lr_find / trainer.lr_find=true: the test on the run's model (`rc`: config.RunConfig;
    `optim`: the run's Optimization, built for the test), its outputs and the lr to train with.
    A resumed run reuses its lr_find.json (its optimizer state holds that lr already)."""
    configured = rc.optimizer.lr
    saved_json = run_dir / "lr_find.json"
    if resumed and saved_json.is_file():
        found = json.loads(saved_json.read_text())
        lr = found["lr"] if found.get("lr") is not None else configured
        log.info("lr range test: reusing %s (lr %.3g)", saved_json, lr)
        return LRFound(None, lr, configured, _record(found, lr, configured))
    from torchprac.train.task import task_of  # the trainer's loss: cross-entropy, or MSE for regression

    settings: LRFindSettings = rc.lr_find
    seed = rc.trainer.seed
    gen = torch.Generator(device=splits.train.x.device).manual_seed(seed)  # augmentation's, not the trainer's
    test = find_lr(
        model, optim, splits.train, settings, batch_size, base_lr=configured, dev=splits.dev,
        augment=rc.reg.transform(splits.input_shape, gen), loss_fn=task_of(splits).loss,
        seed=seed, dist=dist,
    )  # fmt: skip
    # Rank 0 decides (the curves agree already: every rank saw the same global losses).
    box = torch.tensor([math.nan if test.lr is None else test.lr], dtype=torch.float64, device=splits.train.x.device)
    chosen = float(dist.broadcast_(box)[0])
    lr = chosen if math.isfinite(chosen) else configured
    for line in test.summary():
        log.info("%s", line)
    if not math.isfinite(chosen):
        log.warning("lr range test: no usable suggestion; training with optimizer.lr=%g", configured)
    if dist.is_main:
        write_outputs(test, settings, run_dir, logger, f"lr range test: {rc.data.name}, {rc.optimizer.name}")
    return LRFound(test, lr, configured, _record(test.to_dict(), lr, configured))


def _record(found: dict[str, Any], lr: float, configured: float) -> dict[str, Any]:
    """metrics.json's "lr_find": the lr used and why, the suggestions (the curve is in lr_find.json)."""
    return {
        "lr": lr,
        "configured_lr": configured,
        "recommended": found.get("recommended"),
        "reason": found.get("reason"),
        "suggestions": {k: v["lr"] for k, v in (found.get("suggestions") or {}).items()},
        "stop": found.get("stop"),
        "stop_lr": found.get("stop_lr"),
    }
