"""The clip group: gradient clipping. Every variant returns the PRE-clip global gradient norm
as a device tensor (no host sync) and counts on the device how often clipping fired."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn.utils import clip_grad_norm_, clip_grad_value_, get_total_norm

from torchprac.registry import num, register


@dataclass(frozen=True)
class ClipSpec:
    """The clip choice, before the parameters exist; `threshold` is what HParams records."""

    kind: str = "none"
    max_norm: float = 1.0
    norm_type: float = 2.0
    clip_value: float = 0.5

    @property
    def threshold(self) -> float:
        return {"norm": self.max_norm, "value": self.clip_value}.get(self.kind, 0.0)

    def make(self, params: list[torch.nn.Parameter]) -> Clipper:
        return Clipper(params, self.kind, self.max_norm, self.norm_type, self.clip_value)


@register("clip", "none")
def clip_none() -> ClipSpec:
    return ClipSpec("none")


@register("clip", "norm", max_norm=num(0, lo_open=True), norm_type=num(1))
def clip_norm(max_norm: float = 1.0, norm_type: float = 2.0) -> ClipSpec:
    return ClipSpec("norm", max_norm=max_norm, norm_type=norm_type)


@register("clip", "value", clip_value=num(0, lo_open=True))
def clip_value(clip_value: float = 0.5) -> ClipSpec:
    return ClipSpec("value", clip_value=clip_value)


class Clipper:
    def __init__(
        self,
        params: list[torch.nn.Parameter],
        kind: str = "none",
        max_norm: float = 1.0,
        norm_type: float = 2.0,
        clip_value: float = 0.5,
    ) -> None:
        self.params, self.kind = [p for p in params if p.requires_grad], kind
        self.max_norm, self.norm_type, self.clip_value = float(max_norm), float(norm_type), float(clip_value)
        self.fired: torch.Tensor | None = None  # device counter, created lazily on the grads' device
        self.steps = 0

    def _grads(self) -> list[torch.Tensor]:
        return [p.grad for p in self.params if p.grad is not None]

    def norm(self) -> torch.Tensor:
        return get_total_norm(self._grads(), norm_type=self.norm_type)

    def __call__(self, want_norm: bool = False) -> torch.Tensor | None:
        """Clip in place; returns the pre-clip global norm (a device tensor). Norm clipping
        computes it anyway; otherwise it is computed only when asked (the trainer asks on
        logging steps), so clip=none costs nothing on the other steps."""
        self.steps += 1
        if self.kind == "norm":
            total = clip_grad_norm_(self.params, self.max_norm, norm_type=self.norm_type)
            self._count(total > self.max_norm)
            return total
        total = self.norm() if want_norm else None
        if self.kind == "value":
            grads = self._grads()
            biggest = torch.stack([g.abs().amax() for g in grads]).amax()
            self._count(biggest > self.clip_value)
            clip_grad_value_(self.params, self.clip_value)
        return total

    def _count(self, hit: torch.Tensor) -> None:
        self.fired = hit.to(torch.int64) if self.fired is None else self.fired + hit

    def fired_fraction(self) -> float:
        return 0.0 if self.fired is None or not self.steps else float(self.fired) / self.steps
