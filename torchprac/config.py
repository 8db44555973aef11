"""The one module that reads the Hydra config. `RunConfig.from_cfg(cfg)` checks every group
against the schema its choice registered (torchprac/registry.py) and returns plain objects;
nothing below this module sees a DictConfig, so every builder is usable from Python:

    from torchprac import registry
    model = registry.build("model", {"name": "mlp", "hidden": [64]}).make((1, 8, 8), 10)
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from torchprac import registry
from torchprac.errors import ConfigError
from torchprac.registry import one_of

log = logging.getLogger("torchprac")

MODES = ("train", "gradcheck", "lr_find", "predict", "evaluate")
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
    lr_find: Any = None  # tune.lr_find.LRFindSettings
    viz: Any = None  # viz.settings.VizSettings (None: no pictures)

    @classmethod
    def from_cfg(cls, cfg: DictConfig, user_keys: set[str] | None = None) -> RunConfig:
        """`user_keys`: the dotted keys the user typed. A key a choice does not know is refused
        when the user typed it (or when unknown); one that a preset (experiment=...) set for
        another choice of the group is dropped with a warning instead of crashing the run."""
        typed = _typed_overrides()
        if user_keys is None and typed is not None:
            user_keys = {o.split("=", 1)[0].lstrip("+~") for o in typed}
        cfg = _outside_hydra(cfg)
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
        reg_node = _drop_leaked_reg(reg_node, typed)
        reg = Regularizers.from_config(reg_node)
        trainer = registry.get("trainer", "default").build(_section(raw, "trainer"))
        transfer = registry.get("transfer", "default").build(
            {**_section(raw, "transfer"), "pretrained": (raw.get("model") or {}).get("pretrained")}
        )
        transfer.check(trainer.epochs)
        diagnosis = registry.get("diagnosis", "default").build(_section(raw, "diagnosis"))
        mode = one_of(*MODES).check("mode", raw.get("mode", "train"))
        lr_find = registry.get("lr_find", "default").build(_section(raw, "lr_find"))
        if mode == "lr_find" or trainer.lr_find:
            lr_find.check_optimizer(built["optimizer"].name, built["optimizer"].full_batch)
        drop = reg.dropout
        if drop is not None:  # a per-layer list must match the hidden layers
            drop.keep_probs(len(built["model"].hidden), f"reg.{'alpha_dropout' if drop.alpha else 'dropout'}.keep_prob")
        run_dir = _run_dir(cfg)
        viz = registry.get("viz", "default").build(_section(raw, "viz"))
        viz.run_name, viz.in_sweep, viz.in_basic_sweep = _sweep_run_name()
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
            lr_find=lr_find,
            viz=viz,
        )


def _outside_hydra(cfg: DictConfig) -> DictConfig:
    """A config composed outside a Hydra app (tests, notebooks) cannot resolve
    ${hydra:runtime.output_dir}: its run dir is then unset (the caller passes one)."""
    try:
        OmegaConf.select(cfg, "paths.run_dir", throw_on_resolution_failure=True)
        return cfg
    except Exception:
        from omegaconf import open_dict

        cfg = cfg.copy()
        with open_dict(cfg):
            cfg.paths.run_dir = None
        return cfg


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


def _typed_overrides() -> list[str] | None:
    """The overrides typed on the command line (None outside a Hydra app, where every key
    counts as typed: nothing is dropped)."""
    try:
        from hydra.core.hydra_config import HydraConfig

        return list(HydraConfig.get().overrides.task)
    except Exception:
        return None


def _drop_leaked_reg(node: dict, typed: list[str] | None) -> dict:
    """With `reg=[a,b]` typed, regularizers outside that list come from a preset that set
    their keys (e.g. reg.alpha_dropout.keep_prob): they were not chosen, so they are dropped."""
    chosen = next((o.split("=", 1)[1] for o in typed or [] if o.startswith("reg=")), None)
    if chosen is None:
        return node
    names = {n.strip() for n in chosen.strip("[]").split(",") if n.strip()}
    for name in [n for n in node if n not in names and f"reg.{n}" not in " ".join(typed or [])]:
        log.warning("reg=%s does not include %r: the settings a preset gave it are ignored", chosen, name)
        node = {k: v for k, v in node.items() if k != name}
    return node


BASIC_LAUNCHER = "hydra._internal.core_plugins.basic_launcher.BasicLauncher"


def _sweep_run_name() -> tuple[str | None, bool, bool]:
    """(TensorBoard run name, in a multirun, on Hydra's basic launcher): in a multirun, the
    job's overrides that vary across the sweep (viz/names.py), and whether the jobs run one
    after another in this process; (None, False, False) in a single run or outside Hydra."""
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        hc = HydraConfig.get()
        if hc.mode != RunMode.MULTIRUN:
            return None, False, False
        basic = OmegaConf.select(hc, "launcher._target_", default=None) == BASIC_LAUNCHER
        job = list(hc.overrides.task)
        params = OmegaConf.select(hc, "sweeper.params", default=None)
        multirun = Path(str(hc.sweep.dir)) / "multirun.yaml"  # Hydra's basic sweeper writes it
    except Exception:
        return None, False, False
    from torchprac.viz.names import named_overrides, run_name

    sweep = list(_sweep_overrides(str(multirun), _stamp(multirun))) if multirun.is_file() else None
    keys = list(params) if params else None  # Optuna: the keys it samples
    return run_name(named_overrides(job, sweep, keys)) or None, True, basic


def _stamp(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_mtime_ns, st.st_size


@functools.lru_cache(maxsize=8)
def _sweep_overrides(path: str, stamp: tuple[int, int]) -> tuple[str, ...]:
    """The sweep's own overrides from its multirun.yaml, read once per sweep (the file holds the
    whole config: ~40 ms to parse for each job of a basic sweep otherwise). `stamp` (mtime,
    size) makes a rewritten file read again."""
    return tuple(OmegaConf.select(OmegaConf.load(path), "hydra.overrides.task", default=[]) or [])


def _run_dir(cfg: DictConfig) -> Path | None:
    try:
        value = OmegaConf.select(cfg, "paths.run_dir", default=None)
    except Exception:  # ${hydra:...} outside a Hydra app: the caller sets it
        return None
    return None if value is None else Path(str(value)).expanduser()
