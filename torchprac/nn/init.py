"""Weight initialisation through torch.nn.init: `fn` (a partial from the init group) on every
weight matrix / conv kernel, biases to zero. Norm layers keep their (1, 0) defaults."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

WEIGHT_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d)


@torch.no_grad()
def apply_init(model: nn.Module, fn: Callable[[torch.Tensor], object]) -> None:
    for m in model.modules():
        if isinstance(m, WEIGHT_LAYERS):
            fn(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
