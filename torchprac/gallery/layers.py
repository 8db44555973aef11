"""Shared by the layer-by-layer entries (init_depth, selu): probe every job of a sweep and
draw per-layer statistics as curves over depth, one colour per configuration."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from torchprac.gallery import plots
from torchprac.gallery.probes import probe_job
from torchprac.gallery.sweep import job_dir, metric, runs, setting


def probe_sweep(root: Path, config_key) -> dict[str, list[dict]]:
    """{configuration: [{"seed", "status", "dev_accuracy", "init": stats, "trained": stats}, ...]}."""
    out: dict[str, list[dict]] = {}
    for r in sorted(runs(root), key=lambda r: (len(r.job), r.job)):  # the sweep's own order
        rec = {"seed": setting(r, "trainer.seed"), "status": r.status, "dev_accuracy": metric(r, "dev", "accuracy")}
        if r.status != "failed":
            try:
                rec.update(probe_job(job_dir(root, r)))
            except Exception as e:  # a diverged run's checkpoint may hold non-finite weights
                rec["error"] = f"{type(e).__name__}: {e}"
        out.setdefault(config_key(r), []).append(rec)
    return out


def stat_matrix(recs: list[dict], when: str, key: str) -> np.ndarray:
    """(seeds, layers) of one statistic, the seeds that have it."""
    rows = [r[when][key] for r in recs if when in r]
    return np.asarray(rows, dtype=float) if rows else np.zeros((0, 0))


def draw_depth(
    ax, probes: dict[str, list[dict]], when: str, key: str, colors: dict[str, str], log: bool = True, ls: str = "-"
) -> None:
    """One statistic against depth: the mean over seeds of each configuration, band min–max."""
    for name, recs in probes.items():
        m = stat_matrix(recs, when, key)
        if not m.size:
            continue
        depth = np.arange(1, m.shape[1] + 1)
        vals = np.abs(m) if log else m
        with np.errstate(divide="ignore", invalid="ignore"):
            mid = np.exp(np.mean(np.log(vals), 0)) if log else vals.mean(0)
        ax.plot(depth, mid, ls, color=colors[name], lw=1.6, label=f"{name} ({len(m)} seeds)")
        if len(m) > 1:
            ax.fill_between(depth, vals.min(0), vals.max(0), color=colors[name], alpha=0.15, lw=0)
    if log:
        ax.set_yscale("log")
    ax.set_xlabel("layer")
    ax.grid(alpha=0.3)


def last_layer(recs: list[dict], when: str, key: str) -> list[float]:
    m = stat_matrix(recs, when, key)
    return m[:, -1].tolist() if m.size else []


def colors_of(names) -> dict[str, str]:
    return {n: plots.class_color(i) for i, n in enumerate(names)}
