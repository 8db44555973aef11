"""Gallery 2, normalising inputs: batch gradient descent on softmax regression over the wine
data, with raw features (standard deviations 0.12 to 314) and standardised ones. Raw, the cost
is a ravine (condition number ~1e7): the lr must be tiny for the steep direction and then the
flat ones barely move; standardised, it is nearly round and a large lr reaches the target in
a few steps. The figure adds the course's contour picture: J over two weights, same axes."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from torchprac.gallery import plots
from torchprac.gallery.sweep import Spread, first_below, group, job_config, job_dir, runs, series, setting

PRESET = "gallery_normalize"
TARGET = 0.3  # training loss to reach (from ln 3 = 1.0986 at zero weights)


def norm_of(run) -> str:
    return "normalized" if str(setting(run, "data.normalize", "true")).lower() == "true" else "raw"


def steps_to_target(run) -> int | None:
    """Steps taken before the training loss is at or below TARGET (epoch e's train loss is the
    loss before its one gd step, so e - 1 steps); None: never within the run."""
    ep, v = series(run, "loss/train")
    e = first_below(ep, v, TARGET)
    return None if e is None else e - 1


def train_arrays(job: Path) -> tuple[np.ndarray, np.ndarray]:
    from torchprac.data import build_data

    rc = job_config(job)
    splits = build_data(rc.data, seed=rc.trainer.seed, device=torch.device("cpu"))
    return splits.train.x.numpy().astype(np.float64), splits.train.y.numpy()


def condition_number(x: np.ndarray) -> float:
    """κ of softmax regression's Hessian at W = 0 (uniform p), restricted to the directions that
    change the predictions: (1/3 I - 1/9 11ᵀ) ⊗ E[x̃x̃ᵀ], x̃ = [x, 1], so κ = κ(E[x̃x̃ᵀ])."""
    xt = np.c_[x, np.ones(len(x))]
    ev = np.linalg.eigvalsh(xt.T @ xt / len(xt))
    return float(ev[-1] / ev[0])


def softmax_loss(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Mean cross-entropy of logits x @ w (w: (..., features, classes)), no bias."""
    z = np.einsum("nf,...fc->...nc", x, w)
    z = z - z.max(-1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(-1, keepdims=True))
    return -np.take_along_axis(logp, y[None, :, None].repeat(len(w), 0) if w.ndim == 3 else y[:, None], -1).mean(-2)[
        ..., 0
    ]


def measure(root: Path) -> dict:
    rs = runs(root)
    out: dict = {"target": TARGET, "configs": {}}
    for (norm, lr), grs in sorted(group(rs, lambda r: (norm_of(r), float(setting(r, "optimizer.lr")))).items()):
        steps = [steps_to_target(r) for r in grs]
        finals = [(series(r, "loss/train")[1] or [math.nan])[-1] for r in grs]
        out["configs"].setdefault(norm, {})[f"{lr:g}"] = {
            "steps": steps,
            "reached": sum(s is not None for s in steps),
            "final_train_loss": Spread.of(finals).to_dict(),
            "statuses": [r.status for r in grs],
        }
    for norm, per_lr in out["configs"].items():
        reached = [(max(v["steps"]), float(lr)) for lr, v in per_lr.items() if v["reached"] == len(v["steps"])]
        lowest = min(per_lr, key=lambda k: per_lr[k]["final_train_loss"]["mean"])
        out.setdefault("best", {})[norm] = {
            "lr": min(reached)[1] if reached else float(lowest),
            "steps": min(reached)[0] if reached else None,
            "final_train_loss": per_lr[f"{min(reached)[1]:g}" if reached else lowest]["final_train_loss"],
        }
    job = {norm_of(r): r for r in rs}
    for norm, r in job.items():
        x, _ = train_arrays(job_dir(root, r))
        out.setdefault("kappa", {})[norm] = condition_number(x)
        out.setdefault("feature_rms", {})[norm] = [float(v) for v in np.sqrt((x**2).mean(0))]
    return out


def draw(root: Path, numbers: dict):
    rs = runs(root)
    fig = plots.figure(17, 4.6)
    ax_c, ax_s, ax_raw, ax_norm = fig.subplots(1, 4)
    colors = {"raw": plots.class_color(3), "normalized": plots.class_color(2)}
    by = group(rs, lambda r: (norm_of(r), float(setting(r, "optimizer.lr"))))
    for norm in ("raw", "normalized"):
        best = numbers["best"][norm]["lr"]
        curves = [series(r, "loss/train") for r in by.get((norm, best), [])]
        curves = [([e - 1 for e in ep], v) for ep, v in curves]
        plots.mean_band(ax_c, curves, colors[norm], f"{norm}, its best lr {best:g}")
        same = 1e-5
        if norm == "normalized" or best != same:
            curves = [([e - 1 for e in ep], v) for ep, v in (series(r, "loss/train") for r in by.get((norm, same), []))]
            plots.mean_band(ax_c, curves, colors[norm], f"{norm}, lr {same:g}", ls="--")
    ax_c.axhline(TARGET, color="k", ls=":", lw=1, label=f"target {TARGET}")
    ax_c.set_yscale("log")
    ax_c.set_ylim(top=20)
    ax_c.set_xlabel("gd step")
    ax_c.set_ylabel("training loss")
    ax_c.set_title("training loss per step (3 seeds)", fontsize=10)
    ax_c.legend(fontsize=7)
    ax_c.grid(alpha=0.3)
    for norm, per_lr in numbers["configs"].items():
        lrs = [float(k) for k in per_lr]
        st = [np.mean(v["steps"]) if v["reached"] == len(v["steps"]) else np.nan for v in per_lr.values()]
        fin = [v["final_train_loss"]["mean"] for v in per_lr.values()]
        ax_s.plot(lrs, st, "o-", color=colors[norm], label=f"{norm}: steps to {TARGET}")
        ax_s.plot(lrs, fin, "x:", color=colors[norm], label=f"{norm}: loss after 300 steps")
    ax_s.set_xscale("log")
    ax_s.set_yscale("log")
    ax_s.set_xlabel("learning rate")
    ax_s.set_title(f"steps to loss {TARGET} (o; missing: never) and final loss (x)", fontsize=10)
    ax_s.legend(fontsize=7)
    ax_s.grid(alpha=0.3)
    job = {norm_of(r): r for r in rs}
    raw_rms = np.asarray(numbers["feature_rms"]["raw"])
    big, small = int(np.argmax(raw_rms)), int(np.argmin(raw_rms))  # the raw data's largest and smallest scales
    names = _feature_names()
    for ax, norm in ((ax_raw, "raw"), (ax_norm, "normalized")):
        x, y = train_arrays(job_dir(root, job[norm]))
        rms = np.sqrt((x**2).mean(0))
        a = np.linspace(-3, 3, 241)
        aa, bb = np.meshgrid(a, a)  # aa: weight of the small feature, bb: of the large one (class 0)
        w = np.zeros((aa.size, x.shape[1], 3))
        w[:, small, 0], w[:, big, 0] = aa.ravel(), bb.ravel()
        jj = softmax_loss(x, y, w).reshape(aa.shape)
        ax.contour(aa, bb, jj, levels=np.quantile(jj, np.linspace(0.02, 0.98, 14)), cmap="viridis", linewidths=1)
        ax.plot(0, 0, "ko", ms=4)
        ax.set_aspect("equal")
        ax.set_xlabel(f"w[{names[small]}] (rms {rms[small]:.3g})")
        ax.set_ylabel(f"w[{names[big]}] (rms {rms[big]:.3g})")
        ax.set_title(f"{norm}: J over two weights, κ = {numbers['kappa'][norm]:.3g}", fontsize=10)
    fig.suptitle(
        "wine, softmax regression by batch gradient descent from W = 0 (data.normalize=false|true)", fontsize=11
    )
    return fig


def _feature_names() -> list[str]:
    from sklearn.datasets import load_wine

    return list(load_wine().feature_names)


def summary(numbers: dict) -> list[str]:
    lines = [
        f"| inputs | lr | steps to train loss {numbers['target']} (per seed) | train loss after 300 steps |",
        "|---|---|---|---|",
    ]
    for norm, per_lr in numbers["configs"].items():
        for lr, v in per_lr.items():
            st = ", ".join("never" if s is None else str(s) for s in v["steps"])
            f = v["final_train_loss"]
            lines.append(f"| {norm} | {lr} | {st} | {f['mean']:.4g} ({f['min']:.4g}–{f['max']:.4g}) |")
    lines.append("")
    for norm, b in numbers["best"].items():
        lines.append(
            f"- {norm}: best lr {b['lr']:g}, steps {b['steps'] if b['steps'] is not None else 'never (in 300)'}, "
            f"κ(E[x̃x̃ᵀ]) = {numbers['kappa'][norm]:.3g}"
        )
    return lines
