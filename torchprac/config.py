"""Turning config nodes into objects. Group YAMLs carry a few keys of ours next to Hydra's
`_target_` (name, interval, ...); they are stripped before `hydra.utils.instantiate`."""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, OmegaConf

# Keys that describe a choice but are not constructor arguments.
META_KEYS = ("name", "interval", "monitor", "full_batch")


def to_dict(node: Any) -> dict:
    if node is None:
        return {}
    if isinstance(node, DictConfig):
        return OmegaConf.to_container(node, resolve=True)  # type: ignore[return-value]
    return dict(node)


def instantiate(node: Any) -> Any:
    """hydra.utils.instantiate without our meta keys. Group YAMLs set `_partial_: true`, so this
    returns a partial that the caller completes (optimizer(params=...), scheduler(optimizer))."""
    from hydra.utils import instantiate as _instantiate

    return _instantiate({k: v for k, v in to_dict(node).items() if k not in META_KEYS})


def reg_cfg(cfg: DictConfig) -> dict:
    """The selected regularizers as {name: params}; `reg=[]` gives {}."""
    return to_dict(cfg.get("reg"))
