"""Run names that say what a sweep's job chose: `optimizer=adam,reg=[l2]` instead of Hydra's job
number, for the TensorBoard run (its event folder) and the HParams "Trial ID" (the same).

Only the overrides that vary across the sweep are named (those not typed verbatim for every
job: `reg=[]` out of `'reg=[],[l2]'`, or the keys an Optuna sweeper samples); keys that
select where or how to run (trainer.resume, paths.*, hydra.*) never are, so resuming a job with
trainer.resume=auto writes into the same folder."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

# Overrides that do not change what is trained.
NOT_NAMED = ("trainer.resume", "trainer.progress", "paths.", "hydra.", "hydra/")
MAX_LEN = 80


def override_key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def named_overrides(
    job: Sequence[str], sweep: Sequence[str] | None = None, swept_keys: Iterable[str] | None = None
) -> list[str]:
    """The job's overrides worth naming. `sweep`: the multirun's own overrides (Hydra's
    multirun.yaml): an override typed verbatim there is common to every job and dropped.
    `swept_keys`: keys known to vary (an Optuna sweeper's params): only those are kept."""
    kept = [o for o in job if "=" in o and override_key(o) and not override_key(o).startswith(NOT_NAMED)]
    if swept_keys is None and sweep is None:
        return kept
    keys = {k.lstrip("+~") for k in swept_keys or ()}
    fixed = None if sweep is None else {_canonical(s) for s in sweep} - {None}
    varying = [o for o in kept if override_key(o) in keys or (fixed is not None and _canonical(o) not in fixed)]
    return varying or kept


def _canonical(override: str) -> tuple | str | None:
    """An override as Hydra reads it, so that `viz.enabled=false` typed on the command line
    matches the `viz.enabled=False` Hydra writes in each job's overrides (and 0.10 matches
    0.1); None for a sweep (`a,b`, `range(...)`), which is not common to every job."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        (parsed,) = OverridesParser.create().parse_overrides([override.strip()])
    except Exception:  # not Hydra's grammar: compared as typed
        return override.strip()
    if parsed.is_sweep_override():
        return None
    return (parsed.type, parsed.key_or_group, parsed.package, parsed.get_value_element_as_str())


def _short_keys(keys: list[str]) -> list[str]:
    """`trainer.seed` -> `seed`, `reg.l2.strength` -> `l2.strength` where that stays unambiguous."""
    short = [k.split(".", 1)[1] if "." in k else k for k in keys]
    return [
        s if short.count(s) == 1 and s not in keys[:i] + keys[i + 1 :] else k
        for i, (k, s) in enumerate(zip(keys, short))
    ]


def run_name(overrides: Sequence[str], max_len: int = MAX_LEN) -> str:
    """A readable folder name from overrides: `optimizer=adam,reg=[l2]`; long names are cut
    and end in a short hash of the whole, so two jobs never share one."""
    if not overrides:
        return ""
    keys = [override_key(o) for o in overrides]
    values = [o.split("=", 1)[1].replace(" ", "").strip("'\"") for o in overrides]
    name = ",".join(f"{k}={v}" for k, v in zip(_short_keys(keys), values))
    name = name.replace("/", "_").replace("\\", "_").lstrip(".") or "run"
    if len(name) > max_len:
        digest = hashlib.sha1(name.encode()).hexdigest()[:6]
        name = f"{name[: max_len - 7]}~{digest}"
    return name
