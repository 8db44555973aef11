"""Gallery 5, initialisation in depth: a 30-layer ReLU MLP with Xavier (Var 1/n for square
layers) vs He (Var 2/n) init, and a 5-layer tanh MLP with the old U(±1/√n) rule (Var 1/(3n))
vs Xavier: per-layer activation and gradient std at initialisation and after training, and the
training loss."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from torchprac.gallery import plots
from torchprac.gallery.layers import colors_of, draw_depth, probe_sweep, stat_matrix
from torchprac.gallery.sweep import Spread, group, metric, runs, series, setting

PRESET = "gallery_init_depth"
PAIRS = (("relu30_xavier", "relu30_he"), ("tanh5_standard", "tanh5_xavier"))
PROBE_LR = "0.005"  # the trained nets probed layer by layer (both lrs share the same initial weights)


def net_of(run) -> str:
    return setting(run, "gallery.net", "relu30_he")


def measure(root: Path) -> dict:
    rs = runs(root)
    out: dict = {"nets": {}, "probe_lr": PROBE_LR}
    for (net, lr), group_runs in sorted(group(rs, lambda r: (net_of(r), setting(r, "optimizer.lr"))).items()):
        out["nets"].setdefault(net, {})[lr] = {
            "train_loss": Spread.of(metric(r, "train", "loss") for r in group_runs).to_dict(),
            "dev_accuracy": Spread.of(metric(r, "dev", "accuracy") for r in group_runs).to_dict(),
            "statuses": [r.status for r in group_runs],
        }
    probes = probe_sweep(root, lambda r: (net_of(r), setting(r, "optimizer.lr")))
    layer: dict = {}
    for (net, lr), recs in probes.items():
        d = layer.setdefault(net, {})
        if "init" not in d:
            std = stat_matrix(recs, "init", "act_std")
            g = stat_matrix(recs, "init", "weight_grad_std")
            d["init"] = {
                "first_act_std": Spread.of(std[:, 0]).to_dict(),
                "last_act_std": Spread.of(std[:, -1]).to_dict(),
                "first_over_last_grad": Spread.of(g[:, 0] / np.maximum(g[:, -1], 1e-300)).to_dict(),
            }
        if lr == PROBE_LR:
            std = stat_matrix(recs, "trained", "act_std")
            if std.size:
                d["trained"] = {"last_act_std": Spread.of(std[:, -1]).to_dict()}
    out["layers"] = layer
    out["_probes"] = {f"{n}@{lr}": v for (n, lr), v in probes.items()}
    return out


def draw(root: Path, numbers: dict):
    rs = runs(root)
    probes = numbers["_probes"]
    fig = plots.figure(17, 9)
    axes = fig.subplots(2, 4)
    for row, pair in enumerate(PAIRS):
        colors = colors_of(pair)
        at_init = {n: probes.get(f"{n}@{PROBE_LR}", []) for n in pair}
        ax_a, ax_g, ax_t, ax_l = axes[row]
        draw_depth(ax_a, at_init, "init", "act_std", colors)
        ax_a.set_title("activation std per layer at init", fontsize=10)
        ax_a.legend(fontsize=8)
        draw_depth(ax_g, at_init, "init", "weight_grad_std", colors)
        ax_g.set_title("std of dL/dW per layer at init", fontsize=10)
        draw_depth(ax_t, at_init, "trained", "act_std", colors)
        ax_t.set_title(f"activation std after 10 epochs (lr {PROBE_LR})", fontsize=10)
        for net in pair:
            for lr, ls in (("0.005", "-"), ("0.05", "--")):
                curves = [series(r, "loss/dev") for r in rs if net_of(r) == net and setting(r, "optimizer.lr") == lr]
                plots.mean_band(ax_l, curves, colors[net], f"{net} lr {lr}", ls=ls)
        ax_l.axhline(np.log(10), color="0.5", ls=":", lw=1)
        ax_l.set_title("dev loss per epoch (dotted: ln 10, chance)", fontsize=10)
        ax_l.set_xlabel("epoch")
        ax_l.grid(alpha=0.3)
        ax_l.legend(fontsize=7)
    fig.suptitle(
        "top: 30 ReLU layers of 64, xavier_normal vs he_normal; bottom: 5 tanh layers of 256, "
        "U(±1/√n) vs xavier_uniform (digits; mean over 3 seeds, band min–max)",
        fontsize=11,
    )
    return fig


def summary(numbers: dict) -> list[str]:
    lines = ["| net | lr | train loss (last epoch) | dev accuracy | statuses |", "|---|---|---|---|---|"]
    for net, per_lr in numbers["nets"].items():
        for lr, r in per_lr.items():
            lines.append(
                f"| {net} | {lr} | {_s(r['train_loss'])} | {_s(r['dev_accuracy'])} | {', '.join(r['statuses'])} |"
            )
    lines += [
        "",
        "| net | act std layer 1 (init) | act std last layer (init) | grad std layer 1 / last (init) | "
        f"act std last layer (trained, lr {numbers['probe_lr']}) |",
        "|---|---|---|---|---|",
    ]
    for net, d in numbers["layers"].items():
        i, t = d.get("init", {}), d.get("trained", {})
        lines.append(
            f"| {net} | {_s(i.get('first_act_std'))} | {_s(i.get('last_act_std'))} | "
            f"{_s(i.get('first_over_last_grad'))} | {_s(t.get('last_act_std'))} |"
        )
    return lines


def _s(d: dict | None) -> str:
    if not d or not d.get("n"):
        return "n/a"
    m, lo, hi = d["mean"], d["min"], d["max"]
    if 0 < abs(m) < 1e-3 or abs(m) >= 1e4:
        return f"{m:.2e} ({lo:.1e}–{hi:.1e})"
    return f"{m:.4f} ({lo:.4f}–{hi:.4f})" if d["n"] > 1 else f"{m:.4f}"
