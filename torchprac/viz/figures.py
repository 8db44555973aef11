"""The figures that teach, as pure functions of plain arrays returning a matplotlib Figure:
decision boundaries of 2-D data, confusion matrices, learning curves with the bias/variance
gaps, and activations per layer (Glorot & Bengio's distributions at the first and last step,
fastai's "colorful dimension", dead/saturated fractions). `to_rgb` turns a figure into the
HxWx3 uint8 array TensorBoard's add_image takes, `save_png`/`png_bytes` write it, `add_png` logs
those PNG bytes to TensorBoard without encoding them again, and `publish` does all three for a
figure: rendered and encoded once, to a file and/or TensorBoard.

matplotlib is imported inside the functions (a run that draws nothing never pays for it) and
only its object API is used (matplotlib.figure.Figure, no pyplot): no global state, no GUI
backend, figures are freed with their last reference."""

from __future__ import annotations

import io
import math
import os
import tempfile
import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from torchprac.viz.activations import LayerActivations

# Class colours (matplotlib's tab10): the points of class i and the regions predicted as i.
CLASS_COLORS = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)
REGION_ALPHA = 0.75  # opacity of the predicted-class background over white
DPI = 100
CHAR_IN = 0.085  # mean width (inches) of a character of 10-point DejaVu Sans, for fixed margins
# An explicit title height: matplotlib otherwise measures the axis's tick labels at every draw
# to lift the title over top-side labels these figures never have (0.4 of 0.84 s for the
# activations figure).
TITLE_Y = 1.0
STATS_MARGINS = dict(left=0.8, right=0.2, bottom=0.55, top=0.35, wgap=0.65)  # activation_stats


def _figure(width: float, height: float, layout: str | None = "constrained") -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=DPI, layout=layout)


# The figures every run draws (confusion matrices, learning curves, activations) place their axes
# at fixed margins in inches: a layout engine measures every tick label before drawing, which
# cost as much again as the drawing itself (0.9 of 1.9 s per run) and is paid by every job of a
# sweep. The margins fit the labels these figures have; the gallery and sweep-report figures,
# drawn once, keep constrained layout.
def _grid_kw(
    width: float,
    height: float,
    left: float,
    right: float,
    bottom: float,
    top: float,
    cols: int = 1,
    wgap: float = 0.0,
    rows: int = 1,
    hgap: float = 0.0,
) -> dict[str, float]:
    """GridSpec keywords putting the axes `left`/`right`/`bottom`/`top` inches from the edges of
    a width x height (inches) area with `wgap`/`hgap` inches between columns/rows (GridSpec's
    wspace/hspace are fractions of the mean axes width/height)."""
    aw = max((width - left - right - (cols - 1) * wgap) / cols, 1e-3)
    ah = max((height - bottom - top - (rows - 1) * hgap) / rows, 1e-3)
    return dict(
        left=left / width,
        right=1 - right / width,
        bottom=bottom / height,
        top=1 - top / height,
        wspace=wgap / aw,
        hspace=hgap / ah,
    )


def _wrap(text: str, width: float, fontsize: float = 10) -> str:
    """`text` broken into lines that fit a `width`-inch figure at `fontsize` points."""
    per_line = max(int((width - 0.4) / (CHAR_IN * fontsize / 10)), 20)
    return "\n".join(textwrap.wrap(text, per_line)) if len(text) > per_line else text


def _top(heading: str, fontsize: float = 10) -> float:
    """Top margin (inches) that leaves room for a title of heading's lines above the axes."""
    return 0.2 + (heading.count("\n") + 1) * fontsize * 1.25 / 72


def _fixed(width: float, height: float, **margins: float) -> Figure:
    """A figure without layout engine whose fig.subplots() axes sit at `margins` (see _grid_kw)."""
    fig = _figure(width, height, layout=None)
    fig.subplots_adjust(**_grid_kw(width, height, **margins))
    return fig


def _band(fig: Figure, y0: float, y1: float, cols: int, rows: int = 1, **margins: float):
    """A GridSpec over the horizontal band y0..y1 (inches from the figure's bottom), its axes
    `margins` inches inside the band (see _grid_kw)."""
    w, h = fig.get_size_inches()
    kw = _grid_kw(w, y1 - y0, rows=rows, cols=cols, **margins)
    kw["bottom"], kw["top"] = (y0 + kw["bottom"] * (y1 - y0)) / h, (y0 + kw["top"] * (y1 - y0)) / h
    return fig.add_gridspec(rows, cols, **kw)


def class_color(i: int) -> str:
    return CLASS_COLORS[i % len(CLASS_COLORS)]


def region_rgb(i: int, alpha: float = REGION_ALPHA) -> np.ndarray:
    """The RGB (0..1) that a confidently predicted region of class i shows on the white page."""
    from matplotlib.colors import to_rgb

    return alpha * np.asarray(to_rgb(class_color(i))) + (1 - alpha) * np.ones(3)


# -- figure -> pixels / files -------------------------------------------------------------------
def to_rgb(fig: Figure) -> np.ndarray:
    """The rendered figure as an (H, W, 3) uint8 array (TensorBoard add_image, dataformats="HWC")."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def png_bytes(image: Figure | np.ndarray) -> bytes:
    """PNG of a figure, or of an (H, W, 3) array already rendered by to_rgb (no second render)."""
    from PIL import Image  # matplotlib's own dependency

    buf = io.BytesIO()
    Image.fromarray(image if isinstance(image, np.ndarray) else to_rgb(image)).save(buf, format="PNG")
    return buf.getvalue()


def save_png(image: Figure | np.ndarray | bytes, path: str | Path) -> Path:
    """Write a figure, a to_rgb array or PNG bytes (png_bytes) as a PNG file atomically: a killed
    run never leaves half an image."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = image if isinstance(image, bytes) else png_bytes(image)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 would hide the picture from other users
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def add_png(writer: Any, tag: str, png: bytes, shape: Sequence[int], step: int) -> None:
    """Log PNG bytes (png_bytes of an (H, W, 3) array of `shape`) as the TensorBoard image `tag`.

    add_image would convert the pixels to float and back and encode the same PNG again: ~40 ms
    for a confusion matrix, ~170 ms for the activations figure, paid on every run's figures.
    This writes the summary add_image writes, with the bytes already encoded for figures/."""
    from tensorboard.compat.proto.summary_pb2 import Summary

    h, w = int(shape[0]), int(shape[1])
    image = Summary.Image(height=h, width=w, colorspace=3, encoded_image_string=png)
    # add_image's own route to the event file (SummaryWriter._get_file_writer, in torch since 1.1)
    writer._get_file_writer().add_summary(Summary(value=[Summary.Value(tag=tag, image=image)]), step)


def publish(fig: Figure, path: str | Path | None = None, writer: Any = None, tag: str = "", step: int = 0) -> bytes:
    """Render `fig` once and encode it once: the PNG file at `path`, the TensorBoard image `tag`
    at `step` (with `writer`); returns the PNG bytes."""
    rgb = to_rgb(fig)
    png = png_bytes(rgb)
    if path is not None:
        save_png(png, path)
    if writer is not None:
        add_png(writer, tag, png, rgb.shape, step)
    return png


# -- decision boundary ----------------------------------------------------------------------------
def boundary_grid(points: Sequence[np.ndarray], n: int = 200, margin: float = 0.1) -> tuple[np.ndarray, ...]:
    """(xx, yy) of an n x n grid covering every point, with a margin of `margin` of the range."""
    allp = np.concatenate([np.asarray(p, dtype=np.float64).reshape(-1, 2) for p in points if len(p)])
    lo, hi = allp.min(0), allp.max(0)
    pad = margin * np.maximum(hi - lo, 1e-6)
    xs = np.linspace(lo[0] - pad[0], hi[0] + pad[0], n)
    ys = np.linspace(lo[1] - pad[1], hi[1] + pad[1], n)
    return np.meshgrid(xs, ys)


def decision_boundary(
    predict_proba: Callable[[np.ndarray], np.ndarray],
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_dev: np.ndarray | None = None,
    y_dev: np.ndarray | None = None,
    *,
    grid: int = 200,
    title: str = "",
    ax=None,
) -> Figure:
    """The course's picture: the model's predicted class over a grid covering the data, shaded
    by its confidence (pale where it hesitates, the class colour where it is sure), the boundary
    between the predicted classes as a black line, training points as dots and dev points as
    crosses in their true class colour. `predict_proba`: (N, 2) array -> (N, k) probabilities."""
    from matplotlib.lines import Line2D

    x_train, y_train = np.asarray(x_train), np.asarray(y_train).astype(int)
    has_dev = x_dev is not None and y_dev is not None and len(x_dev)
    pts = [x_train] + ([np.asarray(x_dev)] if has_dev else [])
    xx, yy = boundary_grid(pts, grid)
    proba = np.asarray(predict_proba(np.c_[xx.ravel(), yy.ravel()]), dtype=np.float64)
    k = proba.shape[1]
    pred = proba.argmax(1).reshape(xx.shape)
    conf = proba.max(1).reshape(xx.shape)
    # Opacity grows from 0 at chance level (1/k) to REGION_ALPHA when the model is sure.
    alpha = REGION_ALPHA * np.clip((conf - 1 / k) / (1 - 1 / k), 0, 1)
    colors = np.stack([region_rgb(i, 1.0) for i in range(k)])
    rgb = alpha[..., None] * colors[pred] + (1 - alpha[..., None])

    fig = None
    if ax is None:  # fixed margins: the layout engine would double the cost of an image drawn every few epochs
        fig = _figure(5.2, 4.6, layout=None)
        fig.subplots_adjust(left=0.12, right=0.97, bottom=0.1, top=0.93)
        ax = fig.add_subplot()
    extent = (xx[0, 0], xx[0, -1], yy[0, 0], yy[-1, 0])
    ax.imshow(rgb, origin="lower", extent=extent, aspect="auto", interpolation="nearest")
    if k > 1 and len(np.unique(pred)) > 1:
        ax.contour(xx, yy, pred, levels=np.arange(k - 1) + 0.5, colors="k", linewidths=1.2)
    for i in range(k):
        m = y_train == i
        ax.scatter(*x_train[m].T, s=16, c=class_color(i), edgecolors="k", linewidths=0.5, zorder=3)
        if has_dev:
            md = np.asarray(y_dev).astype(int) == i
            ax.scatter(*np.asarray(x_dev)[md].T, s=22, c=class_color(i), marker="x", linewidths=1.2, zorder=3)
    ax.set_xlim(extent[0], extent[1])
    ax.set_ylim(extent[2], extent[3])
    ax.set_xlabel("x1")
    ax.set_ylabel("x2")
    handles = [Line2D([], [], ls="", marker="o", mfc="w", mec="k", label=f"train ({len(x_train)})")]
    if has_dev:
        handles.append(Line2D([], [], ls="", marker="x", color="k", label=f"dev ({len(x_dev)})"))
    ax.legend(handles=handles, loc="upper right", fontsize=8, framealpha=0.8)
    if title:
        ax.set_title("\n".join(textwrap.wrap(title, 60)), fontsize=10 if len(title) <= 60 else 8, y=TITLE_Y)
    return fig if fig is not None else ax.figure


# -- confusion matrix -------------------------------------------------------------------------------
def confusion(y_true: np.ndarray, y_pred: np.ndarray, k: int, normalize: str | None = None) -> np.ndarray:
    """k x k confusion matrix (rows: true class, columns: predicted); normalize="true" divides
    each row by its class count (a class absent from y_true keeps a row of zeros)."""
    from sklearn.metrics import confusion_matrix as sk_confusion

    return sk_confusion(np.asarray(y_true), np.asarray(y_pred), labels=list(range(k)), normalize=normalize)


def per_class_accuracy(y_true: np.ndarray, y_pred: np.ndarray, k: int) -> list[float | None]:
    """Accuracy on the examples of each true class (recall); None for a class with no example."""
    counts = confusion(y_true, y_pred, k)
    n = counts.sum(1)
    return [float(counts[i, i] / n[i]) if n[i] else None for i in range(k)]


def confusion_matrix(
    y_true: np.ndarray, y_pred: np.ndarray, k: int, *, title: str = "", class_names: Sequence[str] | None = None
) -> Figure:
    """The confusion matrix normalised by true class (each row sums to 1), drawn by sklearn's
    ConfusionMatrixDisplay: the diagonal is each class's accuracy."""
    from sklearn.metrics import ConfusionMatrixDisplay

    cm = confusion(y_true, y_pred, k, normalize="true")
    side = min(2.8 + 0.42 * k, 10)
    labels = list(class_names) if class_names is not None else [str(i) for i in range(k)]
    acc = float(np.mean(np.asarray(y_true) == np.asarray(y_pred))) if len(y_true) else float("nan")
    # Fixed margins: left for "True label" and the widest class name, right for the colorbar's
    # labels; the image is square in what the colorbar (15% + 5% pad of the axes) leaves.
    width, widest = side + 1.0, min(max((len(s) for s in labels), default=1), 24)
    left, right = 0.5 + CHAR_IN * widest, 0.55
    image = min(0.8 * (width - left - right), side - 1.6)
    slanted = widest * CHAR_IN > 0.9 * image / k  # class names wider than their column
    bottom = 0.6 + (0.71 * CHAR_IN * widest if slanted else 0.0)
    heading = _wrap(f"{title + ': ' if title else ''}normalised by true class (accuracy {acc:.3f})", image + 0.4)
    fig = _fixed(width, side - 0.6 + bottom, left=left, right=right, bottom=bottom, top=_top(heading))
    ax = fig.add_subplot()
    shown = ConfusionMatrixDisplay(cm, display_labels=labels).plot(
        ax=ax, cmap="Blues", values_format=".2f" if k <= 12 else None, include_values=k <= 12, colorbar=True
    )
    # Only the cells with examples carry a number: the mistakes stand out instead of 90 "0.00"s
    # (and drawing the texts was a third of the figure's time). A share under 0.005 reads "<.01".
    if shown.text_ is not None:
        for (i, j), text in np.ndenumerate(shown.text_):
            if cm[i, j] == 0:
                text.set_visible(False)
            elif cm[i, j] < 0.005:
                text.set_text("<.01")
    if slanted:
        for label in ax.get_xticklabels():
            label.set(rotation=45, ha="right", rotation_mode="anchor")
    ax.images[0].set_clim(0, 1)
    ax.set_title(heading, fontsize=10, y=TITLE_Y)
    return fig


# -- learning curves --------------------------------------------------------------------------------
def _series(history: Sequence[dict[str, Any]], key: str) -> tuple[np.ndarray, np.ndarray]:
    """(epochs, values) of the history entries that have `key` and a finite value."""
    ep, val = [], []
    for i, h in enumerate(history):
        v = h.get(key)
        if isinstance(v, (int, float)) and math.isfinite(v):
            ep.append(h.get("epoch", i + 1))
            val.append(float(v))
    return np.asarray(ep, dtype=float), np.asarray(val, dtype=float)


def _at(ep: np.ndarray, val: np.ndarray, epoch: float) -> float | None:
    if not len(ep):
        return None
    return float(val[int(np.argmin(np.abs(ep - epoch)))])


def learning_curves(
    history: Sequence[dict[str, Any]],
    best_epoch: int | None = None,
    early_stopped: bool = False,
    bayes_error: float = 0.0,
    *,
    final: dict[str, dict[str, float]] | None = None,
    title: str = "",
) -> Figure:
    """Train and dev loss (left) and error = 1 - accuracy (right) against epochs (1-based, as in
    the history's "epoch"). The best epoch (the weights the run reports) is a dashed line, an
    early stop a red dotted one. On the error panel, as the course draws them: the Bayes error
    (data.bayes_error) as a level, and at the best epoch the avoidable bias (train error -
    Bayes error) and the variance (dev error - train error) as labelled brackets. `final`:
    metrics.json's "metrics" (the final evaluation), used for the gaps when given."""
    has_acc = any(len(_series(history, f"metric/accuracy_{s}")[0]) for s in ("train", "dev"))
    width = 10.5 if has_acc else 5.5
    title = _wrap(title, width, fontsize=10)
    top = _top(title) if title else 0.2
    fig = _fixed(width, 4.0, left=0.8, right=0.2, bottom=0.55, top=top, cols=2 if has_acc else 1, wgap=0.9)
    ax_loss, ax_err = fig.subplots(1, 2) if has_acc else (fig.subplots(), None)
    axes = [ax_loss] + ([ax_err] if has_acc else [])
    styles = {"train": dict(color="#1f77b4"), "dev": dict(color="#d62728")}
    for split in ("train", "dev"):
        ep, v = _series(history, f"loss/{split}")
        ax_loss.plot(ep, v, label=f"{split} loss", marker="." if len(ep) < 40 else None, **styles[split])
        if has_acc:
            ep, a = _series(history, f"metric/accuracy_{split}")
            ax_err.plot(ep, 1 - a, label=f"{split} error", marker="." if len(ep) < 40 else None, **styles[split])
    last = max((h.get("epoch", i + 1) for i, h in enumerate(history)), default=0)
    for ax in axes:
        if best_epoch is not None and best_epoch > 0:
            ax.axvline(best_epoch, color="k", ls="--", lw=1, label=f"best epoch {best_epoch}")
        if early_stopped and last:
            ax.axvline(last, color="r", ls=":", lw=1.5, label=f"early stop (epoch {last})")
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    ax_loss.set_ylabel("cross-entropy loss" if has_acc else "loss")
    ax_loss.legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    if not has_acc:  # regression: no error rate to split into bias and variance here
        return fig
    ax_err.set_ylabel("error = 1 - accuracy")
    ax_err.axhline(bayes_error, color="0.4", lw=1, label=f"Bayes error {bayes_error:g}")

    at = best_epoch if best_epoch else last
    f_tr, f_dv = ((final or {}).get(s, {}).get("accuracy") for s in ("train", "dev"))
    if f_tr is not None and f_dv is not None:
        tr, dv = 1 - f_tr, 1 - f_dv
    else:
        tr = _at(*_series(history, "metric/accuracy_train"), at)
        dv = _at(*_series(history, "metric/accuracy_dev"), at)
        tr, dv = (None if tr is None else 1 - tr), (None if dv is None else 1 - dv)
    if at and tr is not None and dv is not None:
        side = -1 if at > (1 + last) / 2 else 1  # labels on the side away from the arrows (left if they are right)
        _bracket(ax_err, at, tr, dv, f"variance {dv - tr:.3f} (at epoch {at})", "#9467bd", side)
        _bracket(ax_err, at, bayes_error, tr, f"avoidable bias {tr - bayes_error:.3f}", "#2ca02c", side)
    ax_err.legend(fontsize=8, loc="upper right")
    return fig


def _bracket(ax, x: float, y0: float, y1: float, label: str, color: str, side: int) -> None:
    """A vertical double arrow from y0 to y1 at x (the course's gap arrows), its label in a
    column at the side of the chart (`side` -1: left, 1: right), away from small gaps' arrows."""
    ax.annotate("", xy=(x, y1), xytext=(x, y0), arrowprops=dict(arrowstyle="<->", color=color, lw=1.8))
    row = len([t for t in ax.texts if t.get_text()])
    ax.text(
        0.03 if side < 0 else 0.97,
        0.62 - 0.08 * row,
        label,
        transform=ax.transAxes,
        ha="left" if side < 0 else "right",
        color=color,
        fontsize=9,
        fontweight="bold",
        bbox=dict(facecolor="white", edgecolor="none", alpha=0.8, pad=1),
    )


# -- activations ------------------------------------------------------------------------------------
def _log_y(ax) -> None:
    """Log y axis with a few labelled decades (matplotlib's default labels every minor tick of a
    wide range, which is most of a figure's drawing time)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullLocator

    ax.set_yscale("log")
    ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0), numticks=8))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))  # 0.002, 1, 2: not 2x10^0
    ax.yaxis.set_minor_locator(NullLocator())


def _layer_colors(n: int) -> list:
    from matplotlib import colormaps

    cmap = colormaps["viridis"]
    return [cmap(i / max(n - 1, 1) * 0.9) for i in range(n)]


def heatmap_range(layer: LayerActivations) -> tuple[float, float]:
    """The value range of a layer's heat map: the activation's own range for sigmoid (0, 1)
    and tanh (-1, 1), so a collapse to a point is seen as one; else all samples' min to max."""
    if layer.natural_range is not None:
        return layer.natural_range
    lo, hi = float(np.min(layer.lo)), float(np.max(layer.hi))
    return (lo, hi) if hi > lo else (lo - 0.5, hi + 0.5)


def rebin(counts: np.ndarray, lo: float, hi: float, lo2: float, hi2: float, bins2: int) -> np.ndarray:
    """Counts of uniform bins on [lo, hi] moved to `bins2` uniform bins on [lo2, hi2] (each
    bin's count goes to the bin of its centre; the totals are kept)."""
    counts = np.asarray(counts, dtype=np.float64)
    b = len(counts)
    centres = np.full(b, lo) if hi <= lo else lo + (np.arange(b) + 0.5) * (hi - lo) / b
    centres = np.clip(centres, lo2, hi2)
    out, _ = np.histogram(centres, bins=bins2, range=(lo2, hi2), weights=counts)
    return out


def colorful_dimension_data(layer: LayerActivations, bins: int | None = None) -> tuple[np.ndarray, tuple]:
    """(image, (lo, hi)): log(1 + counts), one column per sampled step, one row per value bin
    (row 0 = lowest value), the layer's histograms moved onto one common range."""
    bins = bins or layer.counts.shape[1]
    lo2, hi2 = heatmap_range(layer)
    cols = [rebin(c, lo, hi, lo2, hi2, bins) for c, lo, hi in zip(layer.counts, layer.lo, layer.hi)]
    return np.log1p(np.stack(cols, axis=1)), (lo2, hi2)


def activation_distributions(layers: Sequence[LayerActivations], axes=None) -> Figure:
    """Glorot & Bengio's figure: each layer's activation distribution (density of the recorded
    histogram) at the first and at the last sampled step, side by side, one line per layer
    (darker = earlier layer)."""
    fig = None
    if axes is None:
        fig = _fixed(10.5, 3.6, left=0.85, right=0.2, bottom=0.55, top=0.35, cols=2, wgap=0.3)
        axes = fig.subplots(1, 2, sharex=True, sharey=True)
    colors = _layer_colors(len(layers))
    for ax, which, name in ((axes[0], 0, "first"), (axes[1], -1, "last")):
        step = None
        for layer, c in zip(layers, colors):
            if not len(layer.steps):
                continue
            step = layer.steps[which]
            edges, density = layer.density(which)
            ax.stairs(density, edges, color=c, lw=1.4, label=f"{layer.name} ({layer.act})")
        ax.set_title(f"{name} sampled step" + (f" ({step})" if step is not None else ""), fontsize=10, y=TITLE_Y)
        ax.set_xlabel("activation value")
        _log_y(ax)
        ax.grid(alpha=0.3)
    ranges = {layer.natural_range for layer in layers}
    if len(ranges) == 1 and None not in ranges:  # sigmoid (0, 1), tanh (-1, 1): a collapse shows as a spike
        axes[0].set_xlim(*ranges.pop())
    axes[0].set_ylabel("density (log)")
    axes[1].legend(fontsize=7, loc="best")
    return fig if fig is not None else axes[0].figure


def colorful_dimension(layers: Sequence[LayerActivations], axes=None, bins: int | None = None) -> Figure:
    """fastai's "colorful dimension": per layer, a heat map of the histogram of its activations
    (rows: value, columns: sampled training steps), colour = log(1 + count)."""
    fig = None
    if axes is None:
        n = max(len(layers), 1)
        fig = _fixed(max(3.0 * n, 4.0), 3.2, left=0.8, right=0.2, bottom=0.55, top=0.35, cols=n, wgap=0.6)
        axes = np.atleast_1d(fig.subplots(1, n, squeeze=False)[0])
    for ax, layer in zip(axes, layers):
        if not len(layer.steps):
            continue
        img, (lo, hi) = colorful_dimension_data(layer, bins)
        s0, s1 = float(layer.steps[0]), float(layer.steps[-1])
        ax.imshow(img, origin="lower", aspect="auto", cmap="viridis", extent=(s0, s1 if s1 > s0 else s0 + 1, lo, hi))
        ax.set_title(f"{layer.name} ({layer.act})", fontsize=9, y=TITLE_Y)
        ax.set_xlabel("step")
    if len(layers):
        axes[0].set_ylabel("activation value")
    return fig if fig is not None else axes[0].figure


def activation_stats(layers: Sequence[LayerActivations], axes=None) -> Figure:
    """Per layer against the sampled steps: the mean, the standard deviation (log scale: a
    collapse towards 0 falls off the chart, self-normalising nets stay at 1) and the fraction
    of dead units (ReLU family: input <= 0 on the whole batch) or saturated ones (sigmoid/tanh:
    slope below 5% of its maximum)."""
    fig = None
    if axes is None:
        fig = _fixed(12.0, 3.4, cols=3, **STATS_MARGINS)
        axes = fig.subplots(1, 3)
    ax_m, ax_s, ax_d = axes
    colors = _layer_colors(len(layers))
    any_frac = False
    for layer, c in zip(layers, colors):
        ax_m.plot(layer.steps, layer.mean, color=c, label=layer.name)
        ax_s.plot(layer.steps, layer.std, color=c, label=layer.name)
        for frac, ls, what in ((layer.dead, "-", "dead"), (layer.saturated, "--", "saturated")):
            if frac is not None and np.isfinite(frac).any():
                ax_d.plot(layer.steps, frac, color=c, ls=ls, label=f"{layer.name} {what}")
                any_frac = True
    ax_m.set_title("activation mean", fontsize=10, y=TITLE_Y)
    ax_s.set_title("activation std (log)", fontsize=10, y=TITLE_Y)
    if any(np.any(np.asarray(layer.std) > 0) for layer in layers):  # all 0 (e.g. init=zeros): no log scale
        _log_y(ax_s)
    ax_d.set_title("dead (-) / saturated (--) fraction", fontsize=10, y=TITLE_Y)
    ax_d.set_ylim(-0.02, 1.02)
    if not any_frac:
        ax_d.text(0.5, 0.5, "no dead/saturated measure\nfor these activations", ha="center", va="center",
                  transform=ax_d.transAxes, fontsize=9, color="0.4")  # fmt: skip
    for ax in axes:
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    ax_m.legend(fontsize=7)
    if any_frac:
        ax_d.legend(fontsize=6)
    return fig if fig is not None else axes[0].figure


def activations_overview(layers: Sequence[LayerActivations], title: str = "") -> Figure:
    """One image per run: the distributions at the first and last sampled step, the colorful
    dimension of every layer, and mean / std / dead-or-saturated fraction over training."""
    n = max(len(layers), 1)
    cols = min(n, 8)
    rows_heat = math.ceil(n / cols)
    width = max(12.0, 2.2 * cols)
    title = _wrap(title, width, fontsize=11)
    # three bands, bottom to top: statistics over training, colorful dimension, distributions
    h_stats, h_heat, h_dist, h_title = 3.2, 2.5 * rows_heat, 3.4, _top(title, 11) if title else 0.0
    fig = _figure(width, h_stats + h_heat + h_dist + h_title, layout=None)
    y_heat, y_dist = h_stats, h_stats + h_heat
    dist = _band(fig, y_dist, y_dist + h_dist, 2, left=0.85, right=0.2, bottom=0.6, top=0.35, wgap=0.3)
    activation_distributions(layers, axes=dist.subplots(sharex=True, sharey=True))
    heat = _band(fig, y_heat, y_dist, cols, rows_heat, left=0.8, right=0.2, bottom=0.5, top=0.6, wgap=0.6, hgap=0.8)
    heat_axes = np.atleast_1d(heat.subplots(squeeze=False).ravel())
    colorful_dimension(layers, axes=heat_axes[: len(layers)])
    for ax in heat_axes[len(layers) :]:
        ax.set_visible(False)
    fig.text(
        0.5,
        (y_dist - 0.17) / fig.get_figheight(),
        "colorful dimension: histogram of activations over training (colour: log(1 + count))",
        ha="center",
        va="center",
        fontsize=10,
    )
    activation_stats(layers, axes=_band(fig, 0.0, h_stats, 3, **STATS_MARGINS).subplots())
    if title:
        fig.suptitle(title, fontsize=11, y=1 - 0.1 / fig.get_figheight())
    return fig
