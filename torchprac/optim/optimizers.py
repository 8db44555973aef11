"""The optimizer group: each choice is a real torch.optim class with its keys' rules. The
built `OptimizerSpec` makes the optimizer once the model's parameter groups exist."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from torchprac.errors import ConfigError
from torchprac.optim.fast import fast_kwargs
from torchprac.registry import Param, flag, num, num_list, register

_LR = num(0, lo_open=True)
_WD = num(0)
_EPS = num(0, lo_open=True)
_MOMENTUM = num(0, 1, hi_open=True)
_BETAS = num_list(0, 1, hi_open=True, length=2)
_FUSED = Param("bool", optional=True)  # `+optimizer.fused=false` wins over the automatic choice


@dataclass
class OptimizerSpec:
    """A torch.optim class and its keyword arguments; `full_batch`: gd (one step per epoch)."""

    name: str
    cls: type[torch.optim.Optimizer]
    kwargs: dict[str, Any] = field(default_factory=dict)
    full_batch: bool = False

    @property
    def lr(self) -> float:
        return float(self.kwargs["lr"])

    @property
    def weight_decay(self) -> float:
        return float(self.kwargs.get("weight_decay", 0.0) or 0.0)

    @property
    def momentum(self) -> float:
        return float(self.kwargs.get("momentum", 0.0) or 0.0)

    def make(self, model: nn.Module) -> torch.optim.Optimizer:
        device = next((p.device for p in model.parameters()), torch.device("cpu"))
        groups = param_groups(model, self.weight_decay)
        return self.cls(groups, **self.kwargs, **fast_kwargs(self.cls, device, self.kwargs))


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Two groups: `weights` (matrices, kernels) get weight decay; `no_decay` (biases,
    batch-norm and PReLU parameters: every tensor of dim < 2) never does."""
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.ndim >= 2 else no_decay).append(p)
    groups = [{"name": "weights", "params": decay, "weight_decay": weight_decay}]
    if no_decay:
        groups.append({"name": "no_decay", "params": no_decay, "weight_decay": 0.0})
    return groups


def _torch_choice(name: str, cls: type[torch.optim.Optimizer], full_batch: bool = False, **params: Param) -> None:
    def build(**kwargs: Any) -> OptimizerSpec:
        kwargs = {k: (tuple(v) if isinstance(v, list) else v) for k, v in kwargs.items() if v is not None}
        if kwargs.get("nesterov") and not kwargs.get("momentum"):  # name the key, not torch's wording
            raise ConfigError(
                "optimizer.momentum",
                kwargs.get("momentum"),
                f"a number in (0, 1) when optimizer={name} (nesterov=true)",
            )
        # torch validates its own argument combinations (e.g. nesterov without momentum) in the
        # constructor: try it once on a dummy parameter so the error comes now, as a ConfigError.
        cls([torch.zeros(1, requires_grad=True)], **kwargs)
        return OptimizerSpec(name, cls, kwargs, full_batch)

    register("optimizer", name, **params, fused=_FUSED, foreach=_FUSED)(build)


_torch_choice("gd", torch.optim.SGD, full_batch=True, lr=_LR, weight_decay=_WD, momentum=_MOMENTUM)
_torch_choice("sgd", torch.optim.SGD, lr=_LR, weight_decay=_WD, momentum=_MOMENTUM)
_torch_choice("momentum", torch.optim.SGD, lr=_LR, weight_decay=_WD, momentum=_MOMENTUM, nesterov=flag())
_torch_choice("nesterov", torch.optim.SGD, lr=_LR, weight_decay=_WD, momentum=_MOMENTUM, nesterov=flag())
_torch_choice("adagrad", torch.optim.Adagrad, lr=_LR, weight_decay=_WD, eps=_EPS)
_torch_choice("adadelta", torch.optim.Adadelta, lr=_LR, weight_decay=_WD, eps=_EPS, rho=num(0, 1))
_torch_choice("rmsprop", torch.optim.RMSprop, lr=_LR, weight_decay=_WD, eps=_EPS, alpha=num(0, 1), momentum=_MOMENTUM)
for _name, _cls in {
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "nadam": torch.optim.NAdam,
    "adamax": torch.optim.Adamax,
}.items():
    _torch_choice(_name, _cls, lr=_LR, weight_decay=_WD, eps=_EPS, betas=_BETAS)
