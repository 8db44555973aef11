"""Transfer learning: reuse the lower layers of a trained torchprac model, with a new head.

`model.pretrained=<run dir or checkpoint>` copies the weights of every parameterised stage but
the head (or the first `transfer.reuse_layers` of them) from the checkpoint into the freshly
built model, whose head (and any later stage) keeps its new initialisation and the new class
count. `TransferCallback` freezes the reused stages for `transfer.freeze_epochs` epochs, so
the new head first learns on top of fixed features without its large initial gradients
wrecking them, then unfreezes them, optionally lowering the learning rate by
`transfer.unfreeze_lr_factor` for the fine-tuning phase.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import nn

from torchprac.errors import CheckpointError, ConfigError
from torchprac.train.callbacks import Callback
from torchprac.train.checkpoint import load_checkpoint

log = logging.getLogger("torchprac")

_WRAPPER_PREFIXES = ("_orig_mod.", "module.")  # torch.compile / DDP state-dict prefixes
# LR-like keys a scheduler keeps in a param group; scaled together with lr at unfreezing.
_LR_KEYS = ("lr", "initial_lr", "max_lr", "min_lr")


def resolve_checkpoint(path: str | Path) -> Path:
    """A checkpoint file, or a run dir: its checkpoints/best.pt, else checkpoints/last.pt."""
    p = Path(path).expanduser()
    if p.is_file():
        return p
    if p.is_dir():
        for cand in (p / "checkpoints" / "best.pt", p / "checkpoints" / "last.pt", p / "best.pt", p / "last.pt"):
            if cand.is_file():
                return cand
        raise CheckpointError(
            f"model.pretrained={str(path)!r} is a directory without a checkpoint (looked for "
            "checkpoints/best.pt, checkpoints/last.pt, best.pt, last.pt). Point it to the run dir of a "
            "finished run trained with trainer.checkpoint.enabled=true, or to a .pt file."
        )
    raise CheckpointError(
        f"model.pretrained={str(path)!r} does not exist (neither a checkpoint file nor a run dir). "
        "Train the source model first, e.g. `python train.py experiment=transfer_a`, and pass its run dir."
    )


def _strip(key: str) -> str:
    for prefix in _WRAPPER_PREFIXES:
        while key.startswith(prefix):
            key = key[len(prefix) :]
    return key


def _base(model: nn.Module) -> nn.Module:
    for attr in ("_orig_mod", "module"):
        while isinstance(getattr(model, attr, None), nn.Module):
            model = getattr(model, attr)
    return model


def stages(model: nn.Module) -> list[str]:
    """Names of the model's top-level stages that hold parameters, input to output."""
    return [n for n, c in _base(model).named_children() if any(True for _ in c.parameters())]


def load_pretrained(model: nn.Module, pretrained: str | Path, reuse_layers: int | None = None) -> list[str]:
    """Copy the first `reuse_layers` parameterised stages (default: all but the head) from the
    checkpoint into `model`, buffers (batch-norm statistics) included. Returns their names."""
    base = _base(model)
    names = stages(base)
    if names and names[-1] != "head":
        raise ConfigError(
            "model.pretrained", str(pretrained), "a model whose last stage is named 'head' (the models of conf/model/)"
        )
    candidates = names[:-1]
    n = len(candidates) if reuse_layers is None else int(reuse_layers)
    if not 1 <= n <= len(candidates):
        raise ConfigError(
            "transfer.reuse_layers",
            reuse_layers,
            f"null (all but the head) or an integer in [1, {len(candidates)}]: this model's "
            f"stages below the head are {candidates}",
        )
    reused = candidates[:n]
    path = resolve_checkpoint(pretrained)
    ckpt = load_checkpoint(path)  # torch.load(weights_only=True); CheckpointError on any failure
    src = {_strip(k): v for k, v in ckpt["model"].items()}
    own = base.state_dict()
    picked: dict[str, torch.Tensor] = {}
    where = f"checkpoint {path}"
    if "input_shape" in ckpt:
        where += f" (trained on input shape {tuple(ckpt['input_shape'])}, {ckpt.get('num_classes')} classes)"
    for key, t in own.items():
        if key.split(".", 1)[0] not in reused:
            continue
        if key not in src:
            have = sorted({k.split(".", 1)[0] for k in src})
            raise CheckpointError(
                f"Cannot reuse layer '{key.split('.', 1)[0]}': {where} has no '{key}' (its stages: {have}). "
                "The pretrained run must use the same model type, number of hidden layers and batch-norm "
                "placement; or lower transfer.reuse_layers."
            )
        if tuple(src[key].shape) != tuple(t.shape):
            raise CheckpointError(
                f"Cannot reuse '{key}': it has shape {tuple(src[key].shape)} in {where} but "
                f"{tuple(t.shape)} in this model. Use the pretrained run's model.hidden (and channels) and an "
                "input of the same shape, or lower transfer.reuse_layers."
            )
        picked[key] = src[key]
    base.load_state_dict(picked, strict=False)
    log.info(
        "transfer: reused %s from %s; new %s for %d outputs",
        reused,
        path,
        [s for s in names if s not in reused],
        base.get_submodule("head").out_features if isinstance(base.get_submodule("head"), nn.Linear) else -1,
    )
    return reused


class TransferCallback(Callback):
    """Freezes the reused stages for the first `freeze_epochs` epochs, then unfreezes them and
    multiplies every learning rate (and the scheduler's base lrs) by `unfreeze_lr_factor`.

    Frozen means requires_grad=False (no gradient, so neither the optimizer, its momentum nor
    weight decay touches them) and their batch-norm layers in eval mode (running statistics
    frozen too, as Keras does for trainable=False)."""

    def __init__(
        self, model: nn.Module, reused: list[str], freeze_epochs: int = 0, unfreeze_lr_factor: float = 1.0
    ) -> None:
        base = _base(model)
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
            if trainer.logger is not None:
                trainer.logger.scalars({"transfer/frozen": 1.0}, trainer.global_step)

    def on_epoch_end(self, trainer, logs: dict[str, float]) -> None:
        if self.frozen and trainer.epoch >= self.freeze_epochs:
            self._set_frozen(False)
            _seed_momentum(trainer.optim.optimizer, self.params)
            if self.factor != 1.0:
                scale_lr(trainer.optim, self.factor)
            log.info("transfer: unfroze the reused layers after epoch %d (lr x %g)", trainer.epoch, self.factor)
            if trainer.logger is not None:
                trainer.logger.scalars({"transfer/frozen": 0.0}, trainer.global_step)

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


def scale_lr(optim, factor: float) -> None:
    """Multiply the current and scheduled learning rates of every param group by factor."""
    for g in optim.optimizer.param_groups:
        for k in _LR_KEYS:
            if isinstance(g.get(k), (int, float)):
                g[k] = g[k] * factor
    sched = optim.scheduler
    if sched is not None and hasattr(sched, "base_lrs"):
        sched.base_lrs = [lr * factor for lr in sched.base_lrs]
    for s in getattr(sched, "_schedulers", []):  # SequentialLR / ChainedScheduler children
        s.base_lrs = [lr * factor for lr in s.base_lrs]


def build_transfer(cfg, model: nn.Module) -> TransferCallback | None:
    """The transfer stage of a run: load the reused layers when model.pretrained is set and
    return the freeze/unfreeze callback (None when nothing is pretrained)."""
    pretrained = cfg.model.get("pretrained")
    if not pretrained:
        return None
    tcfg = cfg.get("transfer") or {}
    reused = load_pretrained(model, str(pretrained), tcfg.get("reuse_layers"))
    return TransferCallback(
        model, reused, int(tcfg.get("freeze_epochs", 0) or 0), float(tcfg.get("unfreeze_lr_factor", 1.0))
    )
