"""Transfer learning, the training side: the `transfer` config section and the callback that
freezes the reused layers for `freeze_epochs` epochs, then unfreezes them and multiplies the
learning rate(s) by `unfreeze_lr_factor` for the fine-tuning phase."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
from torch import nn

from torchprac.errors import ConfigError
from torchprac.registry import flag, integer, num, register, text
from torchprac.train.callbacks import Callback
from torchprac.train.lr_scheduler import LRSchedulerCallback
from torchprac.utils import unwrap

log = logging.getLogger("torchprac")

# LR-like keys a scheduler keeps in a param group; scaled together with lr at unfreezing.
_LR_KEYS = ("lr", "initial_lr", "max_lr", "min_lr")


@dataclass
class TransferSettings:
    pretrained: str | None = None
    reuse_layers: int | None = None
    freeze_epochs: int = 0
    unfreeze_lr_factor: float = 1.0
    from_scratch: bool = False  # a baseline that must reuse nothing (experiment=transfer_b_scratch)

    def check(self, epochs: int) -> None:
        """Freezing without a pretrained model, or longer than the run, would be ignored; a
        pretrained model in a from-scratch baseline would silently make it transfer learning."""
        if self.from_scratch and self.pretrained:
            raise ConfigError(
                "model.pretrained",
                self.pretrained,
                "null while transfer.from_scratch=true (a baseline trained from scratch reuses no model; "
                "experiment=transfer_b_scratch sets it). To reuse this one, run experiment=transfer_b_on_a "
                "model.pretrained=<run dir>, or add transfer.from_scratch=false",
            )
        if self.freeze_epochs and not self.pretrained:
            raise ConfigError(
                "transfer.freeze_epochs",
                self.freeze_epochs,
                "0 unless model.pretrained is set (there are no reused layers to freeze)",
            )
        if self.freeze_epochs > epochs:
            raise ConfigError("transfer.freeze_epochs", self.freeze_epochs, f"at most trainer.epochs ({epochs})")

    def apply(self, model: nn.Module, logger=None) -> TransferCallback | None:
        """Load the reused layers into `model`; the freeze/unfreeze callback, or None."""
        if not self.pretrained:
            return None
        from torchprac.nn.transfer import load_pretrained

        reused = load_pretrained(model, self.pretrained, self.reuse_layers)
        return TransferCallback(model, reused, self.freeze_epochs, self.unfreeze_lr_factor, logger)


def _pretrained_rule(v) -> str | None:
    from pathlib import Path

    if not v:
        return "null or the path of a run dir or checkpoint (.pt)"
    return (
        None if Path(v).expanduser().exists() else "an existing run dir or checkpoint (.pt): that path does not exist"
    )


@register(
    "transfer",
    "default",
    pretrained=text(optional=True),
    reuse_layers=integer(1, optional=True),
    freeze_epochs=integer(0),
    unfreeze_lr_factor=num(0, lo_open=True),
    from_scratch=flag(),
)
def transfer_settings(**kwargs) -> TransferSettings:
    pre = kwargs.get("pretrained")
    if pre is not None:
        problem = _pretrained_rule(pre)
        if problem:
            raise ConfigError("model.pretrained", pre, problem)
    return TransferSettings(**kwargs)


class TransferCallback(Callback):
    """Freezes the reused stages for the first `freeze_epochs` epochs, then unfreezes them and
    multiplies every learning rate (and the scheduler's base lrs) by `unfreeze_lr_factor`.

    Frozen means requires_grad=False (no gradient, so neither the optimizer, its momentum nor
    weight decay touches them) and their batch-norm layers in eval mode (running statistics
    frozen too, as Keras does for trainable=False)."""

    def __init__(
        self,
        model: nn.Module,
        reused: list[str],
        freeze_epochs: int = 0,
        unfreeze_lr_factor: float = 1.0,
        logger=None,
    ) -> None:
        self.logger = logger
        base = unwrap(model)
        self.modules = [base.get_submodule(n) for n in reused]
        self.params = [p for m in self.modules for p in m.parameters()]
        self.freeze_epochs, self.factor = int(freeze_epochs), float(unfreeze_lr_factor)
        self.frozen = False
        self._bn_hooks: list = []

    def _set_frozen(self, frozen: bool) -> None:
        self.frozen = frozen
        for p in self.params:
            p.requires_grad_(not frozen)
        for h in self._bn_hooks:
            h.remove()
        self._bn_hooks = []
        if frozen:
            for m in self.modules:
                for bn in m.modules():
                    if isinstance(bn, nn.modules.batchnorm._BatchNorm):
                        # the Trainer calls model.train() every epoch: re-assert eval per forward
                        self._bn_hooks.append(bn.register_forward_pre_hook(_eval_mode))

    def on_fit_start(self, trainer) -> None:
        if trainer.epoch < self.freeze_epochs:  # a resumed run past the frozen phase stays unfrozen
            self._set_frozen(True)
            log.info("transfer: %d reused tensors frozen for %d epochs", len(self.params), self.freeze_epochs)
            if self.logger is not None:
                self.logger.scalars({"transfer/frozen": 1.0}, trainer.global_step)

    def on_epoch_end(self, trainer, logs: dict[str, float]) -> None:
        if self.frozen and trainer.epoch >= self.freeze_epochs:
            self._set_frozen(False)
            _seed_momentum(trainer.optim.optimizer, self.params)
            if self.factor != 1.0:
                sched = next((cb.scheduler for cb in trainer.callbacks if isinstance(cb, LRSchedulerCallback)), None)
                scale_lr(trainer.optim.optimizer, sched, self.factor)
            log.info("transfer: unfroze the reused layers after epoch %d (lr x %g)", trainer.epoch, self.factor)
            if self.logger is not None:
                self.logger.scalars({"transfer/frozen": 0.0}, trainer.global_step)

    def on_fit_end(self, trainer, result) -> None:
        if self.frozen:  # a run shorter than freeze_epochs: leave the model trainable
            self._set_frozen(False)


def _seed_momentum(optimizer: torch.optim.Optimizer, params: list[nn.Parameter]) -> None:
    """Give the unfrozen parameters a zero momentum buffer where their group's others have one.
    SGD's fused kernel refuses a mix of parameters with and without buffers; a zero buffer
    gives the same first step as none (buf = grad) for the default dampening 0."""
    if not isinstance(optimizer, torch.optim.SGD):
        return
    ids = {id(p) for p in params}
    for group in optimizer.param_groups:
        if not group.get("momentum"):
            continue
        has = [optimizer.state.get(p, {}).get("momentum_buffer") is not None for p in group["params"]]
        if any(has):
            for p, h in zip(group["params"], has):
                if id(p) in ids and not h:
                    optimizer.state[p]["momentum_buffer"] = torch.zeros_like(p, memory_format=torch.preserve_format)


def _eval_mode(module: nn.Module, _inputs: tuple) -> None:
    module.training = False


def scale_lr(optimizer: torch.optim.Optimizer, sched, factor: float) -> None:
    """Multiply the current and scheduled learning rates of every param group by factor."""
    for g in optimizer.param_groups:
        for k in _LR_KEYS:
            if isinstance(g.get(k), (int, float)):
                g[k] = g[k] * factor
    if sched is not None and hasattr(sched, "base_lrs"):
        sched.base_lrs = [lr * factor for lr in sched.base_lrs]
    for s in getattr(sched, "_schedulers", []):  # SequentialLR / ChainedScheduler children
        s.base_lrs = [lr * factor for lr in s.base_lrs]
