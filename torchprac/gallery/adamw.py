"""Gallery 10, decoupled weight decay (Loshchilov & Hutter 2019): Adam with L2 (torch's Adam
weight_decay: wd*W added to the gradient, then divided by Adam's sqrt(v)) vs AdamW (W shrunk
by lr*wd outside the adaptive step), over an lr x weight-decay grid: dev accuracy and loss as
heat maps, and where the best weight decay lies at each lr."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from torchprac.gallery import plots
from torchprac.gallery.sweep import Spread, group, metric, runs, setting

PRESET = "gallery_adamw"
OPTIMIZERS = {"adam": "Adam + L2 (weight_decay in the gradient)", "adamw": "AdamW (decoupled)"}


def cell(run) -> tuple[str, float, float]:
    """(optimizer, lr, weight decay) of a run."""
    return setting(run, "optimizer"), float(setting(run, "optimizer.lr")), float(setting(run, "optimizer.weight_decay"))


def measure(root: Path) -> dict:
    rs = runs(root)
    out: dict = {"optimizers": {}}
    by = group(rs, cell)
    lrs = sorted({k[1] for k in by})
    wds = sorted({k[2] for k in by})
    out["lrs"], out["wds"] = lrs, wds
    for opt in OPTIMIZERS:
        acc = np.full((len(lrs), len(wds)), np.nan)
        loss = np.full_like(acc, np.nan)
        spread = np.full_like(acc, np.nan)
        for i, lr in enumerate(lrs):
            for j, wd in enumerate(wds):
                grs = by.get((opt, lr, wd), [])
                a = Spread.of(metric(r, "dev", "accuracy") for r in grs)
                acc[i, j], spread[i, j] = a.mean, (a.hi - a.lo if a.n > 1 else np.nan)
                loss[i, j] = Spread.of(metric(r, "dev", "loss") for r in grs).mean
        best_wd = [wds[int(np.nanargmax(row))] if np.isfinite(row).any() else None for row in acc]
        i, j = np.unravel_index(np.nanargmax(acc), acc.shape)
        out["optimizers"][opt] = {
            "dev_accuracy": acc.tolist(),
            "dev_loss": loss.tolist(),
            "seed_range": spread.tolist(),
            "best_wd_per_lr": best_wd,
            "best": {"lr": lrs[i], "wd": wds[j], "dev_accuracy": float(acc[i, j])},
            "no_decay_best": float(np.nanmax(acc[:, 0])) if wds[0] == 0 else None,
        }
    out["median_seed_range"] = float(np.nanmedian([np.asarray(v["seed_range"]) for v in out["optimizers"].values()]))
    return out


def draw(root: Path | None, numbers: dict):
    from matplotlib.patches import Rectangle

    lrs, wds = numbers["lrs"], numbers["wds"]
    fig = plots.figure(15, 5.6)
    axes = fig.subplots(1, 4, width_ratios=[1, 1, 1, 1])
    all_acc = np.asarray([v["dev_accuracy"] for v in numbers["optimizers"].values()], dtype=float)
    all_loss = np.asarray([v["dev_loss"] for v in numbers["optimizers"].values()], dtype=float)
    lims = {
        "dev_accuracy": (np.nanmin(all_acc), np.nanmax(all_acc)),
        "dev_loss": (np.nanmin(all_loss), np.nanmax(all_loss)),
    }
    col = 0
    for what, cmap in (("dev_accuracy", "viridis"), ("dev_loss", "viridis_r")):
        for opt, title in OPTIMIZERS.items():
            ax = axes[col]
            col += 1
            m = np.asarray(numbers["optimizers"][opt][what], dtype=float)
            im = ax.imshow(m, origin="lower", cmap=cmap, vmin=lims[what][0], vmax=lims[what][1], aspect="auto")
            for i in range(len(lrs)):
                for j in range(len(wds)):
                    if np.isfinite(m[i, j]):
                        r, g, b, _ = im.cmap(im.norm(m[i, j]))
                        ink = "k" if 0.299 * r + 0.587 * g + 0.114 * b > 0.5 else "w"  # readable on the cell
                        ax.text(j, i, f"{m[i, j]:.3f}", ha="center", va="center", fontsize=7, color=ink)
            if what == "dev_accuracy":
                for i, wd in enumerate(numbers["optimizers"][opt]["best_wd_per_lr"]):
                    if wd is not None:
                        ax.add_patch(Rectangle((wds.index(wd) - 0.5, i - 0.5), 1, 1, fill=False, ec="r", lw=2))
            ax.set_xticks(range(len(wds)), [f"{w:g}" for w in wds], fontsize=8)
            ax.set_yticks(range(len(lrs)), [f"{v:g}" for v in lrs], fontsize=8)
            ax.set_xlabel("weight_decay")
            ax.set_ylabel("lr")
            ax.set_title(f"{title}\n{what.replace('_', ' ')} (mean of seeds)", fontsize=9)
            fig.colorbar(im, ax=ax, shrink=0.7)
    fig.suptitle(
        "300 training digits, MLP 256-256, 40 epochs, batch 32; red box: the best weight decay at each lr", fontsize=11
    )
    return fig


def summary(numbers: dict) -> list[str]:
    lrs, wds = numbers["lrs"], numbers["wds"]
    lines = []
    for opt, title in OPTIMIZERS.items():
        o = numbers["optimizers"][opt]
        lines += [
            f"{title}: dev accuracy (mean of seeds), rows lr, columns weight_decay",
            "",
            "| lr \\ wd | " + " | ".join(f"{w:g}" for w in wds) + " | best wd |",
            "|---|" + "---|" * (len(wds) + 1),
        ]
        for lr, row, bw in zip(lrs, o["dev_accuracy"], o["best_wd_per_lr"]):
            lines.append(f"| {lr:g} | " + " | ".join(f"{v:.3f}" for v in row) + f" | {bw:g} |")
        b = o["best"]
        lines += [
            "",
            f"best: lr {b['lr']:g}, wd {b['wd']:g}, dev accuracy {b['dev_accuracy']:.3f} "
            f"(best without decay {o['no_decay_best']:.3f})",
            "",
        ]
    lines.append(f"median seed-to-seed range of a cell: {numbers['median_seed_range']:.3f}")
    return lines
