"""What one optimisation step does after the forward pass, in one object: add the penalty,
backward (through the GradScaler for fp16), clip, step the optimizer, apply constraints.
Everything stays on the device: the returned penalty and gradient norm are tensors."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from functools import partial

import torch

from torchprac.errors import ConfigError


@dataclass
class Precision:
    """trainer.precision: an autocast context factory and, for fp16, a GradScaler."""

    autocast: Callable = nullcontext
    scaler: torch.amp.GradScaler | None = None

    @classmethod
    def of(cls, precision: str, device: torch.device) -> Precision:
        if precision == "32":
            return cls()
        if precision == "16-mixed" and device.type != "cuda":
            raise ConfigError("trainer.precision", precision, "'32' or 'bf16-mixed' on CPU ('16-mixed' needs CUDA)")
        dtype = torch.bfloat16 if precision == "bf16-mixed" else torch.float16
        scaler = torch.amp.GradScaler("cuda") if precision == "16-mixed" else None
        return cls(partial(torch.autocast, device_type=device.type, dtype=dtype), scaler)


@dataclass
class Optimization:
    optimizer: torch.optim.Optimizer
    penalty: Callable[[], torch.Tensor] | None = None  # reg loss terms
    clipper: object | None = None  # optim.clip.Clipper
    constraints: Sequence[Callable[[], None]] = field(default_factory=list)  # reg constraints
    precision: Precision = field(default_factory=Precision)

    def step(
        self, data_loss: torch.Tensor, before_step: Sequence[Callable[[], None]] = (), want_norm: bool = False
    ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """(penalty, pre-clip gradient norm), either None when not computed."""
        penalty = self.penalty() if self.penalty is not None else None
        loss = data_loss if penalty is None else data_loss + penalty
        opt, scaler = self.optimizer, self.precision.scaler
        opt.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.unscale_(opt)
        else:
            loss.backward()
        for hook in before_step:
            hook()
        norm = self.clipper(want_norm=want_norm) if self.clipper is not None else None
        if scaler is not None:
            scaler.step(opt)
            scaler.update()
        else:
            opt.step()
        for constrain in self.constraints:
            constrain()
        return (None if penalty is None else penalty.detach()), norm

    def state_dict(self) -> dict:
        c = self.clipper
        return {
            "optimizer": self.optimizer.state_dict(),
            "clipper": {"fired": c.fired, "steps": c.steps} if c is not None else None,
        }

    def load_state_dict(self, state: dict) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        if self.clipper is not None and state.get("clipper"):
            self.clipper.fired, self.clipper.steps = state["clipper"]["fired"], int(state["clipper"]["steps"])
