"""Small figure helpers shared by the gallery entries (matplotlib's object API, as in viz)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from torchprac.viz.figures import _figure, class_color

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["figure", "class_color", "strip", "mean_band", "no_data"]


def figure(width: float, height: float) -> Figure:
    return _figure(width, height)


def strip(ax, labels: Sequence[str], values: Sequence[Sequence[float]], colors: Sequence[str] | None = None) -> None:
    """Every seed as a dot, the mean as a black bar, one column per label."""
    rng = np.random.default_rng(0)
    for i, ys in enumerate(values):
        ys = [y for y in ys if y is not None and np.isfinite(y)]
        c = colors[i] if colors else class_color(i)
        if ys:
            ax.scatter(i + rng.uniform(-0.1, 0.1, len(ys)), ys, s=30, color=c, alpha=0.85, zorder=3)
            ax.hlines(np.mean(ys), i - 0.28, i + 0.28, color="k", lw=2, zorder=4)
    ax.set_xticks(range(len(labels)), labels, fontsize=8)
    ax.set_xlim(-0.6, len(labels) - 0.4)
    ax.grid(alpha=0.3, axis="y")


def mean_band(ax, curves: Sequence[tuple[Sequence[float], Sequence[float]]], color: str, label: str, **kw) -> None:
    """The mean of several (x, y) curves at each x (over the curves that have it: a diverged
    seed stops early), with a min–max band."""
    curves = [(list(x), list(y)) for x, y in curves if len(x)]
    if not curves:
        return
    at: dict[float, list[float]] = {}
    for x, y in curves:
        for a, b in zip(x, y):
            at.setdefault(float(a), []).append(float(b))
    xs = np.asarray(sorted(at))
    ys = [np.asarray(at[x]) for x in xs]
    ax.plot(
        xs,
        [v.mean() for v in ys],
        color=color,
        **kw,
        label=label + (f" ({len(curves)} seeds)" if len(curves) > 1 else ""),
    )
    if len(curves) > 1:
        ax.fill_between(xs, [v.min() for v in ys], [v.max() for v in ys], color=color, alpha=0.18, lw=0)


def no_data(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, fontsize=9, color="0.4")


def run_boundary(ax, job: Path, title: str) -> None:
    """The decision boundary of a finished 2-D gallery job (its best weights), train dots and
    dev crosses, titled `title`."""
    import torch

    from torchprac.gallery.sweep import job_model
    from torchprac.viz.callback import predict_proba_fn
    from torchprac.viz.figures import decision_boundary

    _, splits, model = job_model(job, trained=True)
    model.eval()
    train, dev = splits.train, splits.dev
    decision_boundary(
        predict_proba_fn(model, torch.device("cpu")),
        train.x.numpy(),
        train.y.numpy(),
        dev.x.numpy(),
        dev.y.numpy(),
        grid=150,
        title=title,
        ax=ax,
    )
    ax.set_title(ax.get_title(), fontsize=10)
