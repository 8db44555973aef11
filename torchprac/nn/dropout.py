"""Inverted dropout, written by hand because it is the subject being taught."""

from __future__ import annotations

import torch
from torch import nn


class InvertedDropout(nn.Module):
    """Training: a <- a * mask / keep_prob with mask = (U < keep_prob), U ~ Uniform[0, 1).
    Dividing by keep_prob keeps E[output] = a, so evaluation is the exact identity.
    """

    def __init__(self, keep_prob: float) -> None:
        super().__init__()
        if not 0.0 < keep_prob <= 1.0:
            raise ValueError(f"keep_prob must be in (0, 1], got {keep_prob}")
        self.keep_prob = float(keep_prob)

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        if not self.training or self.keep_prob == 1.0:
            return a
        mask = torch.rand_like(a) < self.keep_prob
        return a * mask / self.keep_prob

    def extra_repr(self) -> str:
        return f"keep_prob={self.keep_prob}"
