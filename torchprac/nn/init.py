"""The init group: torch.nn.init functions on every weight matrix / conv kernel, biases to
zero, norm layers keep their (1, 0) defaults. Each choice builds `fn(weight_tensor)`."""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial

import torch
from torch import nn

from torchprac.registry import num, one_of, register

WEIGHT_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d)
InitFn = Callable[[torch.Tensor], object]

_MODE = one_of("fan_in", "fan_out")
_NONLIN = one_of("relu", "leaky_relu", "linear", "tanh", "sigmoid", "selu")
_GAIN = num(0, lo_open=True)


@register("init", "he_normal", mode=_MODE, nonlinearity=_NONLIN)
@register("init", "lecun_normal", mode=_MODE, nonlinearity=_NONLIN)  # He with gain 1: Var = 1/fan_in
def kaiming_normal(mode: str = "fan_in", nonlinearity: str = "relu") -> InitFn:
    return partial(nn.init.kaiming_normal_, mode=mode, nonlinearity=nonlinearity)


@register("init", "he_uniform", mode=_MODE, nonlinearity=_NONLIN)
@register("init", "lecun_uniform", mode=_MODE, nonlinearity=_NONLIN)
def kaiming_uniform(mode: str = "fan_in", nonlinearity: str = "relu") -> InitFn:
    return partial(nn.init.kaiming_uniform_, mode=mode, nonlinearity=nonlinearity)


@register("init", "standard_uniform")
def standard_uniform() -> InitFn:
    """The "commonly used heuristic" Glorot & Bengio (2010) compare against, U(±1/sqrt(fan_in)),
    Var = 1/(3 fan_in): torch.nn.Linear's own default (kaiming_uniform_ with a = sqrt(5))."""
    return partial(nn.init.kaiming_uniform_, a=math.sqrt(5))


@register("init", "xavier_normal", gain=_GAIN)
def xavier_normal(gain: float = 1.0) -> InitFn:
    return partial(nn.init.xavier_normal_, gain=gain)


@register("init", "xavier_uniform", gain=_GAIN)
def xavier_uniform(gain: float = 1.0) -> InitFn:
    return partial(nn.init.xavier_uniform_, gain=gain)


@register("init", "orthogonal", gain=_GAIN)
def orthogonal(gain: float = 1.0) -> InitFn:
    return partial(nn.init.orthogonal_, gain=gain)


@register("init", "normal", mean=num(), std=num(0, lo_open=True))
def normal(mean: float = 0.0, std: float = 0.01) -> InitFn:
    return partial(nn.init.normal_, mean=mean, std=std)


@register("init", "zeros")
def zeros() -> InitFn:
    return nn.init.zeros_


@torch.no_grad()
def apply_init(model: nn.Module, fn: InitFn) -> None:
    for m in model.modules():
        if isinstance(m, WEIGHT_LAYERS):
            fn(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
