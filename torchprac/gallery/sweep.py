"""Reading a finished gallery sweep: its runs (metrics.json, history.json, overrides, by the
sweep report's own loader), their spread over seeds, and — for the entries that look inside a
net — the model a job trained, rebuilt from its resolved config through the package's stages."""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torchprac.report.html import Run, load_runs

SWEEPS = Path("multirun/gallery")  # presets write to multirun/gallery/<entry>/<date_time>/


def latest(entry: str, base: Path = SWEEPS) -> Path | None:
    """The newest sweep dir of an entry (names are sortable timestamps), or None."""
    folder = base / entry
    dirs = sorted(p for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []
    return dirs[-1] if dirs else None


def runs(root: Path) -> list[Run]:
    return load_runs(Path(root))


@dataclass(frozen=True)
class Spread:
    """Several seeds of one measurement: mean, standard deviation, min, max, count."""

    mean: float
    std: float
    lo: float
    hi: float
    n: int

    @classmethod
    def of(cls, values: Iterable[float | None]) -> Spread:
        xs = [float(v) for v in values if v is not None and math.isfinite(float(v))]
        if not xs:
            return cls(math.nan, math.nan, math.nan, math.nan, 0)
        return cls(statistics.fmean(xs), statistics.stdev(xs) if len(xs) > 1 else 0.0, min(xs), max(xs), len(xs))

    def text(self, digits: int = 3) -> str:
        if not self.n:
            return "n/a"
        if self.n == 1:
            return f"{self.mean:.{digits}f}"
        d = digits
        return f"{self.mean:.{d}f} ± {self.std:.{d}f} ({self.lo:.{d}f}–{self.hi:.{d}f}, {self.n} seeds)"

    def to_dict(self) -> dict[str, float]:
        return {"mean": self.mean, "std": self.std, "min": self.lo, "max": self.hi, "n": self.n}


def setting(run: Run, key: str, default: str | None = None) -> str | None:
    v = run.setting(key)
    return default if v is None else v


def group(items: list[Run], key: Callable[[Run], Any]) -> dict[Any, list[Run]]:
    """Runs by `key(run)`, in first-seen order."""
    out: dict[Any, list[Run]] = {}
    for r in items:
        out.setdefault(key(r), []).append(r)
    return out


def metric(run: Run, split: str, name: str) -> float | None:
    v = ((run.metrics.get("metrics") or {}).get(split) or {}).get(name)
    return float(v) if isinstance(v, (int, float)) and math.isfinite(v) else None


def series(run: Run, key: str) -> tuple[list[int], list[float]]:
    """(epochs, values) of a history key, finite values only."""
    ep, val = [], []
    for i, h in enumerate(run.history):
        v = h.get(key)
        if isinstance(v, (int, float)) and math.isfinite(v):
            ep.append(int(h.get("epoch", i + 1)))
            val.append(float(v))
    return ep, val


def first_below(epochs: list[int], values: list[float], target: float) -> int | None:
    """The first epoch whose value is at or below target (None: never)."""
    return next((e for e, v in zip(epochs, values) if v <= target), None)


def job_dir(root: Path, run: Run) -> Path:
    return Path(root) / run.job


def job_config(job: Path):
    """The job's RunConfig, rebuilt from its resolved .hydra/config.yaml."""
    from omegaconf import OmegaConf

    from torchprac.config import RunConfig

    cfg = OmegaConf.load(job / ".hydra" / "config.yaml")
    cfg.paths.run_dir = str(job)  # ${hydra:runtime.output_dir} resolves only inside Hydra
    return RunConfig.from_cfg(cfg, user_keys=set())


def job_model(job: Path, trained: bool, seed_offset: int = 0):
    """(RunConfig, splits, model) of a job on the CPU: the data split as the run split it and the
    model with its initial weights drawn the way the run drew them (trained=False: seeded as
    run() seeds, a fresh draw of the same distribution when seed_offset != 0), or the weights
    of its checkpoints/last.pt (trained=True)."""
    import torch

    from torchprac.data import build_data
    from torchprac.files import load_checkpoint
    from torchprac.run import build_model, seed_everything

    rc = job_config(job)
    cpu = torch.device("cpu")
    seed_everything(rc.trainer.seed + seed_offset)
    splits = build_data(rc.data, seed=rc.trainer.seed, device=cpu)
    model = build_model(rc, splits.input_shape, splits.num_classes, cpu)
    if trained:
        state = load_checkpoint(job / "checkpoints" / "last.pt")
        model.load_state_dict(state["model"])
    return rc, splits, model
