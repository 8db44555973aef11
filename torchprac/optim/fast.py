"""Fused optimizer kernels, chosen automatically. On CPU torch.optim defaults to a Python-level
loop over the parameters (foreach is its default on CUDA only, fused never), which at small
batches costs as much as the model's matmuls: one fused kernel per step took SGD (Nesterov)
from 24k to 33k and Adam from 21k to 26k samples/s (CPU time, one core) on the benchmark MLP at
batch 32. foreach kernels, by contrast, brought nothing on CPU (RMSprop, NAdam, Adamax,
Adadelta: +-5%), so classes without a fused kernel keep torch's own default. See bench/README.md."""

from __future__ import annotations

import inspect
from collections.abc import Mapping

import torch


def _fused_devices() -> list[str]:
    try:
        from torch.optim.optimizer import _get_fused_kernels_supported_devices

        return list(_get_fused_kernels_supported_devices())
    except ImportError:  # a private helper: fall back to what every recent torch fuses on
        return ["cuda", "cpu"]


def fast_kwargs(cls: type, device: torch.device, given: Mapping[str, object]) -> dict[str, bool]:
    """{"fused": True} where optimizer class `cls` has a fused kernel for `device` (SGD, Adam,
    AdamW and Adagrad in torch 2.x), else {}. An explicit `fused` or `foreach` in the optimizer
    config (e.g. `+optimizer.fused=false`) wins."""
    if "fused" in given or "foreach" in given:
        return {}
    try:
        accepted = inspect.signature(cls).parameters
    except (TypeError, ValueError):
        return {}
    return {"fused": True} if "fused" in accepted and device.type in _fused_devices() else {}
