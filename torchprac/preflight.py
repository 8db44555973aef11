"""Checks on the command line that must happen before Hydra starts, because Hydra either
reports them as a composition traceback or has already written into the run dir by the time
the run's own code is called:

- `reg=[l3]`: an unknown regularizer is named with the list of choices;
- `viz=false`, `optimizer=1`: a config group given a value that is not one of its configs' names;
- `activation._target_=x`, `init.std=0.1` with init=he_normal: a key the chosen option does
  not have is one paragraph naming the group, the key and the keys it has;
- a run dir that holds a finished or interrupted run is refused unless the user resumes it
  (`trainer.resume=auto`, which also re-applies the run's own overrides from its
  .hydra/overrides.yaml so they need not be retyped) or overwrites it (`trainer.overwrite=true`).
Each failure prints one paragraph and exits 2, as every other bad input does."""

from __future__ import annotations

import re
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

MULTIRUN_FLAGS = ("-m", "--multirun")
# conf/hydra/launcher/joblib.yaml takes the joblib plugin's schema name on purpose (the merge
# supplies joblib's keys); Hydra's note that this matching is deprecated is not the user's concern.
SCHEMA_NOTE = r"(?s).*'hydra/launcher/joblib' is validated against ConfigStore schema with the same name"


def fail(msg: str) -> None:
    print(f"error: {msg}", file=sys.stderr)
    sys.exit(2)


def _value(args: list[str], key: str) -> str | None:
    found = None
    for a in args:
        if a.startswith(key + "="):
            found = a.split("=", 1)[1]
    return found


def check_reg(args: list[str], conf_dir: Path) -> None:
    choices = sorted(p.stem for p in (conf_dir / "reg").glob("*.yaml"))
    for a in args:
        if not re.match(r"^\+?reg=", a):
            continue
        for name in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", a.split("=", 1)[1]):
            if name not in choices:
                fail(
                    f"Invalid config: reg contains {name!r}. Allowed: regularizers "
                    + ", ".join(choices)
                    + " (a list, e.g. reg=[l2,dropout] or reg=[])."
                )


def check_launcher(args: list[str]) -> None:
    """`hydra.launcher.*` of torchprac's launcher (hydra/launcher=joblib|process_pool): Hydra
    would report a bad value only when it instantiates the launcher, as its own multi-line error."""
    if _value(args, "hydra/launcher") not in ("joblib", "process_pool"):
        return
    import yaml

    from hydra_plugins.torchprac_launcher.process_pool import option_problem

    for a in args:
        m = re.match(r"^\+?hydra\.launcher\.(\w+)=(.*)$", a)
        if m:
            try:
                value = yaml.safe_load(m.group(2))  # as Hydra reads an override value: 2, 2.5, null, text
            except yaml.YAMLError:
                value = m.group(2)
            problem = option_problem(m.group(1), value)
            if problem:
                fail(f"Invalid config: {problem}")


def check_groups(args: list[str], conf_dir: Path) -> None:
    """`viz=false`, `optimizer=1`, `trainer=null`: a config group takes the name of one of its
    configs; Hydra would stop on any other value with a traceback ("Config group override must be
    a string or a list")."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import ChoiceSweep

    parser = OverridesParser.create()
    for a in args:
        if a.startswith("-") or "=" not in a:
            continue
        key = a.split("=", 1)[0].lstrip("+~")
        group = conf_dir / key
        if not group.is_dir() or key.startswith("hydra/"):  # Hydra's groups hold configs of plugins too
            continue
        try:
            value = parser.parse_override(a).value()
        except Exception:  # a syntax error: Hydra's own one-line report names it
            continue
        for v in value.list if isinstance(value, ChoiceSweep) else [value]:
            if not isinstance(v, (str, list)):
                names = ", ".join(sorted(f.stem for f in group.glob("*.yaml")))
                hint = " (viz.enabled=false draws no pictures)" if key == "viz" else ""
                fail(
                    f"Invalid config: {key}={v!r}. Allowed: the name of one of its configs: {names} "
                    f"({key} is a config group, conf/{key}/). A key inside it is set as {key}.<key>=value{hint}."
                )


def unknown_key(err: str, args: list[str], compose: Callable[[list[str]], Any]) -> str | None:
    """Our paragraph for Hydra's "Could not override 'a.b'... Key 'b' is not in struct" (`err`:
    the composition error and its cause), for a run's overrides `args`; None for other errors.
    `compose(overrides)` composes the config with the Hydra config (here: `_compose`; in a
    sweep, hydra_plugins/torchprac_launcher/sweeper.py passes the running Hydra's loader)."""
    m = re.search(r"Could not override '([\w.]+)'", err)
    if not m or "not in struct" not in err:
        return None
    dotted = m.group(1)
    group, _, key = dotted.partition(".")
    from torchprac import registry

    registry.load()
    name = None
    try:  # the group's choice as composed without the offending override (presets included)
        rest = [a for a in args if not a.startswith(dotted + "=")]
        cfg = compose(rest)
        # a group whose configs have no `name` (trainer, viz, ...): the config file chosen
        name = cfg[group].get("name") or cfg.hydra.runtime.choices.get(group)
    except Exception:
        name = _value(args, group)
    known = ""
    if group in registry.REGISTRY:
        choice = registry.REGISTRY[group].get(str(name))
        if choice is not None:
            known = f"the keys of {group}={name}: " + (", ".join(sorted(choice.params)) or "none")
    value = _value(args, dotted)
    return (
        f"Invalid config: {dotted}={value!r}. Allowed: {known or 'the keys this config node has'}. "
        f"{group}={name} has no key {key!r}."
    )


def _compose(args: list[str], conf_dir: Path):
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(conf_dir), version_base="1.3"):
        return compose(config_name="config", overrides=args, return_hydra_config=True)


def _saved_overrides(run_dir: Path, typed: list[str]) -> list[str]:
    """The run's own overrides (its .hydra/overrides.yaml) that the user did not type again."""
    import yaml

    f = run_dir / ".hydra" / "overrides.yaml"
    if not f.is_file():
        return []
    typed_keys = {a.split("=", 1)[0].lstrip("+~") for a in typed}
    saved = yaml.safe_load(f.read_text()) or []
    return [o for o in saved if o.split("=", 1)[0].lstrip("+~") not in typed_keys]


def check(args: list[str], conf_dir: Path) -> list[str]:
    """The arguments Hydra should run with (resume adds the run's saved overrides); exits 2 on
    bad input. Multiruns only get the cheap checks: each job is checked by its own run."""
    warnings.filterwarnings("ignore", message=SCHEMA_NOTE)
    check_reg(args, conf_dir)
    check_groups(args, conf_dir)
    check_launcher(args)
    if any(a in MULTIRUN_FLAGS for a in args) or any(a.startswith("-") for a in args):
        return args  # --help, --cfg, -m ...: Hydra's own business
    from hydra.errors import ConfigCompositionException, MissingConfigException

    try:
        cfg = _compose(args, conf_dir)
    except ConfigCompositionException as e:
        msg = unknown_key(str(e) + " " + str(e.__cause__ or ""), args, lambda a: _compose(a, conf_dir))
        if msg:
            fail(msg)
        return args  # Hydra reports it (it lists the choices of a group)
    except MissingConfigException:
        return args
    except Exception:  # anything else: Hydra's own report is the right one
        return args
    resume = str(cfg.trainer.get("resume")) == "auto"
    overwrite = bool(cfg.trainer.get("overwrite", False))
    run_dir = Path(str(cfg.hydra.run.dir))
    typed_run_dir = _value(args, "paths.run_dir")
    target = Path(typed_run_dir) if typed_run_dir else run_dir
    if resume:
        extra = _saved_overrides(target, args)
        if extra:
            print(f"resume: re-applying the run's own overrides {extra}", file=sys.stderr)
        return extra + args
    finished = (target / "metrics.json").is_file()
    started = (target / "checkpoints").is_dir() or any(target.glob("events.out.tfevents.*"))
    if (finished or started) and not overwrite:
        what = "a finished run (metrics.json)" if finished else "an interrupted run (checkpoints, no metrics.json)"
        fail(
            f"The run dir {target} already holds {what}; refusing to overwrite it. Continue it with "
            f"`python train.py trainer.resume=auto hydra.run.dir={target}`, replace it with trainer.overwrite=true, "
            "or choose another hydra.run.dir."
        )
    return args
