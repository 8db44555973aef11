"""Trainer hooks. Subclass Callback and override what you need; the Trainer calls only the
hooks a callback overrides, so an unused per-step hook costs nothing."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torchprac.train.trainer import FitResult, Trainer

HOOKS = ("on_fit_start", "on_before_step", "on_after_step", "on_log", "on_epoch_end", "on_fit_end")


class Callback:
    def on_fit_start(self, trainer: Trainer) -> None: ...

    def on_before_step(self, trainer: Trainer) -> None:
        """After backward, before clipping and the optimizer step: gradients are fresh."""

    def on_after_step(self, trainer: Trainer) -> None:
        """After the optimizer step and constraints."""

    def on_log(self, trainer: Trainer, logs: dict[str, float]) -> None:
        """Every trainer.log_every_n_steps steps, with host floats already read."""

    def on_epoch_end(self, trainer: Trainer, logs: dict[str, float]) -> None: ...

    def on_fit_end(self, trainer: Trainer, result: FitResult) -> None: ...

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


def overriding(callbacks: list[Callback], hook: str) -> list:
    """Bound methods of the callbacks that override `hook`."""
    return [getattr(cb, hook) for cb in callbacks if getattr(type(cb), hook) is not getattr(Callback, hook)]
