"""Learning-rate schedules from the course that torch does not ship under these names.
Each is a real torch LRScheduler, so it checkpoints and composes like torch's own."""

from __future__ import annotations

from collections.abc import Sequence

from torch.optim import Optimizer
from torch.optim.lr_scheduler import CosineAnnealingLR, LinearLR, LRScheduler, SequentialLR


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
