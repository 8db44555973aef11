"""Optimisation stage: the optimizer, scheduler and clip groups (real torch.optim objects)."""

from torchprac.optim.clip import Clipper, ClipSpec
from torchprac.optim.optimizers import OptimizerSpec, param_groups
from torchprac.optim.schedules import Schedule

__all__ = ["OptimizerSpec", "Schedule", "ClipSpec", "Clipper", "param_groups"]
