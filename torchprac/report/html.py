"""The sweep report: report.html at a sweep's root, one self-contained file (figures embedded
as base64 PNG, no script, no link outside it) that opens from disk with no server:

- the best configuration, and the command that reproduces its best run;
- the ranked table: runs that differ only in trainer.seed are one row, mean ± std over seeds;
- the learning curves of all runs overlaid, one colour per configuration (the swept choice),
  seeds as a mean line with a ± std band;
- the objective against each swept parameter (a strip plot: every run, and the mean);
- every run, and the decision boundaries of the runs that drew one.

Sources: each job's metrics.json, history.json and .hydra/overrides.yaml (a job without
metrics.json is listed as failed). Written at the end of every multirun by the SweepSummary
callback; `python -m torchprac.report <sweep dir>` rebuilds it for a finished or interrupted one."""

from __future__ import annotations

import base64
import html
import json
import math
import shlex
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torchprac.report.sweep_summary import _job_dirs, _row, _score
from torchprac.viz.names import NOT_NAMED, override_key

SEED_KEY = "trainer.seed"
MAX_GALLERY = 24


@dataclass
class Run:
    job: str
    status: str
    overrides: list[str]
    metrics: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)
    row: dict[str, Any] = field(default_factory=dict)

    @property
    def value(self) -> float | None:
        v = self.row.get("value")
        return float(v) if isinstance(v, (int, float)) and math.isfinite(v) else None

    def setting(self, key: str) -> str | None:
        return next((o.split("=", 1)[1] for o in self.overrides if override_key(o) == key), None)


@dataclass
class Group:
    """Runs with the same overrides but trainer.seed."""

    name: str
    runs: list[Run]

    def values(self) -> list[float]:
        return [r.value for r in self.runs if r.value is not None]

    def stat(self, get) -> tuple[float, float] | None:
        xs = [v for v in (get(r) for r in self.runs) if isinstance(v, (int, float)) and math.isfinite(v)]
        if not xs:
            return None
        return statistics.fmean(xs), (statistics.stdev(xs) if len(xs) > 1 else 0.0)


def load_runs(root: Path) -> list[Run]:
    """Every job of the sweep, ranked as summary.md ranks them (best first)."""
    runs = []
    for job in _job_dirs(root):
        row = _row(root, job)
        try:
            m = json.loads((job / "metrics.json").read_text())
        except (OSError, ValueError):
            m = {}
        try:
            hist = json.loads((job / "history.json").read_text())
        except (OSError, ValueError):
            hist = []
        overrides = [o for o in row.get("overrides", "").split() if not override_key(o).startswith(NOT_NAMED)]
        runs.append(
            Run(row["job"], row.get("status", "failed"), overrides, m, hist if isinstance(hist, list) else [], row)
        )
    return sorted(runs, key=lambda r: _score(r.row))


def swept_keys(runs: list[Run]) -> list[str]:
    """Override keys whose value differs between runs (a key missing from a run counts as a value)."""
    keys: list[str] = []
    for r in runs:
        for o in r.overrides:
            if override_key(o) not in keys:
                keys.append(override_key(o))
    return [k for k in keys if len({r.setting(k) for r in runs}) > 1]


def group_runs(runs: list[Run], swept: list[str]) -> list[Group]:
    """Runs that differ only in trainer.seed form one group; groups ranked by their mean objective."""
    groups: dict[str, Group] = {}
    keys = [k for k in swept if k != SEED_KEY]
    for r in runs:
        name = " ".join(f"{k}={r.setting(k)}" for k in keys if r.setting(k) is not None) or "(all runs)"
        groups.setdefault(name, Group(name, [])).runs.append(r)
    mode = next((r.row.get("mode") for r in runs if r.row.get("mode")), "max")

    def key(g: Group) -> tuple:
        vals = g.values()
        if not vals:
            return (1, 0.0)
        m = statistics.fmean(vals)
        return (0, -m if mode == "max" else m)

    return sorted(groups.values(), key=key)


# -- figures ------------------------------------------------------------------------------------
def _img(png: bytes, alt: str, width: int | None = None) -> str:
    w = f' width="{width}"' if width else ""
    return f'<img alt="{html.escape(alt)}"{w} src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def _epoch_series(hist: list[dict], key: str) -> dict[int, float]:
    out = {}
    for i, h in enumerate(hist):
        v = h.get(key)
        if isinstance(v, (int, float)) and math.isfinite(v):
            out[int(h.get("epoch", i + 1))] = float(v)
    return out


def curves_figure(groups: list[Group]):
    """Dev loss and dev accuracy (when the runs have it) of every group against epochs: one
    colour per group, a line per run, or the mean over seeds with a ± std band."""
    from torchprac.viz.figures import _figure, class_color

    has_acc = any(_epoch_series(r.history, "metric/accuracy_dev") for g in groups for r in g.runs)
    panels = [("loss/dev", "dev loss"), ("loss/train", "train loss")]
    if has_acc:
        panels.append(("metric/accuracy_dev", "dev accuracy"))
    fig = _figure(5.0 * len(panels), 4.2)
    axes = fig.subplots(1, len(panels))
    for gi, g in enumerate(groups):
        color = class_color(gi)
        for ax, (key, _) in zip(axes, panels):
            series = [s for s in (_epoch_series(r.history, key) for r in g.runs) if s]
            if not series:
                continue
            epochs = sorted(set().union(*series))
            at = [[s[e] for s in series if e in s] for e in epochs]
            mean = [statistics.fmean(v) for v in at]
            label = g.name + (f" ({len(series)} seeds)" if len(series) > 1 else "")
            ax.plot(epochs, mean, color=color, lw=1.6, label=label)
            if len(series) > 1:
                std = [statistics.stdev(v) if len(v) > 1 else 0.0 for v in at]
                lo = [m - s for m, s in zip(mean, std)]
                hi = [m + s for m, s in zip(mean, std)]
                ax.fill_between(epochs, lo, hi, color=color, alpha=0.2, lw=0)
    for ax, (_, title) in zip(axes, panels):
        ax.set_title(title + (" (mean ± std over seeds)" if any(len(g.runs) > 1 for g in groups) else ""), fontsize=10)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    axes[-1].legend(fontsize=7, loc="best")
    return fig


def _as_number(v: str | None) -> float | None:
    try:
        f = float(v)  # type: ignore[arg-type]
        return f if math.isfinite(f) else None
    except (TypeError, ValueError):
        return None


def objective_figure(runs: list[Run], swept: list[str], objective: str, groups: list[Group] | None = None):
    """The objective of every run against each swept parameter (jittered strip plot, the mean
    per value as a black bar; a point's colour is its configuration, as in the curves): which
    choice matters, and how much seeds scatter."""
    import numpy as np

    from torchprac.viz.figures import _figure, class_color

    colour = {id(r): class_color(i) for i, g in enumerate(groups or []) for r in g.runs}

    fig = _figure(max(4.0 * len(swept), 4.5), 3.8)
    axes = np.atleast_1d(fig.subplots(1, len(swept)))
    rng = np.random.default_rng(0)
    for ax, key in zip(axes, swept):
        values = sorted(
            {r.setting(key) or "(default)" for r in runs}, key=lambda v: (_as_number(v) is None, _as_number(v) or 0, v)
        )
        for i, v in enumerate(values):
            at = [r for r in runs if (r.setting(key) or "(default)") == v and r.value is not None]
            ys = [r.value for r in at]
            if ys:
                c = [colour.get(id(r), "#1f77b4") for r in at]
                ax.scatter(i + rng.uniform(-0.12, 0.12, len(ys)), ys, s=28, c=c, alpha=0.85, zorder=3)
                ax.hlines(statistics.fmean(ys), i - 0.3, i + 0.3, color="k", lw=2, zorder=4)
        ax.set_xticks(range(len(values)), [v if len(v) < 18 else v[:16] + "…" for v in values], rotation=20, fontsize=8)
        ax.set_xlim(-0.6, len(values) - 0.4)
        ax.set_title(key, fontsize=10)
        ax.grid(alpha=0.3, axis="y")
    axes[0].set_ylabel(objective)
    return fig


# -- HTML ---------------------------------------------------------------------------------------
CSS = """
body { font-family: -apple-system, Segoe UI, Helvetica, Arial, sans-serif; margin: 24px; color: #222; }
body { max-width: 1400px; }
h1 { font-size: 22px; } h2 { font-size: 18px; margin-top: 28px; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; font-size: 13px; }
th, td { padding: 4px 8px; border-bottom: 1px solid #eee; text-align: right; }
th { background: #f4f4f4; } td.l, th.l { text-align: left; } tr.best td { background: #eef8ee; font-weight: 600; }
code, pre { background: #f6f6f6; padding: 2px 4px; border-radius: 3px; } pre { padding: 8px; white-space: pre-wrap; }
.best { border: 1px solid #9c9; background: #f5fbf5; padding: 8px 14px; border-radius: 6px; }
.gallery { display: flex; flex-wrap: wrap; gap: 10px; } .gallery figure { margin: 0; font-size: 12px; }
.failed { color: #b00; } .muted { color: #777; } img { max-width: 100%; height: auto; }
"""


def _pm(s: tuple[float, float] | None, n: int, digits: int = 4) -> str:
    if s is None:
        return ""
    return f"{s[0]:.{digits}f}" + (f" ± {s[1]:.{digits}f}" if n > 1 else "")


def _metric(split: str, name: str):
    return lambda r: ((r.metrics.get("metrics") or {}).get(split) or {}).get(name)


def reproduce_command(run: Run) -> str:
    return " ".join(["python", "train.py", *(shlex.quote(o) for o in run.overrides)])


def build_report(root: str | Path, runs: list[Run] | None = None) -> Path:
    """Write root/report.html; returns its path."""
    from torchprac.viz.figures import png_bytes

    root = Path(root)
    runs = load_runs(root) if runs is None else runs
    swept = swept_keys(runs)
    groups = group_runs(runs, swept)
    objective = next((r.row.get("objective") for r in runs if r.row.get("objective")), "objective")
    mode = next((r.row.get("mode") for r in runs if r.row.get("mode")), "max")
    counts: dict[str, int] = {}
    for r in runs:
        counts[r.status] = counts.get(r.status, 0) + 1
    e = html.escape
    out = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>sweep report: {e(root.name)}</title><style>{CSS}</style></head><body>",
        f"<h1>Sweep report: {e(str(root))}</h1>",
        f"<p>{len(runs)} runs ({', '.join(f'{n} {e(s)}' for s, n in sorted(counts.items()))}), "
        f"{len(groups)} configurations; ranked by <b>{e(objective)}</b> ({e(mode)}), best first. "
        + (
            "Swept: "
            + "; ".join(
                f"<code>{e(k)}</code> ({e(', '.join(sorted({r.setting(k) or '-' for r in runs})))})" for k in swept
            )
            if swept
            else "Nothing differs between the runs."
        )
        + "</p>",
    ]
    common = sorted(set.intersection(*(set(r.overrides) for r in runs))) if runs else []
    if common:
        out.append(f"<p class='muted'>Shared by every run: <code>{e(' '.join(common))}</code></p>")

    best_group = next((g for g in groups if g.values()), None)
    if best_group is not None:
        best_run = min(best_group.runs, key=lambda r: _score(r.row))
        s = best_group.stat(lambda r: r.value)
        seeds = len(best_group.values())
        out += [
            "<div class='best'><h2 style='border:0;margin-top:6px'>Best configuration</h2>",
            f"<p><code>{e(best_group.name)}</code>: {e(objective)} = <b>{_pm(s, seeds)}</b>"
            + (f" over {seeds} seeds" if seeds > 1 else "")
            + f" (run <code>{e(best_run.job)}</code>).</p>",
            f"<p>Reproduce its best run:</p><pre>{e(reproduce_command(best_run))}</pre></div>",
        ]

    # the ranked table: one row per configuration, mean ± std over seeds
    cols = [("train", "accuracy"), ("dev", "accuracy"), ("test", "accuracy"), ("dev", "loss")]
    cols = [c for c in cols if f"{c[0]}/{c[1]}" != objective and any(_metric(*c)(r) is not None for r in runs)]
    out += [
        "<h2>Ranking</h2><table><tr><th>rank</th><th class='l'>configuration</th><th>runs</th>",
        f"<th>{e(objective)}</th>"
        + "".join(f"<th>{s} {n}</th>" for s, n in cols)
        + "<th>epochs</th><th class='l'>status</th></tr>",
    ]
    for i, g in enumerate(groups, 1):
        n = len(g.runs)
        status = ", ".join(sorted({r.status for r in g.runs}))
        cells = [f"<td>{i}</td>", f"<td class='l'><code>{e(g.name)}</code></td>", f"<td>{n}</td>"]
        cells.append(f"<td>{_pm(g.stat(lambda r: r.value), len(g.values()))}</td>")
        for c in cols:
            cells.append(f"<td>{_pm(g.stat(_metric(*c)), n)}</td>")
        cells.append(f"<td>{_pm(g.stat(lambda r: r.metrics.get('epochs_run')), n, 1)}</td>")
        cls = " class='failed'" if status == "failed" else ""
        cells.append(f"<td class='l'><span{cls}>{e(status)}</span></td>")
        out.append(f"<tr{' class=best' if g is best_group else ''}>" + "".join(cells) + "</tr>")
    out.append("</table>")
    if any(len(g.runs) > 1 for g in groups):
        out.append(
            "<p class='muted'>mean ± std (sample standard deviation) over the runs that differ only in "
            "trainer.seed.</p>"
        )

    with_history = [g for g in groups if any(r.history for r in g.runs)]
    if with_history:
        out += ["<h2>Learning curves</h2>", _img(png_bytes(curves_figure(with_history)), "learning curves of all runs")]
    if swept and any(r.value is not None for r in runs):
        out += [
            f"<h2>{e(objective)} against each swept parameter</h2>",
            _img(png_bytes(objective_figure(runs, swept, objective, groups)), "objective against each swept parameter"),
        ]

    out += [
        "<h2>All runs</h2><table><tr><th class='l'>job</th><th class='l'>overrides</th><th>status</th>",
        f"<th>{e(objective)}</th><th>epochs</th><th>best epoch</th><th class='l'>message</th></tr>",
    ]
    for r in runs:
        v = "" if r.value is None else f"{r.value:.4f}"
        ov = " ".join(o for o in r.overrides if o not in common)
        out.append(
            f"<tr><td class='l'>{e(r.job)}</td><td class='l'><code>{e(ov)}</code></td>"
            f"<td>{e(r.status)}</td><td>{v}</td>"
            f"<td>{r.metrics.get('epochs_run', '')}</td><td>{r.metrics.get('best_epoch', '')}</td>"
            f"<td class='l'>{e(str(r.row.get('message', ''))[:160])}</td></tr>"
        )
    out.append("</table>")

    pics = [(r, root / r.job / "figures" / "decision_boundary.png") for r in runs]
    pics = [(r, p) for r, p in pics if p.is_file()][:MAX_GALLERY]
    if pics:
        out.append("<h2>Decision boundaries</h2><div class='gallery'>")
        for r, p in pics:
            label = " ".join(o for o in r.overrides if o not in common) or r.job
            out.append(
                f"<figure>{_img(p.read_bytes(), label, 360)}"
                f"<figcaption>{e(r.job)}: <code>{e(label)}</code></figcaption></figure>"
            )
        out.append("</div>")
    out.append("</body></html>\n")

    path = root / "report.html"
    tmp = path.with_name(".report.html.tmp")
    tmp.write_text("\n".join(out), encoding="utf-8")
    tmp.replace(path)
    return path


# -- entry points --------------------------------------------------------------------------------
def write_extras(root: str | Path, rows: list[dict[str, Any]]) -> Path | None:
    """After summary.md/csv: report.html and the sweep's HParams experiment summary. A failure
    here is logged, never raised: the sweep's results are already written."""
    import logging

    from torchprac.report.sweep_hparams import write_sweep_hparams

    log = logging.getLogger("torchprac")
    root = Path(root)
    try:
        write_sweep_hparams(root, rows)
    except Exception as e:
        log.warning("sweep: the HParams experiment summary could not be written (%s: %s)", type(e).__name__, e)
    try:
        path = build_report(root)
    except Exception as e:
        log.warning("sweep: report.html could not be written (%s: %s)", type(e).__name__, e)
        return None
    log.info("sweep report: %s", path)
    return path


def rebuild(root: str | Path) -> Path | None:
    """summary.md/csv, report.html and the HParams summary of a finished or interrupted sweep;
    None when no job is found under `root`."""
    from torchprac.report.sweep_summary import write_summary

    if not _job_dirs(Path(root)):
        return None
    return write_extras(root, write_summary(root))
