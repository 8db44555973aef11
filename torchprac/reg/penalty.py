"""Weight penalties added to the data loss: J = data_loss + penalty.

L2: (lambda/2) sum ||W||_F^2 (gradient lambda W: SGD's weight_decay=lambda). L1: lambda1 sum |W|.
Only weight matrices and conv kernels are penalised: never biases or batch-norm parameters.
"""

from __future__ import annotations

import torch
from torch import nn

from torchprac.nn.init import WEIGHT_LAYERS


def penalized_weights(model: nn.Module) -> list[torch.Tensor]:
    return [m.weight for m in model.modules() if isinstance(m, WEIGHT_LAYERS)]


class Penalty:
    def __init__(self, weights: list[torch.Tensor], l1: float = 0.0, l2: float = 0.0) -> None:
        self.weights, self.l1, self.l2 = weights, float(l1), float(l2)

    def __call__(self) -> torch.Tensor:
        total = self.weights[0].new_zeros(())
        if self.l2:
            total = total + 0.5 * self.l2 * sum(w.pow(2).sum() for w in self.weights)
        if self.l1:
            total = total + self.l1 * sum(w.abs().sum() for w in self.weights)
        return total
