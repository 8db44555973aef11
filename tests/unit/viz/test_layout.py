"""The run's figures place their axes at fixed margins (no layout engine, for speed): checked by
what a reader would see go wrong — a label cut at the figure's edge, or two labels drawn over
each other — in their hardest cases (long class names, a sweep's long run-name titles, ten
layers of activations)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from torchprac.viz import figures as F  # noqa: E402
from torchprac.viz.activations import LayerActivations  # noqa: E402

FASHION = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
RUN_NAME = "optimizer=adam,scheduler=onecycle,reg=[l2,dropout],trainer.seed=3"


def _texts(fig) -> list:
    """(text, pixel box) of every text the renderer drew (tick labels outside the view are made
    but not drawn), except a confusion matrix's cell values, which sit inside its image."""
    from unittest import mock

    from matplotlib.text import Text

    drawn = []
    real = Text.draw

    def draw(self, renderer):
        if self.get_visible() and self.get_text().strip() and not (self.axes and self in self.axes.texts):
            drawn.append(self)
        return real(self, renderer)

    with mock.patch.object(Text, "draw", draw):
        F.to_rgb(fig)
    renderer = fig.canvas.get_renderer()
    return [(t, t.get_window_extent(renderer)) for t in drawn]


def _apart(a, b) -> bool:
    """Two texts slanted alike (rotated tick labels) are apart when their baselines are at least
    a line apart; their upright boxes overlap whenever they are close."""
    angle = np.deg2rad(a.get_rotation())
    normal = np.array([-np.sin(angle), np.cos(angle)])
    pa, pb = (t.get_transform().transform(t.get_position()) for t in (a, b))
    px = a.get_fontsize() * a.figure.dpi / 72
    return abs(float((pa - pb) @ normal)) >= 0.9 * px


def _check(fig) -> None:
    w, h = fig.canvas.get_width_height()
    texts = _texts(fig)
    assert texts
    for t, box in texts:
        assert box.x0 >= -1 and box.y0 >= -1 and box.x1 <= w + 1 and box.y1 <= h + 1, f"{t.get_text()!r} cut: {box}"
    for (ta, a), (tb, b) in itertools.combinations(texts, 2):
        if ta.get_rotation() == tb.get_rotation() != 0 and _apart(ta, tb):
            continue
        inter_w = min(a.x1, b.x1) - max(a.x0, b.x0)
        inter_h = min(a.y1, b.y1) - max(a.y0, b.y0)
        assert inter_w <= 1 or inter_h <= 1, f"{ta.get_text()!r} overlaps {tb.get_text()!r}"


@pytest.mark.parametrize(
    "k, names, title",
    [(10, None, "dev"), (10, FASHION, f"{RUN_NAME}: dev"), (2, None, f"{RUN_NAME}: test"), (3, ["a", "b", "c"], "")],
)
def test_confusion_matrix_labels_fit_and_do_not_overlap(k, names, title):
    rng = np.random.default_rng(0)
    y = rng.integers(0, k, 300)
    fig = F.confusion_matrix(y, np.where(rng.random(300) < 0.8, y, 0), k, title=title, class_names=names)
    _check(fig)


@pytest.mark.parametrize("title", ["", "learning curves", f"{RUN_NAME}: learning curves"])
@pytest.mark.parametrize("classification", [True, False])
def test_learning_curves_labels_fit_and_do_not_overlap(title, classification):
    hist = []
    for e in range(1, 31):
        h = {"epoch": e, "loss/train": 2.0 / e, "loss/dev": 2.2 / e + 0.01 * e}
        if classification:
            h |= {"metric/accuracy_train": 1 - 0.3 / e, "metric/accuracy_dev": 0.95 - 0.3 / e}
        hist.append(h)
    _check(F.learning_curves(hist, best_epoch=12, early_stopped=True, title=title))


def _layer(i: int, steps: int = 40, bins: int = 32) -> LayerActivations:
    rng = np.random.default_rng(i)
    return LayerActivations(
        name=f"layer{i + 1}",
        act="Sigmoid",
        natural_range=(0.0, 1.0),
        steps=list(range(1, 10 * steps, 10)),
        numel=[1000] * steps,
        counts=rng.integers(0, 100, (steps, bins)).astype(float),
        lo=np.zeros(steps),
        hi=np.ones(steps),
        mean=rng.random(steps),
        std=rng.random(steps) + 0.1,
        saturated=rng.random(steps),
    )


@pytest.mark.parametrize("n", [1, 2, 10])
def test_activations_overview_labels_fit_and_do_not_overlap(n):
    layers = [_layer(i) for i in range(n)]
    _check(F.activations_overview(layers, title=f"{RUN_NAME}: activations per layer"))
