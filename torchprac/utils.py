"""Small helpers shared across the package (kept here once)."""

from __future__ import annotations

from torch import nn


def unwrap(model: nn.Module) -> nn.Module:
    """The plain module under torch.compile (`_orig_mod`) and DDP (`module`) wrappers."""
    for attr in ("_orig_mod", "module"):
        while isinstance(getattr(model, attr, None), nn.Module):
            model = getattr(model, attr)
    return model
