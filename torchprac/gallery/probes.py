"""Per-layer statistics of one forward and backward pass on a batch: the activations' mean and
standard deviation (the output of each stage's activation module), and the standard deviation
of the loss gradient with respect to them and to the stage's weight matrix — what Glorot &
Bengio (2010) and He et al. (2015) draw layer by layer."""

from __future__ import annotations

import torch
from torch import nn

from torchprac.diagnose.health import find_layers


def layer_stats(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, list[float]]:
    """{"act_mean", "act_std", "act_grad_std", "weight_grad_std"}: one value per hidden stage
    (input to output; the head has no activation and is left out). Train-mode forward (batch
    norm uses the batch's statistics, as in a training step); the model's gradients are
    cleared afterwards."""
    layers = [lay for lay in find_layers(model) if lay.act is not None]
    outs: list[torch.Tensor] = []

    def keep(_m, _inp, out):
        out.retain_grad()
        outs.append(out)

    handles = [lay.act.register_forward_hook(keep) for lay in layers]
    was_training = model.training
    model.train()
    try:
        model.zero_grad(set_to_none=True)
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    stats = {
        "act_mean": [float(a.detach().mean()) for a in outs],
        "act_std": [float(a.detach().std()) for a in outs],
        "act_grad_std": [float(a.grad.std()) if a.grad is not None else 0.0 for a in outs],
        "weight_grad_std": [float(lay.weight.grad.std()) if lay.weight.grad is not None else 0.0 for lay in layers],
    }
    model.zero_grad(set_to_none=True)
    return stats


def probe_job(job, batch: int = 512) -> dict[str, dict[str, list[float]]]:
    """{"init": stats, "trained": stats} of a gallery job: its net as initialised (rebuilt from
    its config and seed) and as trained (checkpoints/last.pt; left out when the run wrote none,
    e.g. it diverged in its first epoch), on the same training batch."""
    from torchprac.gallery.sweep import job_model

    out = {}
    for when, trained in (("init", False), ("trained", True)):
        if trained and not (job / "checkpoints" / "last.pt").is_file():
            continue
        _, splits, model = job_model(job, trained=trained)
        x, y = splits.train.x[:batch], splits.train.y[:batch]
        out[when] = layer_stats(model, x, y)
    return out
