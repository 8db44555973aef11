"""Gallery 11, learning-rate schedules (Géron ch. 11): constant, power, exponential, piecewise,
performance (plateau) and 1cycle on a Fashion-MNIST subset with the same net, optimizer, lr0 and
budget: dev accuracy per epoch, and at the end of the budget."""

from __future__ import annotations

from pathlib import Path

from torchprac.gallery import plots
from torchprac.gallery.sweep import Spread, group, metric, runs, series, setting

PRESET = "gallery_schedules"
SCHEDULES = ("constant", "power", "exponential", "piecewise", "plateau", "onecycle")
CHECKPOINTS = (3, 5)  # also report dev accuracy after these epochs (a shorter budget, same schedules)


def schedule_of(run) -> str:
    return setting(run, "gallery.schedule", "constant")


def measure(root: Path) -> dict:
    by = group(runs(root), schedule_of)
    out: dict = {"schedules": {}}
    for name in SCHEDULES:
        rs = by.get(name, [])
        if not rs:
            continue
        acc_at = {}
        for e in CHECKPOINTS:
            vals = []
            for r in rs:
                ep, v = series(r, "metric/accuracy_dev")
                vals.append(dict(zip(ep, v)).get(e))
            acc_at[str(e)] = Spread.of(vals).to_dict()
        out["schedules"][name] = {
            "dev_accuracy": Spread.of(metric(r, "dev", "accuracy") for r in rs).to_dict(),
            "test_accuracy": Spread.of(metric(r, "test", "accuracy") for r in rs).to_dict(),
            "dev_loss": Spread.of(metric(r, "dev", "loss") for r in rs).to_dict(),
            "dev_accuracy_at_epoch": acc_at,
            "final_lr": Spread.of((series(r, "lr/weights")[1] or [None])[-1] for r in rs).to_dict(),
            "statuses": [r.status for r in rs],
        }
    return out


def draw(root: Path, numbers: dict):
    by = group(runs(root), schedule_of)
    fig = plots.figure(16, 4.8)
    ax_lr, ax_acc, ax_fin = fig.subplots(1, 3)
    names = [n for n in SCHEDULES if n in by]
    for i, name in enumerate(names):
        c = plots.class_color(i)
        plots.mean_band(ax_lr, [series(r, "lr/weights") for r in by[name][:1]], c, name, marker=".")
        plots.mean_band(ax_acc, [series(r, "metric/accuracy_dev") for r in by[name]], c, name, marker=".")
    ax_lr.set_yscale("log")
    ax_lr.set_title("learning rate at each epoch end (weights group)", fontsize=10)
    ax_acc.set_title("dev accuracy per epoch (mean, band min–max over seeds)", fontsize=10)
    for ax in (ax_lr, ax_acc):
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    ax_acc.legend(fontsize=8)
    plots.strip(ax_fin, names, [[metric(r, "dev", "accuracy") for r in by[n]] for n in names])
    ax_fin.set_title("dev accuracy after 10 epochs, every seed (bar: mean)", fontsize=10)
    ax_fin.tick_params(axis="x", rotation=20)
    fig.suptitle(
        "Fashion-MNIST (6 000 training images), MLP 128-64, nesterov lr0 0.05, batch 64, 10 epochs, 3 seeds",
        fontsize=11,
    )
    return fig


def summary(numbers: dict) -> list[str]:
    head = " | ".join(f"dev acc. epoch {e}" for e in CHECKPOINTS)
    lines = [
        f"| schedule | {head} | dev accuracy, epoch 10 | test accuracy | dev loss | final lr |",
        "|---|" + "---|" * (len(CHECKPOINTS) + 4),
    ]
    for name, s in numbers["schedules"].items():
        at = " | ".join(_s(s["dev_accuracy_at_epoch"][str(e)]) for e in CHECKPOINTS)
        lines.append(
            f"| {name} | {at} | {_s(s['dev_accuracy'])} | {_s(s['test_accuracy'])} | {_s(s['dev_loss'])} | "
            f"{s['final_lr']['mean']:.3g} |"
        )
    return lines


def _s(d: dict) -> str:
    if not d.get("n"):
        return "n/a"
    return f"{d['mean']:.4f} ({d['min']:.4f}–{d['max']:.4f})"
