"""Hydra's basic sweeper, composing each job's config once instead of twice, and a sweep's
jobs that differ only in values from one composition.

Hydra's BasicSweeper composes every job's config before it launches a batch (so that a sweep
with one bad value fails before any job runs), then the launcher composes each config again
to run it. With this project's config tree a composition takes ~0.2 s: for a sweep of short
jobs that is a quarter of the time spent outside training. This subclass keeps the check and
hands the configs it composed to the launcher (Hydra's basic launcher, or torchprac's
process pool), which would otherwise compose the same overrides against the same primary
config again.

Most sweeps change values, not configs: `trainer.seed=0,1,2`, `optimizer.lr=0.1,0.01` beside a
fixed `optimizer=adam`. Such jobs share their defaults list and composed config; only the values
their overrides set differ. So the first job of each distinct set of config choices is composed
by Hydra, and the others are derived from it: a copy, Hydra's own `_apply_overrides_to_config`
for the value overrides, and the job's own `hydra.overrides.task` and
`hydra.job.override_dirname`. Anything else (a changed config choice, `+key`, `~key`, a dict or
list value, a hydra.* override) is composed by Hydra. A derived config equals Hydra's
(tests/unit/test_sweeper.py compares them); a composition takes ~0.2 s, a copy ~0.02 s.

It is registered under Hydra's own name, `hydra/sweeper=basic` (the default sweeper): this
module imports Hydra's, so its ConfigStore entry replaces Hydra's when Hydra scans the
plugins, before any config is composed. Other sweepers (Optuna) are untouched.
"""

# No `from __future__ import annotations`: Hydra scans this module with a loader under which
# a dataclass cannot resolve string annotations.
import copy
from collections import defaultdict, deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hydra._internal.config_loader_impl import ConfigLoaderImpl, get_overrides_dirname
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper as HydraBasicSweeper
from hydra._internal.core_plugins.basic_sweeper import BasicSweeperConf
from hydra.core.config_loader import ConfigLoader
from hydra.core.config_store import ConfigStore
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override, OverrideType
from hydra.errors import ConfigCompositionException
from hydra.types import HydraContext, RunMode
from omegaconf import DictConfig, OmegaConf, ValueNode


class ComposedOnce(ConfigLoader):
    """A config loader that answers load_sweep_config with a config composed ahead by `keep`
    (each kept config is handed out once, in order, for the same primary config and
    overrides) and passes everything else to Hydra's loader."""

    def __init__(self, loader: ConfigLoader) -> None:
        self.loader = loader
        self.kept: dict[tuple, deque] = defaultdict(deque)
        # (master config, shape) -> an untouched copy of the first config composed for that shape
        self.templates: dict[tuple, DictConfig] = {}
        self.parser = OverridesParser.create()
        self.derived = 0  # how many configs were derived instead of composed (for the tests)

    def keep(self, master_config: DictConfig, overrides: Sequence[str]) -> None:
        """Compose a job's config now (raising as Hydra would for a bad override) and keep it."""
        parsed = self.parser.parse_overrides(list(overrides))
        values = [o for o in parsed if self._is_value(o)]
        shape = self.shape(parsed, values)
        template = self.templates.get((id(master_config), shape)) if shape is not None else None
        if template is not None:
            cfg = self.derive(template, values, parsed)
            OmegaConf.copy_cache(from_config=master_config, to_config=cfg)  # as load_sweep_config
            self.derived += 1
        else:
            cfg = self.loader.load_sweep_config(master_config, list(overrides))
            if shape is not None and _are_leaves(cfg, values):
                self.templates[(id(master_config), shape)] = copy.deepcopy(cfg)
        self.kept[(id(master_config), tuple(overrides))].append(cfg)

    def shape(self, parsed: list[Override], values: list[Override]) -> tuple | None:
        """What two jobs must share for one's config to be derived from the other's: every
        override that is not one of the plain `values` (a config choice, +key, ~key, ...)
        verbatim, and the keys of the values, in order. None when a value's key is also set by
        another override (the order would then matter)."""
        is_value = {id(o) for o in values}
        shape = [("value", o.key_or_group) if id(o) in is_value else ("as is", o.input_line) for o in parsed]
        keys = [o.key_or_group for o in values]
        others = [o.key_or_group for o in parsed if id(o) not in is_value and not self._is_group(o)]
        if len(set(keys)) != len(keys):
            return None
        for k in keys:
            if any(k == g or k.startswith(g + ".") or g.startswith(k + ".") for g in others):
                return None
        return tuple(shape)

    def _is_value(self, o: Override) -> bool:
        return (
            o.type == OverrideType.CHANGE
            and o.package is None
            and not o.is_hydra_override()
            and not o.is_sweep_override()
            and "/" not in o.key_or_group
            and not self._is_group(o)
            and not isinstance(o.value(), (dict, list))
        )

    def _is_group(self, o: Override) -> bool:
        repo = getattr(self.loader, "repository", None)
        if repo is None:  # not Hydra's loader: treat every key as a possible config choice
            return True
        return repo.group_exists(o.key_or_group.replace(".", "/"))

    @staticmethod
    def derive(template: DictConfig, values: list[Override], parsed: list[Override]) -> DictConfig:
        """The config Hydra would compose for the overrides `parsed`, from the template of the
        same shape: its `values` (the value overrides) applied again, the rest is the same."""
        cfg = copy.deepcopy(template)
        ConfigLoaderImpl._apply_overrides_to_config(values, cfg)  # as Hydra applies them
        app = [o for o in parsed if not o.is_hydra_override()]
        cfg.hydra.overrides.task = [o.input_line for o in app]
        dirname = cfg.hydra.job.config.override_dirname
        cfg.hydra.job.override_dirname = get_overrides_dirname(
            overrides=app,
            kv_sep=dirname.kv_sep,
            item_sep=dirname.item_sep,
            exclude_keys=dirname.exclude_keys,
        )
        return cfg

    def load_sweep_config(self, master_config: DictConfig, sweep_overrides: list[str]) -> DictConfig:
        kept = self.kept.get((id(master_config), tuple(sweep_overrides)))
        if kept:
            return kept.popleft()
        return self.loader.load_sweep_config(master_config, sweep_overrides)

    def __getstate__(self) -> dict[str, Any]:
        # Sent to sweep workers with the HydraContext: the kept configs stay in this process.
        return {"loader": self.loader}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["loader"])

    # -- the rest of ConfigLoader, as Hydra's loader does it -----------------------------------
    def load_configuration(self, *args: Any, **kwargs: Any) -> DictConfig:
        return self.loader.load_configuration(*args, **kwargs)

    def get_search_path(self) -> Any:
        return self.loader.get_search_path()

    def get_sources(self) -> Any:
        return self.loader.get_sources()

    def list_groups(self, parent_name: str) -> list[str]:
        return self.loader.list_groups(parent_name)

    def get_group_options(self, *args: Any, **kwargs: Any) -> list[str]:
        return self.loader.get_group_options(*args, **kwargs)

    def compute_defaults_list(self, *args: Any, **kwargs: Any) -> Any:
        return self.loader.compute_defaults_list(*args, **kwargs)


def _are_leaves(cfg: DictConfig, values: list[Override]) -> bool:
    """Each value override landed on a single value in `cfg` (not a dict or list that a later
    job's value would be merged into)."""
    for o in values:
        try:
            node: Any = cfg
            for part in o.key_or_group.split("."):
                node = node._get_node(part)
        except Exception:
            return False
        if not isinstance(node, ValueNode):
            return False
    return True


def _refuse_unknown_key(
    e: ConfigCompositionException, overrides: Sequence[str], config: DictConfig, loader: ConfigLoader
) -> None:
    """A job setting a key its config does not have (`-m trainer.epoch=1,2`): the one paragraph a
    single run gives (torchprac.preflight.unknown_key), exit 2, before any job runs."""
    from torchprac import preflight

    def compose(args: list[str]) -> DictConfig:
        return loader.load_configuration(config.hydra.job.config_name, args, RunMode.RUN)

    msg = preflight.unknown_key(f"{e} {e.__cause__ or ''}", list(overrides), compose)
    if msg:
        preflight.fail(msg)


class BasicSweeper(HydraBasicSweeper):
    """Hydra's BasicSweeper (same keys: max_batch_size, params) whose launcher reuses the
    configs composed to validate each batch."""

    def setup(self, *, hydra_context: HydraContext, task_function: Any, config: DictConfig) -> None:
        self.composed = ComposedOnce(hydra_context.config_loader)
        context = HydraContext(config_loader=self.composed, callbacks=hydra_context.callbacks)
        super().setup(hydra_context=context, task_function=task_function, config=config)

    def validate_batch_is_legal(self, batch: Sequence[Sequence[str]]) -> None:
        for overrides in batch:
            try:
                self.composed.keep(self.config, overrides)
            except ConfigCompositionException as e:
                _refuse_unknown_key(e, overrides, self.config, self.composed.loader)
                raise  # anything else: Hydra's own report


@dataclass
class ComposeOnceSweeperConf(BasicSweeperConf):
    _target_: str = "hydra_plugins.torchprac_launcher.sweeper.BasicSweeper"


ConfigStore.instance().store(group="hydra/sweeper", name="basic", node=ComposeOnceSweeperConf, provider="torchprac")
