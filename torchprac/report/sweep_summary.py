"""Sweep summary: at the end of every multirun (any launcher or sweeper), summary.md and
summary.csv at the sweep root rank the runs by their objective, with their overrides, status
and key metrics. Each job's metrics.json is the source; a job without one is listed as failed.

Registered in conf/config.yaml as a Hydra callback (hydra.callbacks.sweep_summary)."""

from __future__ import annotations

import csv
import json
import logging
import math
from pathlib import Path
from typing import Any

import yaml
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

log = logging.getLogger("torchprac")

COLUMNS = (
    "rank",
    "job",
    "status",
    "objective",
    "value",
    "train_accuracy",
    "dev_accuracy",
    "test_accuracy",
    "train_loss",
    "dev_loss",
    "test_loss",
    "epochs_run",
    "best_epoch",
    "overrides",
    "message",
)
# Regression runs (data.task) report these instead of accuracy; their columns appear when a job has them.
REGRESSION_COLUMNS = tuple(f"{s}_{k}" for k in ("r2", "rmse", "mae") for s in ("train", "dev", "test"))


def _columns(rows: list[dict[str, Any]]) -> tuple[str, ...]:
    extra = tuple(c for c in REGRESSION_COLUMNS if any(c in r for r in rows))
    if not extra:
        return COLUMNS
    cut = COLUMNS.index("train_loss")
    return COLUMNS[:cut] + extra + COLUMNS[cut:]


def _job_dirs(root: Path) -> list[Path]:
    """Every job dir under the sweep root: it holds Hydra's .hydra/overrides.yaml, or at least our
    metrics.json (hydra.output_subdir=null)."""
    dirs = {p.parent.parent for p in root.rglob(".hydra/overrides.yaml")}
    dirs |= {p.parent for p in root.rglob("metrics.json")}
    dirs.discard(root)

    def key(d: Path) -> tuple:
        rel = d.relative_to(root).parts
        return tuple((0, int(s), "") if s.isdigit() else (1, 0, s) for s in rel)

    return sorted(dirs, key=key)


def _row(root: Path, job: Path) -> dict[str, Any]:
    ov_file = job / ".hydra" / "overrides.yaml"
    overrides = yaml.safe_load(ov_file.read_text()) if ov_file.is_file() else []
    row: dict[str, Any] = {"job": str(job.relative_to(root)), "overrides": " ".join(overrides or [])}
    try:
        m = json.loads((job / "metrics.json").read_text())
    except (OSError, ValueError):
        return {**row, "status": "failed", "message": "no readable metrics.json: the job crashed or was killed"}
    obj = m.get("objective", {})
    row.update(
        status=m.get("status", "failed"),
        objective=obj.get("name", ""),
        value=obj.get("value"),
        mode=obj.get("mode", "max"),
        epochs_run=m.get("epochs_run"),
        best_epoch=m.get("best_epoch"),
        message=m.get("message", ""),
    )
    for split, values in (m.get("metrics") or {}).items():
        for k in ("accuracy", "loss", "r2", "rmse", "mae"):
            if k in values:
                row[f"{split}_{k}"] = values[k]
    return row


def _score(row: dict[str, Any]) -> tuple[int, float]:
    """Sort key: finite objectives best first (mode-aware), then non-finite ones (diverged: the
    worst value), then failed jobs (bad config, crashed, killed)."""
    v = row.get("value")
    if row["status"] == "failed" or "mode" not in row:
        return 2, 0.0
    if not isinstance(v, (int, float)) or not math.isfinite(v):
        return 1, 0.0
    return 0, -v if row["mode"] == "max" else v


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4f}" if math.isfinite(v) else str(v)
    return "" if v is None else str(v)


def write_summary(root: str | Path) -> list[dict[str, Any]]:
    """Rank the jobs under `root`, write root/summary.csv and root/summary.md; returns the rows."""
    root = Path(root)
    rows = sorted((_row(root, d) for d in _job_dirs(root)), key=_score)
    for i, r in enumerate(rows, 1):
        r["rank"] = i
    with open(root / "summary.csv", "w", newline="") as f:
        columns = _columns(rows)
        w = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        w.writeheader()
        w.writerows({k: r.get(k, "") for k in columns} for r in rows)

    counts: dict[str, int] = {}
    for r in rows:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    objectives = sorted({f"{r['objective']} ({r['mode']})" for r in rows if "mode" in r})
    # The markdown shows only what differs between jobs; the CSV keeps every override.
    common = set.intersection(*(set(r["overrides"].split()) for r in rows)) if len(rows) > 1 else set()
    md_cols = [c for c in columns if c != "objective"]
    lines = [
        f"# Sweep summary: {root}",
        "",
        f"{len(rows)} runs: "
        + ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
        + (f". Ranked by {', '.join(objectives)}, best first." if objectives else "."),
        "",
    ]
    if common:
        lines += ["Overrides shared by all runs: `" + " ".join(sorted(common)) + "`", ""]
    lines += ["| " + " | ".join(md_cols) + " |", "|" + "---|" * len(md_cols)]
    for r in rows:
        r = {**r, "overrides": " ".join(o for o in r["overrides"].split() if o not in common)}
        cells = [_fmt(r.get(c)).replace("|", "\\|").replace("\n", " ") for c in md_cols]
        lines.append("| " + " | ".join(cells) + " |")
    (root / "summary.md").write_text("\n".join(lines) + "\n")
    return rows


class SweepSummary(Callback):
    """Hydra callback: writes the summary when a multirun ends."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from torchprac.viz.painter import drain

        drain()  # the last job's figures, when drawn in the background (viz.background)
        root = Path(str(config.hydra.sweep.dir))
        if not root.is_dir():
            log.warning("sweep summary: sweep dir %s not found, nothing summarised", root)
            return
        rows = write_summary(root)
        if rows:
            best = rows[0]
            log.info(
                "sweep summary: %s (best: job %s, %s %s = %s)",
                root / "summary.md",
                best["job"],
                best.get("objective", ""),
                best["status"],
                _fmt(best.get("value")),
            )
            from torchprac.report.html import write_extras  # report.html, the HParams experiment summary

            write_extras(root, rows)
