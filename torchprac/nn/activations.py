"""The activation group: each choice builds a factory of fresh torch.nn activation modules
(one module per layer, so PReLU's learned slopes are per layer)."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from torch import nn

from torchprac.registry import integer, num, register

ActivationFactory = Callable[[], nn.Module]


def _simple(name: str, cls: type[nn.Module]) -> None:
    register("activation", name)(lambda: partial(cls))


for _name, _cls in {
    "relu": nn.ReLU,
    "selu": nn.SELU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "identity": nn.Identity,
}.items():
    _simple(_name, _cls)


@register("activation", "leaky_relu", negative_slope=num(0))
def leaky_relu(negative_slope: float = 0.01) -> ActivationFactory:
    return partial(nn.LeakyReLU, negative_slope=negative_slope)


@register("activation", "prelu", num_parameters=integer(1), init=num(0))
def prelu(num_parameters: int = 1, init: float = 0.25) -> ActivationFactory:
    return partial(nn.PReLU, num_parameters=num_parameters, init=init)


@register("activation", "elu", alpha=num(0, lo_open=True))
def elu(alpha: float = 1.0) -> ActivationFactory:
    return partial(nn.ELU, alpha=alpha)


@register("activation", "softplus", beta=num(0, lo_open=True))
def softplus(beta: float = 1.0) -> ActivationFactory:
    return partial(nn.Softplus, beta=beta)
