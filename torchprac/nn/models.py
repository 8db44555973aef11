"""Model builders. Every model is an nn.Sequential of named stages ending in `head`
(a Linear to the class logits), so transfer learning can reuse "all but the head" and the
health monitor can walk the layers in order."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from math import prod

import torch
from torch import nn

from torchprac.errors import ConfigError
from torchprac.nn.dropout import InvertedDropout

BN_PLACEMENTS = ("none", "before", "after")


def _block(
    linear: nn.Module, bn: Callable[[], nn.Module] | None, placement: str, act: nn.Module, extra: Sequence[nn.Module]
) -> nn.Sequential:
    parts: list[tuple[str, nn.Module]] = [("linear", linear)]
    if placement == "before" and bn is not None:
        parts.append(("bn", bn()))
    parts.append(("act", act))
    if placement == "after" and bn is not None:
        parts.append(("bn", bn()))
    parts += [(f"drop{i}" if i else "drop", m) for i, m in enumerate(extra)]
    return nn.Sequential(OrderedDict(parts))


def _dropout(keep_prob: float | None, alpha: bool) -> list[nn.Module]:
    if keep_prob is None or keep_prob >= 1.0:
        return []
    return [nn.AlphaDropout(p=1.0 - keep_prob) if alpha else InvertedDropout(keep_prob)]


def build_mlp(
    input_shape: Sequence[int],
    num_classes: int,
    hidden: Sequence[int],
    activation: Callable[[], nn.Module],
    batch_norm: str = "none",
    keep_probs: Sequence[float] | None = None,
    input_keep_prob: float = 1.0,
    alpha_dropout: bool = False,
) -> nn.Sequential:
    layers: OrderedDict[str, nn.Module] = OrderedDict(flatten=nn.Flatten())
    layers.update((f"input_drop{i}", m) for i, m in enumerate(_dropout(input_keep_prob, alpha_dropout)))
    _dense_head(
        layers, "layer", prod(input_shape), hidden, num_classes, activation, batch_norm, keep_probs, alpha_dropout
    )
    return nn.Sequential(layers)


def _dense_head(
    layers: OrderedDict[str, nn.Module],
    prefix: str,
    width: int,
    hidden: Sequence[int],
    num_classes: int,
    activation: Callable[[], nn.Module],
    batch_norm: str,
    keep_probs: Sequence[float] | None,
    alpha_dropout: bool,
) -> None:
    """Append the fully connected hidden blocks `<prefix>1..N` (with per-layer dropout) and the head."""
    for i, h in enumerate(hidden):
        kp = keep_probs[i] if keep_probs else None
        layers[f"{prefix}{i + 1}"] = _block(
            nn.Linear(width, h, bias=batch_norm != "before"),  # BN before act makes the bias redundant
            (lambda h=h: nn.BatchNorm1d(h)),
            batch_norm,
            activation(),
            _dropout(kp, alpha_dropout),
        )
        width = h
    layers["head"] = nn.Linear(width, num_classes)


def build_cnn(
    input_shape: Sequence[int],
    num_classes: int,
    channels: Sequence[int],
    hidden: Sequence[int],
    activation: Callable[[], nn.Module],
    kernel_size: int = 3,
    batch_norm: str = "none",
    keep_probs: Sequence[float] | None = None,
    input_keep_prob: float = 1.0,
    alpha_dropout: bool = False,
) -> nn.Sequential:
    if len(input_shape) == 3:
        conv, bn, pool = nn.Conv2d, nn.BatchNorm2d, nn.MaxPool2d
    elif len(input_shape) == 2:
        conv, bn, pool = nn.Conv1d, nn.BatchNorm1d, nn.MaxPool1d
    else:
        raise ConfigError(
            "model",
            "cnn",
            "model=mlp for this dataset",
            f"model=cnn needs images (C, H, W) or 1-D "
            f"signals (C, L); this dataset's examples have shape {tuple(input_shape)}.",
        )
    smallest = min(input_shape[1:])
    if smallest >> len(channels) < 1:  # each conv block halves the spatial size (MaxPool 2)
        raise ConfigError(
            "model.channels",
            list(channels),
            f"at most {smallest.bit_length() - 1} conv blocks for "
            f"inputs of shape {tuple(input_shape)} (each block halves the size)",
        )
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    layers.update((f"input_drop{i}", m) for i, m in enumerate(_dropout(input_keep_prob, alpha_dropout)))
    c_in = input_shape[0]
    for i, c in enumerate(channels):
        block = _block(
            conv(c_in, c, kernel_size, padding=kernel_size // 2, bias=batch_norm != "before"),
            (lambda c=c: bn(c)),
            batch_norm,
            activation(),
            [],
        )
        block.add_module("pool", pool(2))
        layers[f"conv{i + 1}"] = block
        c_in = c
    layers["flatten"] = nn.Flatten()
    # Shape probe in eval mode: a training-mode forward would update the batch-norm running
    # statistics (and count a batch) before training starts.
    probe = nn.Sequential(layers).eval()
    with torch.no_grad():
        width = probe(torch.zeros(1, *input_shape)).shape[1]
    probe.train()
    _dense_head(layers, "fc", width, hidden, num_classes, activation, batch_norm, keep_probs, alpha_dropout)
    return nn.Sequential(layers)
