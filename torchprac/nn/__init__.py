"""Model stage: the model, activation and init groups (and the dropout layers of reg)."""

from __future__ import annotations

from torchprac.nn.dropout import InvertedDropout
from torchprac.nn.init import apply_init
from torchprac.nn.models import ModelSpec, build_cnn, build_mlp

__all__ = ["ModelSpec", "InvertedDropout", "apply_init", "build_mlp", "build_cnn"]
