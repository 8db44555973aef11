"""Constraints applied after every optimizer step (no loss term)."""

from __future__ import annotations

import torch


class MaxNorm:
    """Each unit's incoming weight vector w (a row of a Linear weight, one output channel of a
    conv kernel) with ||w||_2 > r is rescaled to r w / ||w||_2; rows under r are untouched."""

    def __init__(self, weights: list[torch.Tensor], r: float) -> None:
        self.weights, self.r = weights, float(r)

    @torch.no_grad()
    def __call__(self) -> None:
        for w in self.weights:
            if not w.requires_grad:  # frozen (transfer learning): a constraint must not move it
                continue
            # torch.renorm rescales the sub-tensors along dim 0 whose 2-norm exceeds maxnorm.
            w.copy_(torch.renorm(w, p=2, dim=0, maxnorm=self.r))
