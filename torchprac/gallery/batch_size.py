"""Gallery 3, batch size: batch gradient descent (batch = m), mini-batches and single examples
with the same model, optimizer and lr, for the same number of passes over the data: loss per
epoch and per second, time per epoch, and steps and seconds to a target training loss."""

from __future__ import annotations

import math
from pathlib import Path

from torchprac.gallery import plots
from torchprac.gallery.sweep import Spread, first_below, group, metric, runs, series

PRESET = "gallery_batch_size"
TARGET = 0.3  # training loss (the mean over an epoch)


def batch_of(run) -> int:
    """The batch the run used (hparams record min(batch_size, m))."""
    return int(run.metrics.get("hparams", {}).get("batch_size", 0))


def m_of(rs) -> int:
    return max(batch_of(r) for r in rs)  # the full-batch run's batch is the training split's size


def label(b: int, m: int) -> str:
    return f"batch = m = {b} (gd)" if b == m else ("batch 1 (sgd)" if b == 1 else f"mini-batch {b}")


def measure(root: Path) -> dict:
    rs = runs(root)
    m = m_of(rs)
    out: dict = {"target": TARGET, "m": m, "configs": {}}
    for b, grs in sorted(group(rs, batch_of).items(), reverse=True):
        per_epoch = math.ceil(m / b)
        sec = [r.metrics["timing"]["fit_s"] / max(r.metrics["epochs_run"], 1) for r in grs]
        epochs = [first_below(*series(r, "loss/train"), TARGET) for r in grs]
        out["configs"][label(b, m)] = {
            "batch": b,
            "steps_per_epoch": per_epoch,
            "seconds_per_epoch": Spread.of(sec).to_dict(),
            "epochs_to_target": epochs,
            "steps_to_target": [None if e is None else e * per_epoch for e in epochs],
            "seconds_to_target": [None if e is None else e * s for e, s in zip(epochs, sec)],
            "final_train_loss": Spread.of(metric(r, "train", "loss") for r in grs).to_dict(),
            "dev_accuracy": Spread.of(metric(r, "dev", "accuracy") for r in grs).to_dict(),
        }
    return out


def draw(root: Path, numbers: dict):
    rs = runs(root)
    m = numbers["m"]
    fig = plots.figure(16, 4.6)
    ax_e, ax_t, ax_d = fig.subplots(1, 3)
    for i, (b, grs) in enumerate(sorted(group(rs, batch_of).items(), reverse=True)):
        c, name = plots.class_color(i), label(b, m)
        sec = numbers["configs"][name]["seconds_per_epoch"]["mean"]
        plots.mean_band(ax_e, [series(r, "loss/train") for r in grs], c, name, marker=".")
        tcurves = [
            ([e * r.metrics["timing"]["fit_s"] / r.metrics["epochs_run"] for e in ep], v)
            for r in grs
            for ep, v in [series(r, "loss/train")]
        ]
        for j, (t, v) in enumerate(tcurves):
            ax_t.plot(t, v, ".-", color=c, lw=1, ms=3, label=f"{name}: {sec * 1000:.0f} ms/epoch" if j == 0 else None)
        plots.mean_band(ax_d, [series(r, "loss/dev") for r in grs], c, name, marker=".")
    for ax in (ax_e, ax_t, ax_d):
        ax.axhline(TARGET, color="k", ls=":", lw=1)
        ax.set_yscale("log")
        ax.grid(alpha=0.3)
    ax_e.set_xlabel("epoch (passes over the data)")
    ax_e.set_title(f"training loss (epoch mean; dotted: target {TARGET})", fontsize=10)
    ax_t.set_xscale("log")
    ax_t.set_xlabel("seconds of training (epoch × time per epoch, log)")
    ax_t.set_title("training loss against wall time (each seed)", fontsize=10)
    ax_d.set_xlabel("epoch")
    ax_d.set_title("dev loss at each epoch end", fontsize=10)
    ax_e.legend(fontsize=8)
    ax_t.legend(fontsize=8)
    fig.suptitle(f"digits (m = {m}), MLP 128-64, plain sgd lr 0.05, 20 epochs, 1 thread, 3 seeds", fontsize=11)
    return fig


def summary(numbers: dict) -> list[str]:
    t = numbers["target"]
    lines = [
        f"| batch | steps/epoch | time/epoch (s) | epochs to loss {t} | steps to it | seconds to it | "
        "train loss after 20 epochs | dev accuracy |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, c in numbers["configs"].items():
        s = c["seconds_per_epoch"]

        def per_seed(xs, fmt="{}"):
            return ", ".join("never" if x is None else fmt.format(x) for x in xs)

        lines.append(
            f"| {name} | {c['steps_per_epoch']} | {s['mean']:.4f} ({s['min']:.4f}–{s['max']:.4f}) | "
            f"{per_seed(c['epochs_to_target'])} | {per_seed(c['steps_to_target'])} | "
            f"{per_seed(c['seconds_to_target'], '{:.2f}')} | {c['final_train_loss']['mean']:.4f} | "
            f"{c['dev_accuracy']['mean']:.3f} |"
        )
    return lines
