"""Gallery 1, why nonlinearity: a deep net with identity activations is an affine map
x -> W_L...W_1 x + b (one matrix), so on the circles it is no better than logistic regression,
while the same net with ReLU separates them."""

from __future__ import annotations

from pathlib import Path

import torch

from torchprac.gallery import plots
from torchprac.gallery.sweep import Spread, group, job_dir, job_model, metric, runs, series, setting

PRESET = "gallery_nonlinearity"
CONFIGS = ("identity net", "logistic regression", "relu net")


def label(run) -> str:
    if setting(run, "model.hidden") == "[]":
        return "logistic regression"  # whatever the activation: there is no hidden layer to apply it to
    return f"{setting(run, 'activation')} net"


def collapse_affine(model: torch.nn.Module, n_in: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(W, b), W of shape (inputs, outputs), of the one affine map x -> x @ W + b that an
    identity-activation net computes: its outputs at 0 and at the unit vectors."""
    with torch.no_grad():
        b = model(torch.zeros(1, n_in))[0]
        w = model(torch.eye(n_in)) - b
    return w, b


def measure(root: Path) -> dict:
    rs = runs(root)
    by = group(rs, label)
    out: dict = {"configs": {}}
    for name in CONFIGS:
        seen, dev, train, tl = set(), [], [], []
        for r in by.get(name, []):
            seed = setting(r, "trainer.seed")
            if seed in seen:  # hidden=[] ran once per activation: the same model, counted once
                continue
            seen.add(seed)
            dev.append(metric(r, "dev", "accuracy"))
            train.append(metric(r, "train", "accuracy"))
            tl.append(metric(r, "train", "loss"))
        out["configs"][name] = {
            "dev_accuracy": Spread.of(dev).to_dict(),
            "train_accuracy": Spread.of(train).to_dict(),
            "train_loss": Spread.of(tl).to_dict(),
            "statuses": [r.status for r in by.get(name, [])],
        }
    # The identity net is one affine map: its outputs equal x @ W + b for the collapsed (W, b).
    ident = next((r for r in by.get("identity net", []) if r.status == "completed"), None)
    if ident is not None:
        _, splits, model = job_model(job_dir(root, ident), trained=True)
        model.eval()
        x = splits.dev.x
        w, b = collapse_affine(model, x.shape[1])
        with torch.no_grad():
            err = (model(x) - (x @ w + b)).abs().max().item()
        out["identity_affine_max_error"] = err
    return out


def draw(root: Path, numbers: dict):
    rs = runs(root)
    by = group(rs, label)
    fig = plots.figure(15, 8.4)
    top, bottom = fig.subfigures(2, 1, height_ratios=[1.15, 1])
    axes = top.subplots(1, 3)
    for ax, name in zip(axes, CONFIGS):
        run = next((r for r in by.get(name, []) if r.status == "completed" and setting(r, "trainer.seed") == "0"), None)
        if run is None:
            plots.no_data(ax, f"{name}: no completed seed-0 run")
            continue
        acc = metric(run, "dev", "accuracy")
        plots.run_boundary(ax, job_dir(root, run), f"{name} (seed 0): dev accuracy {acc:.3f}")
    top.suptitle("decision boundaries (dots: train, crosses: dev)", fontsize=11)
    ax_acc, ax_loss = bottom.subplots(1, 2)
    vals = []
    for name in CONFIGS:
        seen, v = set(), []
        for r in by.get(name, []):
            if setting(r, "trainer.seed") not in seen:
                seen.add(setting(r, "trainer.seed"))
                v.append(metric(r, "dev", "accuracy"))
        vals.append(v)
    plots.strip(ax_acc, CONFIGS, vals)
    ax_acc.axhline(0.5, color="0.5", ls=":", lw=1, label="chance (0.5)")
    ax_acc.set_ylabel("dev accuracy (last epoch)")
    ax_acc.set_title("dev accuracy per seed (bar: mean)", fontsize=10)
    ax_acc.legend(fontsize=8)
    for i, name in enumerate(CONFIGS):
        curves, seen = [], set()
        for r in by.get(name, []):
            if setting(r, "trainer.seed") not in seen:
                seen.add(setting(r, "trainer.seed"))
                curves.append(series(r, "loss/dev"))
        plots.mean_band(ax_loss, curves, plots.class_color(i), name)
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("dev loss")
    ax_loss.set_yscale("log")
    ax_loss.axhline(0.6931, color="0.5", ls=":", lw=1)
    ax_loss.set_title("dev loss (mean, band: min–max over seeds); dotted: ln 2", fontsize=10)
    ax_loss.grid(alpha=0.3)
    ax_loss.legend(fontsize=8)
    return fig


def summary(numbers: dict) -> list[str]:
    lines = ["| model | dev accuracy | train accuracy | train loss |", "|---|---|---|---|"]
    for name, c in numbers["configs"].items():
        cells = [Spread(**_sp(c[k])).text(3) for k in ("dev_accuracy", "train_accuracy", "train_loss")]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    if "identity_affine_max_error" in numbers:
        lines.append(
            f"identity net vs its collapsed affine map: max |difference| {numbers['identity_affine_max_error']:.2e}"
        )
    return lines


def _sp(d: dict) -> dict:
    return {"mean": d["mean"], "std": d["std"], "lo": d["min"], "hi": d["max"], "n": d["n"]}
