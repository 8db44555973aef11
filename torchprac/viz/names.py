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
    fixed = None if sweep is None else {s.strip() for s in sweep}
    varying = [o for o in kept if override_key(o) in keys or (fixed is not None and o.strip() not in fixed)]
    return varying or kept


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
