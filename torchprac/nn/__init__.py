"""Model stage: build an nn.Module from the model, activation, init and reg (dropout) groups."""

from __future__ import annotations

from torch import nn

from torchprac.config import instantiate, reg_cfg
from torchprac.nn.dropout import InvertedDropout
from torchprac.nn.init import apply_init
from torchprac.nn.models import build_cnn, build_mlp

__all__ = ["build_model", "InvertedDropout", "apply_init", "dropout_keep_probs"]


def dropout_keep_probs(reg: dict, n_hidden: int) -> tuple[list[float] | None, float, bool]:
    """(per-hidden-layer keep_probs, input_keep_prob, alpha?) from the reg group."""
    if "dropout" in reg:
        d, alpha = reg["dropout"], False
    elif "alpha_dropout" in reg:
        d, alpha = reg["alpha_dropout"], True
    else:
        return None, 1.0, False
    kp = d.get("keep_prob", 1.0)
    kps = [float(v) for v in kp] if isinstance(kp, (list, tuple)) else [float(kp)] * n_hidden
    return kps, float(d.get("input_keep_prob", 1.0)), alpha


def build_model(cfg, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """cfg is the whole run config."""
    m = cfg.model
    act = instantiate(cfg.activation)  # a partial: one fresh nn.Module per layer
    hidden = list(m.hidden)
    kps, in_kp, alpha = dropout_keep_probs(reg_cfg(cfg), len(hidden))
    common = dict(
        input_shape=input_shape,
        num_classes=num_classes,
        hidden=hidden,
        activation=act,
        batch_norm=m.get("batch_norm", "none"),
        keep_probs=kps,
        input_keep_prob=in_kp,
        alpha_dropout=alpha,
    )
    if m.name == "mlp":
        model = build_mlp(**common)
    elif m.name == "cnn":
        model = build_cnn(channels=list(m.channels), kernel_size=int(m.kernel_size), **common)
    else:  # validated earlier; kept for direct callers
        raise ValueError(f"unknown model {m.name!r}")
    apply_init(model, instantiate(cfg.init))
    return model
