"""Gallery 9, regularisation seen: the overfit-moons net with no regularisation, L2, dropout and
both — the decision boundaries side by side, and the train/dev gap (accuracy and loss) over
three seeds."""

from __future__ import annotations

from pathlib import Path

from torchprac.gallery import plots
from torchprac.gallery.sweep import Spread, group, job_dir, metric, runs, setting

PRESET = "gallery_regularization"
REGS = ("[]", "[l2]", "[dropout]", "[l2,dropout]")
BOUNDARY_SEED = "42"


def reg_of(run) -> str:
    return (setting(run, "reg", "[]") or "[]").replace(" ", "")


def measure(root: Path) -> dict:
    by = group(runs(root), reg_of)
    out: dict = {"regs": {}}
    for reg in REGS:
        rs = by.get(reg, [])
        acc = {s: [metric(r, s, "accuracy") for r in rs] for s in ("train", "dev")}
        loss = {s: [metric(r, s, "loss") for r in rs] for s in ("train", "dev")}
        out["regs"][reg] = {
            "train_accuracy": Spread.of(acc["train"]).to_dict(),
            "dev_accuracy": Spread.of(acc["dev"]).to_dict(),
            "accuracy_gap": Spread.of(t - d for t, d in zip(acc["train"], acc["dev"]) if None not in (t, d)).to_dict(),
            "train_loss": Spread.of(loss["train"]).to_dict(),
            "dev_loss": Spread.of(loss["dev"]).to_dict(),
            "loss_gap": Spread.of(d - t for t, d in zip(loss["train"], loss["dev"]) if None not in (t, d)).to_dict(),
            "statuses": [r.status for r in rs],
        }
    return out


def draw(root: Path, numbers: dict):
    by = group(runs(root), reg_of)
    fig = plots.figure(18, 8.2)
    top, bottom = fig.subfigures(2, 1, height_ratios=[1.1, 1])
    for ax, reg in zip(top.subplots(1, 4), REGS):
        run = next((r for r in by.get(reg, []) if setting(r, "trainer.seed") == BOUNDARY_SEED), None)
        if run is None or run.status == "diverged":
            plots.no_data(ax, f"reg={reg}: no run with seed {BOUNDARY_SEED}")
            continue
        acc = f"train {metric(run, 'train', 'accuracy'):.3f} / dev {metric(run, 'dev', 'accuracy'):.3f}"
        plots.run_boundary(ax, job_dir(root, run), f"reg={reg}: {acc}")
    top.suptitle(f"decision boundaries, seed {BOUNDARY_SEED} (80 training dots, 200 dev crosses)", fontsize=11)
    ax_acc, ax_loss = bottom.subplots(1, 2)
    for ax, key, what in ((ax_acc, "accuracy", "accuracy"), (ax_loss, "loss", "cross-entropy loss")):
        vals_t = [[metric(r, "train", key) for r in by.get(reg, [])] for reg in REGS]
        vals_d = [[metric(r, "dev", key) for r in by.get(reg, [])] for reg in REGS]
        labels = [f"reg={reg}" for reg in REGS]
        plots.strip(ax, labels, vals_d, colors=[plots.class_color(3)] * len(REGS))
        for i, v in enumerate(vals_t):
            v = [x for x in v if x is not None]
            ax.scatter([i + 0.3] * len(v), v, marker="o", facecolor="none", edgecolor="k", s=30, zorder=3)
        ax.scatter([], [], color=plots.class_color(3), label="dev (bar: mean)")
        ax.scatter([], [], marker="o", facecolor="none", edgecolor="k", label="train")
        ax.set_ylabel(what)
        ax.set_title(f"train vs dev {what}, every seed", fontsize=10)
        ax.legend(fontsize=8)
    ax_loss.set_yscale("log")
    return fig


def summary(numbers: dict) -> list[str]:
    lines = [
        "| reg | train accuracy | dev accuracy | train − dev accuracy | train loss | dev loss | dev − train loss |",
        "|---|---|---|---|---|---|---|",
    ]
    for reg, r in numbers["regs"].items():
        cells = [
            _s(r[k]) for k in ("train_accuracy", "dev_accuracy", "accuracy_gap", "train_loss", "dev_loss", "loss_gap")
        ]
        lines.append(f"| `{reg}` | " + " | ".join(cells) + " |")
    return lines


def _s(d: dict) -> str:
    if not d.get("n"):
        return "n/a"
    return f"{d['mean']:.3f} ({d['min']:.3f}–{d['max']:.3f})"
