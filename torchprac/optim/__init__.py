"""Optimisation stage: torch.optim optimizer with two param groups, lr scheduler, weight
penalty, gradient clipper and post-step constraints, all from config."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from torchprac.config import instantiate, reg_cfg, to_dict
from torchprac.optim.clip import Clipper, build_clipper
from torchprac.optim.constraints import build_constraints
from torchprac.optim.fast import fast_kwargs
from torchprac.optim.penalty import Penalty, build_penalty

__all__ = ["OptimBundle", "build_optim", "param_groups", "build_scheduler"]


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Two groups: `weights` (matrices, kernels) get weight decay; `no_decay` (biases,
    batch-norm and PReLU parameters: every tensor of dim < 2) never does."""
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.ndim >= 2 else no_decay).append(p)
    groups = [{"name": "weights", "params": decay, "weight_decay": weight_decay}]
    if no_decay:
        groups.append({"name": "no_decay", "params": no_decay, "weight_decay": 0.0})
    return groups


def build_scheduler(cfg, optimizer: torch.optim.Optimizer, total: int, lr: float):
    """cfg is the scheduler group; `total` counts scheduler steps (optimizer steps or epochs
    by `interval`). Null `total_steps`/`T_max`/`max_lr` are filled in from the run."""
    if cfg.get("_target_") is None:
        return None
    spec = to_dict(cfg)
    fill = {"total_steps": total, "T_max": total, "max_lr": lr}
    for k, v in fill.items():
        if k in spec and spec[k] is None:
            spec[k] = v
    return instantiate(spec)(optimizer)


@dataclass
class OptimBundle:
    optimizer: torch.optim.Optimizer
    scheduler: object | None
    interval: str  # step | epoch
    monitor: str | None  # for ReduceLROnPlateau: which dev metric it watches
    penalty: Penalty | None
    clipper: Clipper
    constraints: list = field(default_factory=list)
    full_batch: bool = False


def build_optim(cfg, model: nn.Module, steps_per_epoch: int, epochs: int) -> OptimBundle:
    ocfg = cfg.optimizer
    wd = float(ocfg.get("weight_decay", 0.0) or 0.0)
    # torch.optim classes take params first: the partial gets them by keyword.
    make = instantiate(ocfg)
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    optimizer = make(params=param_groups(model, wd), **fast_kwargs(make.func, device, make.keywords))
    interval = cfg.scheduler.get("interval", "step")
    total = steps_per_epoch * epochs if interval == "step" else epochs
    scheduler = build_scheduler(cfg.scheduler, optimizer, total, float(ocfg.lr))
    reg = reg_cfg(cfg)
    return OptimBundle(
        optimizer=optimizer,
        scheduler=scheduler,
        interval=interval,
        monitor=cfg.scheduler.get("monitor"),
        penalty=build_penalty(reg, model),
        clipper=build_clipper(cfg.clip, list(model.parameters())),
        constraints=build_constraints(reg, model),
        full_batch=bool(ocfg.get("full_batch", False)),
    )
