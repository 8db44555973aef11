"""The reg group (a list: reg=[l2,dropout]). Each regularizer is an object that declares its
role, so that the config is parsed once and each stage asks only for what concerns it:

- loss term   (l1, l2, elastic)   -> `penalty_strengths()`: added to the data loss
- model edit  (dropout, alpha_dropout) -> `dropout`: layers the model builder inserts
- constraint  (max_norm)          -> `constraint(model)`: applied after each optimizer step
- batch transform (augment)       -> `transform(...)`: applied to training batches only

and its `hparams()`, the keys it fills in the run's fixed HParams row.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn

from torchprac.errors import ConfigError
from torchprac.registry import Param, flag, integer, num, register


class Regularizer:
    role: ClassVar[str] = ""

    def hparams(self) -> dict[str, Any]:
        return {}


# -- loss terms --------------------------------------------------------------------------
@dataclass
class WeightPenalty(Regularizer):
    """J = data loss + l1 * sum|W| + (l2 / 2) * sum W^2 over weight matrices and kernels."""

    role: ClassVar[str] = "loss_term"
    l1: float = 0.0
    l2: float = 0.0

    def hparams(self) -> dict[str, Any]:
        return {"l1": self.l1, "l2": self.l2}


@register("reg", "l2", strength=num(0))
def l2(strength: float = 1e-3) -> WeightPenalty:
    return WeightPenalty(l2=strength)


@register("reg", "l1", strength=num(0))
def l1(strength: float = 1e-5) -> WeightPenalty:
    return WeightPenalty(l1=strength)


@register("reg", "elastic", l1=num(0), l2=num(0))
def elastic(l1: float = 1e-5, l2: float = 1e-4) -> WeightPenalty:
    return WeightPenalty(l1=l1, l2=l2)


# -- model edits -------------------------------------------------------------------------
@dataclass
class Dropout(Regularizer):
    """Inverted dropout (or alpha dropout for SELU nets) after each hidden activation with
    `keep_prob` (a scalar, or one per hidden layer) and on the inputs with `input_keep_prob`."""

    role: ClassVar[str] = "model_edit"
    keep_prob: float | list[float] = 1.0
    input_keep_prob: float = 1.0
    alpha: bool = False

    def keep_probs(self, n_hidden: int, key: str) -> list[float]:
        kp = self.keep_prob
        if isinstance(kp, list):
            if len(kp) != n_hidden:
                raise ConfigError(
                    key, kp, f"a scalar or a list with one keep_prob per hidden layer ({n_hidden} here: model.hidden)"
                )
            return [float(v) for v in kp]
        return [float(kp)] * n_hidden

    def hparams(self) -> dict[str, Any]:
        kp = self.keep_prob
        mean = sum(kp) / len(kp) if isinstance(kp, list) and kp else kp
        return {
            "keep_prob": float(mean),
            "input_keep_prob": float(self.input_keep_prob),
            "dropout": "alpha" if self.alpha else "inverted",
        }


def _keep_prob_rule(v: Any) -> str | None:
    vals = v if isinstance(v, list) else [v]
    ok = all(isinstance(x, (int, float)) and not isinstance(x, bool) and 0 < x <= 1 for x in vals)
    return None if ok and vals else "a number in (0, 1] or a list of them (one per hidden layer)"


_KEEP = Param("any", check_fn=_keep_prob_rule)
_INPUT_KEEP = num(0, 1, lo_open=True)


@register("reg", "dropout", keep_prob=_KEEP, input_keep_prob=_INPUT_KEEP)
def dropout(keep_prob: float | list[float] = 0.8, input_keep_prob: float = 1.0) -> Dropout:
    return Dropout(keep_prob, input_keep_prob, alpha=False)


@register("reg", "alpha_dropout", keep_prob=_KEEP, input_keep_prob=_INPUT_KEEP)
def alpha_dropout(keep_prob: float | list[float] = 0.95, input_keep_prob: float = 1.0) -> Dropout:
    return Dropout(keep_prob, input_keep_prob, alpha=True)


# -- parameter constraints ---------------------------------------------------------------
@dataclass
class MaxNormReg(Regularizer):
    role: ClassVar[str] = "constraint"
    r: float = 3.0

    def constraint(self, model: nn.Module):
        from torchprac.reg.constraints import MaxNorm
        from torchprac.reg.penalty import penalized_weights

        return MaxNorm(penalized_weights(model), self.r)

    def hparams(self) -> dict[str, Any]:
        return {"max_norm": self.r}


@register("reg", "max_norm", r=num(0, lo_open=True))
def max_norm(r: float = 3.0) -> MaxNormReg:
    return MaxNormReg(r)


# -- batch transforms --------------------------------------------------------------------
@dataclass
class AugmentReg(Regularizer):
    role: ClassVar[str] = "batch_transform"
    flip: bool = False
    shift: int = 0
    noise: float = 0.0

    def transform(self, input_shape: tuple[int, ...], generator: torch.Generator | None = None):
        from torchprac.data.augment import build_augment

        return build_augment(self.flip, self.shift, self.noise, input_shape, generator)

    def hparams(self) -> dict[str, Any]:
        return {"augment": True}


@register("reg", "augment", flip=flag(), shift=integer(0), noise=num(0))
def augment(flip: bool = False, shift: int = 1, noise: float = 0.05) -> AugmentReg:
    return AugmentReg(flip, shift, noise)


# -- the selection -----------------------------------------------------------------------
HPARAM_DEFAULTS: dict[str, Any] = {
    "l1": 0.0,
    "l2": 0.0,
    "keep_prob": 1.0,
    "input_keep_prob": 1.0,
    "dropout": "none",
    "max_norm": 0.0,
    "augment": False,
}


@dataclass
class Regularizers:
    """The selected regularizers by name, each asked for by its role."""

    items: dict[str, Regularizer] = field(default_factory=dict)

    @classmethod
    def from_config(cls, node: Mapping[str, Mapping[str, Any]] | None) -> Regularizers:
        from torchprac import registry

        items: dict[str, Regularizer] = {}
        for name, params in (node or {}).items():
            registry.get("reg", name, key=f"reg.{name}")
            items[name] = registry.build("reg", {"name": name, **(params or {})}, prefix=f"reg.{name}")
        if "dropout" in items and "alpha_dropout" in items:
            raise ConfigError("reg", list(items), "at most one of dropout and alpha_dropout")
        return cls(items)

    @classmethod
    def of(cls, *regs: Regularizer) -> Regularizers:
        """From objects (notebook use): Regularizers.of(l2(1e-3), dropout(0.8))."""
        return cls({f"{type(r).__name__}{i}": r for i, r in enumerate(regs)})

    def __contains__(self, name: str) -> bool:
        return name in self.items

    @property
    def names(self) -> list[str]:
        return list(self.items)

    def _with(self, role: str) -> list:
        return [r for r in self.items.values() if r.role == role]

    def penalty_strengths(self) -> tuple[float, float]:
        """(l1, l2) summed over the loss terms."""
        terms = self._with("loss_term")
        return sum(t.l1 for t in terms), sum(t.l2 for t in terms)

    def penalty(self, model: nn.Module):
        """The weight penalty of the model, or None when no loss term is selected."""
        from torchprac.reg.penalty import Penalty, penalized_weights

        l1_, l2_ = self.penalty_strengths()
        return Penalty(penalized_weights(model), l1=l1_, l2=l2_) if (l1_ or l2_) else None

    @property
    def dropout(self) -> Dropout | None:
        found = self._with("model_edit")
        return found[0] if found else None

    def constraints(self, model: nn.Module) -> list:
        return [r.constraint(model) for r in self._with("constraint")]

    def transform(self, input_shape: tuple[int, ...], generator: torch.Generator | None = None):
        found = self._with("batch_transform")
        return found[0].transform(input_shape, generator) if found else None

    def hparams(self) -> dict[str, Any]:
        out = dict(HPARAM_DEFAULTS)
        for r in self.items.values():
            for k, v in r.hparams().items():
                out[k] = out[k] + v if k in ("l1", "l2") else v
        return out

    def settings(self) -> dict[str, dict[str, Any]]:
        """name -> its settings (for the diagnosis recipe and the logs)."""
        from dataclasses import asdict

        return {n: asdict(r) for n, r in self.items.items()}
