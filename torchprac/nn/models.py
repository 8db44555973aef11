"""Model builders. Every model is an nn.Sequential of named stages ending in `head`
(a Linear to the class logits), so transfer learning can reuse "all but the head" and the
health monitor can walk the layers in order."""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from math import prod

import torch
from torch import nn

from torchprac.errors import ConfigError
from torchprac.nn.dropout import InvertedDropout
from torchprac.nn.init import InitFn, apply_init
from torchprac.registry import int_list, integer, one_of, register

_BATCH_NORM = one_of("none", "before", "after")


def _odd(k: int) -> str | None:
    return None if k % 2 == 1 else "an odd positive integer (1, 3, 5, ...)"


@dataclass
class ModelSpec:
    """The model choice before the data is known: `make` builds it for an input shape and
    class count, with the activation, init and dropout choices."""

    name: str
    hidden: list[int]
    batch_norm: str = "none"
    channels: list[int] = field(default_factory=list)
    kernel_size: int = 3

    def make(
        self,
        input_shape: Sequence[int],
        num_classes: int,
        activation: Callable[[], nn.Module] = nn.ReLU,
        init: InitFn | None = None,
        keep_probs: Sequence[float] | None = None,
        input_keep_prob: float = 1.0,
        alpha_dropout: bool = False,
    ) -> nn.Sequential:
        common = dict(
            input_shape=tuple(input_shape),
            num_classes=num_classes,
            hidden=self.hidden,
            activation=activation,
            batch_norm=self.batch_norm,
            keep_probs=keep_probs,
            input_keep_prob=input_keep_prob,
            alpha_dropout=alpha_dropout,
        )
        if self.name == "mlp":
            check_memory(
                dense_parameter_count(prod(input_shape), self.hidden, num_classes), "model.hidden", self.hidden
            )
            model = build_mlp(**common)
        else:
            model = build_cnn(channels=self.channels, kernel_size=self.kernel_size, **common)
        if init is not None:
            apply_init(model, init)
        return model


@register("model", "mlp", hidden=int_list(1), batch_norm=_BATCH_NORM)
def mlp(hidden: list[int], batch_norm: str = "none") -> ModelSpec:
    return ModelSpec("mlp", list(hidden), batch_norm)


@register(
    "model",
    "cnn",
    hidden=int_list(1),
    batch_norm=_BATCH_NORM,
    channels=int_list(1, min_len=1),
    kernel_size=integer(1, check=_odd),
)
def cnn(channels: list[int], hidden: list[int], kernel_size: int = 3, batch_norm: str = "none") -> ModelSpec:
    return ModelSpec("cnn", list(hidden), batch_norm, list(channels), kernel_size)


def dense_parameter_count(n_in: int, hidden: Sequence[int], n_out: int) -> int:
    widths = [n_in, *hidden, n_out]
    return sum(a * b + b for a, b in zip(widths, widths[1:]))


def check_memory(n_params: int, key: str, value: object) -> None:
    """Refuse a model whose weights, gradients and optimizer state (~4 copies in float32)
    cannot fit in this machine's memory, before allocating any of it."""
    need = 4 * 4 * n_params
    try:
        have = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return
    if need > have:
        raise ConfigError(
            key,
            value,
            "layer sizes whose parameters fit in memory",
            f"This model has {n_params:,} parameters: about {need / 2**30:.1f} GiB for weights, gradients and "
            f"optimizer state, and this machine has {have / 2**30:.1f} GiB available.",
        )


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
