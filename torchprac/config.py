"""The one module that reads the Hydra config. `RunConfig.from_cfg(cfg)` checks every group
against the schema its choice registered (torchprac/registry.py) and returns plain objects;
nothing below this module sees a DictConfig, so every builder is usable from Python:

    from torchprac import registry
    model = registry.build("model", {"name": "mlp", "hidden": [64]}).make((1, 8, 8), 10)
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from torchprac import registry
from torchprac.errors import ConfigError
from torchprac.registry import one_of

log = logging.getLogger("torchprac")

MODES = ("train", "gradcheck")
GROUPS = ("data", "model", "init", "activation", "optimizer", "scheduler", "clip")
# Keys of a group node that another stage reads (model.pretrained: transfer learning).
_SIDE_KEYS = {"model": ("pretrained",)}


def to_plain(node: Any) -> Any:
    if isinstance(node, (DictConfig, ListConfig)):
        return OmegaConf.to_container(node, resolve=True)
    return node


@dataclass
class RunConfig:
    """Everything a run needs, checked and built from the config tree."""

    mode: str
    data: Any  # data.DataSpec
    model: Any  # nn.ModelSpec
    activation: Any  # factory of nn.Module
    init: Any  # fn(weight)
    reg: Any  # reg.Regularizers
    optimizer: Any  # optim.OptimizerSpec
    schedule: Any  # optim.schedules.Schedule
    clip: Any  # optim.clip.ClipSpec
    trainer: Any  # train.settings.TrainerSettings
    transfer: Any  # train.transfer.TransferSettings
    diagnosis: Any  # diagnose.bias_variance.Thresholds
    run_dir: Path | None
    choices: dict[str, str] = field(default_factory=dict)  # group -> chosen name
    yaml: str = ""  # the resolved config, for TensorBoard and checkpoints
    raw: dict = field(default_factory=dict)  # the resolved config as plain containers

    @classmethod
    def from_cfg(cls, cfg: DictConfig, user_keys: set[str] | None = None) -> RunConfig:
        """`user_keys`: the dotted keys the user typed. A key a choice does not know is refused
        when the user typed it (or when unknown); one that a preset (experiment=...) set for
        another choice of the group is dropped with a warning instead of crashing the run."""
        if user_keys is None:
            user_keys = _typed_keys()
        raw = to_plain(cfg)
        registry.load()

        built: dict[str, Any] = {}
        choices: dict[str, str] = {}
        for group in GROUPS:
            node = dict(raw.get(group) or {})
            for k in _SIDE_KEYS.get(group, ()):
                node.pop(k, None)
            choice = registry.get(group, node.get("name"), f"{group}.name")
            _drop_leaked(choice, node, group, user_keys)
            built[group] = choice.build(node)
            choices[group] = str(node.get("name"))
        from torchprac.reg import Regularizers

        reg_node = raw.get("reg") or {}
        if not isinstance(reg_node, dict):
            raise ConfigError("reg", reg_node, "a list of choices, e.g. reg=[l2,dropout] or reg=[]")
        reg = Regularizers.from_config(reg_node)
        trainer = registry.get("trainer", "default").build(_section(raw, "trainer"))
        transfer = registry.get("transfer", "default").build(
            {**_section(raw, "transfer"), "pretrained": (raw.get("model") or {}).get("pretrained")}
        )
        transfer.check(trainer.epochs)
        diagnosis = registry.get("diagnosis", "default").build(_section(raw, "diagnosis"))
        mode = one_of(*MODES).check("mode", raw.get("mode", "train"))
        drop = reg.dropout
        if drop is not None:  # a per-layer list must match the hidden layers
            drop.keep_probs(len(built["model"].hidden), f"reg.{'alpha_dropout' if drop.alpha else 'dropout'}.keep_prob")
        run_dir = _run_dir(cfg)
        return cls(
            mode=mode,
            data=built["data"],
            model=built["model"],
            activation=built["activation"],
            init=built["init"],
            reg=reg,
            optimizer=built["optimizer"],
            schedule=built["scheduler"],
            clip=built["clip"],
            trainer=trainer,
            transfer=transfer,
            diagnosis=diagnosis,
            run_dir=run_dir,
            choices=choices,
            yaml=OmegaConf.to_yaml(cfg, resolve=True),
            raw=raw,
        )


def _section(raw: dict, key: str) -> dict:
    node = raw.get(key)
    if node is None:
        return {}
    if not isinstance(node, dict):
        raise ConfigError(key, node, "a mapping of its keys")
    return dict(node)


def _drop_leaked(choice: registry.Choice, node: dict, group: str, user_keys: set[str]) -> None:
    for key in [k for k in node if k != "name" and k not in choice.params]:
        dotted = f"{group}.{key}"
        if user_keys is not None and not any(u == dotted or u.startswith(dotted + ".") for u in user_keys):
            log.warning(
                "%s=%s has no key %r: the value %r set by a preset does not apply and is ignored",
                group,
                choice.name,
                key,
                node[key],
            )
            del node[key]


def _typed_keys() -> set[str] | None:
    """The keys of the overrides typed on the command line (None outside a Hydra app, where
    every key counts as typed: nothing is dropped)."""
    try:
        from hydra.core.hydra_config import HydraConfig

        task = HydraConfig.get().overrides.task
    except Exception:
        return None
    keys = set()
    for o in task:
        k = o.split("=", 1)[0].lstrip("+~")
        keys.add(k)
    return keys


def _run_dir(cfg: DictConfig) -> Path | None:
    try:
        value = OmegaConf.select(cfg, "paths.run_dir", default=None)
    except Exception:  # ${hydra:...} outside a Hydra app: the caller sets it
        return None
    return None if value is None else Path(str(value)).expanduser()
