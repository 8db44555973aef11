"""Gallery 7, batch norm and the learning rate (Ioffe & Szegedy 2015): the range of learning
rates at which the same MLP trains (dev accuracy >= THRESHOLD after the run) without batch
norm, and with it before or after the activation."""

from __future__ import annotations

import math
from pathlib import Path

from torchprac.gallery import plots
from torchprac.gallery.sweep import Spread, group, metric, runs, series, setting

PRESET = "gallery_batch_norm"
THRESHOLD = 0.9  # "trains": dev accuracy at least this (digits, chance 0.1), decided before the runs
PLACEMENTS = ("none", "before", "after")


def trains(run) -> bool:
    acc = metric(run, "dev", "accuracy")
    return run.status == "completed" and acc is not None and acc >= THRESHOLD


def trainable_range(per_lr: dict[float, list[bool]]) -> tuple[float, float] | None:
    """(lowest, highest) lr of the longest run of consecutive grid points where every seed trains."""
    lrs = sorted(per_lr)
    best, cur = None, []
    for lr in lrs:
        if per_lr[lr] and all(per_lr[lr]):
            cur.append(lr)
            if best is None or len(cur) > len(best):
                best = list(cur)
        else:
            cur = []
    return (best[0], best[-1]) if best else None


def measure(root: Path) -> dict:
    rs = runs(root)
    out: dict = {"threshold": THRESHOLD, "placements": {}}
    for bn in PLACEMENTS:
        grs = [r for r in rs if setting(r, "model.batch_norm", "none") == bn]
        per_lr = group(grs, lambda r: float(setting(r, "optimizer.lr")))
        table = {
            f"{lr:g}": {
                "dev_accuracy": Spread.of(metric(r, "dev", "accuracy") for r in per_lr[lr]).to_dict(),
                "trains": [trains(r) for r in per_lr[lr]],
                "statuses": [r.status for r in per_lr[lr]],
            }
            for lr in sorted(per_lr)
        }
        rng = trainable_range({lr: [trains(r) for r in per_lr[lr]] for lr in per_lr})
        out["placements"][bn] = {
            "lrs": table,
            "range": list(rng) if rng else None,
            "decades": math.log10(rng[1] / rng[0]) if rng else None,
        }
    return out


def draw(root: Path, numbers: dict):
    rs = runs(root)
    fig = plots.figure(15, 4.8)
    ax_a, ax_c = fig.subplots(1, 2)
    for i, bn in enumerate(PLACEMENTS):
        p = numbers["placements"][bn]
        lrs = [float(k) for k in p["lrs"]]
        c = plots.class_color(i)
        for lr in lrs:
            accs = [
                metric(r, "dev", "accuracy")
                for r in rs
                if setting(r, "model.batch_norm", "none") == bn and float(setting(r, "optimizer.lr")) == lr
            ]
            accs = [a if a is not None else 0.0 for a in accs]  # a diverged run scores 0 on the chart
            ax_a.scatter([lr * (1 + 0.08 * (i - 1))] * len(accs), accs, color=c, s=18, alpha=0.8)
        mean = [v["dev_accuracy"]["mean"] if v["dev_accuracy"]["n"] else 0.0 for v in p["lrs"].values()]
        rng = p["range"]
        label = f"batch_norm={bn}: trains {rng[0]:g}–{rng[1]:g} ({p['decades']:.1f} decades)" if rng else f"{bn}: none"
        ax_a.plot(lrs, mean, "-", color=c, label=label)
    ax_a.axhline(THRESHOLD, color="k", ls=":", lw=1, label=f"threshold {THRESHOLD}")
    ax_a.set_xscale("log")
    ax_a.set_xlabel("learning rate (nesterov)")
    ax_a.set_ylabel("dev accuracy after 10 epochs (diverged: 0)")
    ax_a.set_title("dev accuracy vs learning rate (dots: seeds, line: mean)", fontsize=10)
    ax_a.legend(fontsize=8)
    ax_a.grid(alpha=0.3)
    lr_show = "1"
    for i, bn in enumerate(PLACEMENTS):
        curves = [
            series(r, "loss/train")
            for r in rs
            if setting(r, "model.batch_norm", "none") == bn and setting(r, "optimizer.lr") == lr_show
        ]
        plots.mean_band(ax_c, curves, plots.class_color(i), f"batch_norm={bn}", marker=".")
    ax_c.set_yscale("log")
    ax_c.set_xlabel("epoch")
    ax_c.set_title(f"training loss at lr {lr_show} (a diverged run stops)", fontsize=10)
    ax_c.grid(alpha=0.3)
    ax_c.legend(fontsize=8)
    fig.suptitle(
        "digits, 4 ReLU layers of 64, He init, nesterov momentum 0.9, batch 64, 10 epochs, 2 seeds", fontsize=11
    )
    return fig


def summary(numbers: dict) -> list[str]:
    ps = numbers["placements"]
    lrs = list(next(iter(ps.values()))["lrs"])
    lines = [
        "| batch_norm | " + " | ".join(f"lr {lr}" for lr in lrs) + " | trainable range |",
        "|---|" + "---|" * (len(lrs) + 1),
    ]
    for bn, p in ps.items():
        cells = []
        for lr in lrs:
            v = p["lrs"].get(lr)
            if v is None:
                cells.append("")
                continue
            d = v["dev_accuracy"]
            st = (
                ""
                if all(s == "completed" for s in v["statuses"])
                else " (" + "/".join(s[:4] for s in v["statuses"]) + ")"
            )
            cells.append((f"{d['mean']:.3f}" if d["n"] else "–") + st)
        rng = f"{p['range'][0]:g}–{p['range'][1]:g} ({p['decades']:.1f} decades)" if p["range"] else "none"
        lines.append(f"| {bn} | " + " | ".join(cells) + f" | {rng} |")
    return lines
