"""Transfer learning, the model side: reuse the lower layers of a trained torchprac model.
(The freeze/unfreeze schedule is the Trainer callback in train/transfer.py.)

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
from torchprac.files import load_checkpoint
from torchprac.utils import unwrap

log = logging.getLogger("torchprac")

_WRAPPER_PREFIXES = ("_orig_mod.", "module.")  # torch.compile / DDP state-dict prefixes


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


def stages(model: nn.Module) -> list[str]:
    """Names of the model's top-level stages that hold parameters, input to output."""
    return [n for n, c in unwrap(model).named_children() if any(True for _ in c.parameters())]


def load_pretrained(model: nn.Module, pretrained: str | Path, reuse_layers: int | None = None) -> list[str]:
    """Copy the first `reuse_layers` parameterised stages (default: all but the head) from the
    checkpoint into `model`, buffers (batch-norm statistics) included. Returns their names."""
    base = unwrap(model)
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
