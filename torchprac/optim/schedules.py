"""The scheduler group. The course's schedules that torch does not ship under these names are
real torch LRSchedulers here (they checkpoint and compose like torch's own); every choice
builds a `Schedule`: how to make the scheduler once the optimizer and the run length exist,
whether it steps per optimizer step or per epoch, and (plateau) which dev metric it watches."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from torch.optim import Optimizer
from torch.optim.lr_scheduler import (
    CosineAnnealingLR,
    LinearLR,
    LRScheduler,
    OneCycleLR,
    ReduceLROnPlateau,
    SequentialLR,
)

from torchprac.metrics import Metric
from torchprac.registry import flag, int_list, integer, num, num_list, one_of, register


class _ClosedForm(LRScheduler):
    """lr(t) = base_lr * factor(t): t is the scheduler's step count (last_epoch)."""

    def factor(self, t: int) -> float:
        raise NotImplementedError

    def get_lr(self) -> list[float]:
        return [base * self.factor(self.last_epoch) for base in self.base_lrs]


class PowerLR(_ClosedForm):
    """Power scheduling: lr(t) = lr0 / (1 + t/s)^c."""

    def __init__(self, optimizer: Optimizer, s: float, c: float = 1.0, last_epoch: int = -1) -> None:
        self.s, self.c = float(s), float(c)
        super().__init__(optimizer, last_epoch)

    def factor(self, t: int) -> float:
        return (1.0 + t / self.s) ** -self.c


class ExponentialDecayLR(_ClosedForm):
    """Exponential scheduling: lr(t) = lr0 * 0.1^(t/s)."""

    def __init__(self, optimizer: Optimizer, s: float, last_epoch: int = -1) -> None:
        self.s = float(s)
        super().__init__(optimizer, last_epoch)

    def factor(self, t: int) -> float:
        return 0.1 ** (t / self.s)


class PiecewiseConstantLR(LRScheduler):
    """lr(t) = values[i] for boundaries[i-1] <= t < boundaries[i] (absolute lrs, all groups)."""

    def __init__(
        self, optimizer: Optimizer, boundaries: Sequence[int], values: Sequence[float], last_epoch: int = -1
    ) -> None:
        if len(values) != len(boundaries) + 1:
            raise ValueError(
                f"scheduler.values needs len(boundaries) + 1 = {len(boundaries) + 1} entries, got {len(values)}"
            )
        if list(boundaries) != sorted(boundaries):
            raise ValueError(f"scheduler.boundaries must be increasing, got {list(boundaries)}")
        self.boundaries, self.values = [int(b) for b in boundaries], [float(v) for v in values]
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        i = sum(self.last_epoch >= b for b in self.boundaries)
        return [self.values[i] for _ in self.base_lrs]


def warmup_cosine(
    optimizer: Optimizer,
    total_steps: int,
    warmup_fraction: float = 0.05,
    start_factor: float = 0.01,
    eta_min: float = 0.0,
) -> SequentialLR:
    """Linear warm-up over warmup_fraction of the run, then cosine annealing to eta_min."""
    warmup = max(1, int(round(warmup_fraction * total_steps)))
    return SequentialLR(
        optimizer,
        [
            LinearLR(optimizer, start_factor=start_factor, total_iters=warmup),
            CosineAnnealingLR(optimizer, T_max=max(1, total_steps - warmup), eta_min=eta_min),
        ],
        milestones=[warmup],
    )


# -- the group ---------------------------------------------------------------------------
@dataclass
class Schedule:
    """`make(optimizer, total, lr)` -> scheduler; `total` counts scheduler steps (optimizer
    steps or epochs, by `interval`). `monitor`: the dev metric a plateau scheduler is fed."""

    name: str
    make: Callable[[Optimizer, int, float], Any] | None = None
    interval: str = "step"
    monitor: Metric | None = None
    params: dict | None = None

    def build(self, optimizer: Optimizer, total: int, lr: float):
        return None if self.make is None else self.make(optimizer, total, lr)


_INTERVAL = one_of("step", "epoch")


def _schedule(name: str, make, interval: str, monitor: str | None = None, **params) -> Schedule:
    return Schedule(name, make, interval, Metric.parse(monitor) if monitor else None, params)


@register("scheduler", "none", interval=_INTERVAL)
def no_schedule(interval: str = "step") -> Schedule:
    return Schedule("none", None, interval)


@register("scheduler", "power", interval=_INTERVAL, s=num(0, lo_open=True), c=num(0))
def power(s: float, c: float = 1.0, interval: str = "step") -> Schedule:
    return _schedule("power", lambda o, total, lr: PowerLR(o, s=s, c=c), interval, s=s, c=c)


@register("scheduler", "exponential", interval=_INTERVAL, s=num(0, lo_open=True))
def exponential(s: float, interval: str = "step") -> Schedule:
    return _schedule("exponential", lambda o, total, lr: ExponentialDecayLR(o, s=s), interval, s=s)


def _increasing(b: list) -> str | None:
    return None if b == sorted(b) else "increasing positive integers, e.g. [10, 20]"


@register(
    "scheduler",
    "piecewise",
    interval=_INTERVAL,
    boundaries=int_list(1, check=_increasing),
    values=num_list(0, lo_open=True, min_len=1),
)
def piecewise(boundaries: list[int], values: list[float], interval: str = "epoch") -> Schedule:
    from torchprac.errors import ConfigError

    if len(values) != len(boundaries) + 1:
        raise ConfigError(
            "scheduler.values", values, f"{len(boundaries) + 1} positive learning rates (one more than boundaries)"
        )
    return _schedule(
        "piecewise", lambda o, total, lr: PiecewiseConstantLR(o, boundaries, values), interval, boundaries=boundaries
    )


def _plateau_mode(monitor: str, mode: str) -> None:
    from torchprac.errors import ConfigError

    expected = Metric.parse(monitor, "scheduler.monitor").mode
    if mode != expected:  # lr must drop when the monitor stops improving
        raise ConfigError("scheduler.mode", mode, f"{expected!r} for scheduler.monitor={monitor}")


@register(
    "scheduler",
    "plateau",
    interval=one_of("epoch"),
    monitor=one_of("dev/loss", "dev/accuracy"),
    mode=one_of("min", "max"),
    factor=num(0, 1, lo_open=True, hi_open=True),
    patience=integer(0),
    threshold=num(0),
    min_lr=num(0),
)
def plateau(
    monitor: str = "dev/loss",
    mode: str = "min",
    factor: float = 0.5,
    patience: int = 3,
    threshold: float = 1e-4,
    min_lr: float = 0.0,
    interval: str = "epoch",
) -> Schedule:
    _plateau_mode(monitor, mode)

    def make(o, total, lr):
        return ReduceLROnPlateau(o, mode=mode, factor=factor, patience=patience, threshold=threshold, min_lr=min_lr)

    return _schedule("plateau", make, interval, monitor, factor=factor, patience=patience)


@register(
    "scheduler",
    "onecycle",
    interval=_INTERVAL,
    max_lr=num(0, lo_open=True, optional=True),
    total_steps=integer(1, optional=True),
    pct_start=num(0, 1, lo_open=True, hi_open=True),
    div_factor=num(0, lo_open=True),
    final_div_factor=num(0, lo_open=True),
    anneal_strategy=one_of("cos", "linear"),
    cycle_momentum=flag(),
)
def onecycle(
    max_lr: float | None = None,
    total_steps: int | None = None,
    pct_start: float = 0.3,
    div_factor: float = 25.0,
    final_div_factor: float = 1e4,
    anneal_strategy: str = "cos",
    cycle_momentum: bool = True,
    interval: str = "step",
) -> Schedule:
    def make(o, total, lr):
        # OneCycleLR cycles momentum (or Adam's beta1) by default; on an optimizer without it
        # (plain sgd/gd: momentum 0, adagrad, adadelta) cycling would silently turn it into
        # momentum SGD or fail. There it stays off, so what ran is what the config says.
        g = o.param_groups[0]
        cycle = cycle_momentum and (bool(g.get("momentum")) or "betas" in g)
        return OneCycleLR(
            o,
            max_lr=max_lr or lr,
            total_steps=total_steps or total,
            pct_start=pct_start,
            div_factor=div_factor,
            final_div_factor=final_div_factor,
            anneal_strategy=anneal_strategy,
            cycle_momentum=cycle,
        )

    return _schedule("onecycle", make, interval, cycle_momentum=cycle_momentum)


@register("scheduler", "cosine", interval=_INTERVAL, T_max=integer(1, optional=True), eta_min=num(0))
def cosine(T_max: int | None = None, eta_min: float = 0.0, interval: str = "step") -> Schedule:
    return _schedule(
        "cosine", lambda o, total, lr: CosineAnnealingLR(o, T_max=T_max or total, eta_min=eta_min), interval
    )


@register(
    "scheduler",
    "warmup_cosine",
    interval=_INTERVAL,
    total_steps=integer(1, optional=True),
    warmup_fraction=num(0, 1, hi_open=True),
    start_factor=num(0, 1, lo_open=True),
    eta_min=num(0),
)
def warmup_cosine_choice(
    total_steps: int | None = None,
    warmup_fraction: float = 0.05,
    start_factor: float = 0.01,
    eta_min: float = 0.0,
    interval: str = "step",
) -> Schedule:
    def make(o, total, lr):
        return warmup_cosine(o, total_steps or total, warmup_fraction, start_factor, eta_min)

    return _schedule("warmup_cosine", make, interval)
