"""The range test's figure: loss and smoothed loss vs lr (log x), each suggestion marked."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from torchprac.tune.lr_find import RangeTest

_COLORS = {"steepest": "tab:orange", "valley": "tab:green", "minimum/10": "tab:purple"}


def plot_range_test(test: RangeTest, title: str = "learning-rate range test") -> Figure:
    """A matplotlib Figure (Agg canvas: no display needed; matplotlib imported only here)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4.2), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.plot(test.lrs, test.losses, color="0.75", lw=1, label="loss")
    ax.plot(test.lrs, test.smoothed, color="tab:blue", lw=2, label="smoothed loss")
    for s in test.suggestions:
        best = s is test.recommended
        ax.axvline(
            s.lr, color=_COLORS.get(s.name, "k"), ls="-" if best else "--", lw=2 if best else 1,
            label=f"{s.name} {s.lr:.2g}" + (" (recommended)" if best else ""),
        )  # fmt: skip
    if test.stop_lr is not None:
        ax.axvline(test.stop_lr, color="tab:red", ls=":", lw=1, label=f"stopped ({test.stop}) {test.stop_lr:.2g}")
    smooth = [v for v in test.smoothed if math.isfinite(v)]
    if smooth:  # from the lowest loss to twice the starting one: the blow-up would flatten the rest
        lo = min(smooth + [v for v in test.losses if math.isfinite(v)])
        hi = min(max(smooth), 2 * max(smooth[0], lo))
        if hi > lo:
            ax.set_ylim(lo - 0.05 * (hi - lo), hi + 0.1 * (hi - lo))
    ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
