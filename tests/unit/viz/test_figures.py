"""The figures, checked by what they show: pixels of a known boundary, counts of a known
confusion matrix, the plotted curves and gaps of a known history."""

from __future__ import annotations

import io

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from torchprac.viz import figures as F  # noqa: E402


def _pixel(fig, rgb: np.ndarray, ax, x: float, y: float) -> np.ndarray:
    """The rendered colour (0..1) at data point (x, y) of `ax`."""
    dx, dy = ax.transData.transform((x, y))
    h = rgb.shape[0]
    return rgb[int(round(h - dy)), int(round(dx))] / 255.0


def _linear(w: np.ndarray, b: float, scale: float = 50.0):
    """A hand-set linear classifier: P(class 1) = sigmoid(scale * (w.x + b))."""

    def proba(x: np.ndarray) -> np.ndarray:
        p1 = 1 / (1 + np.exp(-scale * (x @ w + b)))
        return np.c_[1 - p1, p1]

    return proba


def test_boundary_pixels_on_either_side_of_a_known_line_have_the_two_class_colours():
    # Line x1 + x2 = 0.5: class 1 above it. Points only in two far corners, so the probed pixels
    # show the background (the predicted region), not a marker.
    rng = np.random.default_rng(0)
    x0 = rng.uniform(-2.0, -1.6, (30, 2))
    x1 = rng.uniform(1.6, 2.0, (30, 2))
    x = np.r_[x0, x1]
    y = np.r_[np.zeros(30, int), np.ones(30, int)]
    fig = F.decision_boundary(_linear(np.array([1.0, 1.0]), -0.5), x, y, x[::3], y[::3])
    rgb = F.to_rgb(fig)
    ax = fig.axes[0]
    for px, py in [(-1.0, 0.0), (0.0, -1.0), (-0.5, -0.5), (1.6, -1.6), (-1.8, 1.2)]:
        assert px + py < 0.5 - 0.3
        assert np.allclose(_pixel(fig, rgb, ax, px, py), F.region_rgb(0), atol=0.03), (px, py)
    for px, py in [(1.0, 0.5), (0.5, 1.0), (1.0, 1.0), (-1.0, 1.9), (1.9, -1.0)]:
        assert px + py > 0.5 + 0.3
        assert np.allclose(_pixel(fig, rgb, ax, px, py), F.region_rgb(1), atol=0.03), (px, py)
    # the two colours differ clearly, and the black boundary line runs through (0.25, 0.25)
    assert np.abs(F.region_rgb(0) - F.region_rgb(1)).max() > 0.3
    near = [_pixel(fig, rgb, ax, 0.25 + d, 0.25 - d) for d in np.linspace(-1, 1, 9)]
    assert min(p.sum() for p in near) < 0.6  # a dark pixel on the line at each probe


def test_boundary_grid_covers_train_and_dev_points():
    xx, yy = F.boundary_grid([np.array([[0.0, 0.0], [1.0, 2.0]]), np.array([[-3.0, 5.0]])], n=11)
    assert xx.min() < -3 and xx.max() > 1 and yy.min() < 0 and yy.max() > 5
    assert xx.shape == (11, 11)


def test_multiclass_boundary_regions_are_the_argmax_class():
    # three classes split by x1 < -1, -1 <= x1 < 1, x1 >= 1
    def proba(x):
        logits = np.stack([-((x[:, 0] + 2) ** 2), -((x[:, 0]) ** 2), -((x[:, 0] - 2) ** 2)], 1) * 20
        e = np.exp(logits - logits.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)

    x = np.array([[-3.0, -3.0], [3.0, 3.0], [0.0, 3.0]])
    y = np.array([0, 2, 1])
    fig = F.decision_boundary(proba, x, y)
    rgb = F.to_rgb(fig)
    ax = fig.axes[0]
    for px, cls in ((-2.5, 0), (0.0, 1), (2.5, 2)):
        assert np.allclose(_pixel(fig, rgb, ax, px, -1.0), F.region_rgb(cls), atol=0.03), cls


def test_confusion_of_known_predictions_equals_the_expected_counts():
    y_true = np.array([0, 0, 0, 0, 1, 1, 1, 2, 2, 2])
    y_pred = np.array([0, 0, 1, 2, 1, 1, 0, 2, 2, 2])
    expected = np.array([[2, 1, 1], [1, 2, 0], [0, 0, 3]])
    assert (F.confusion(y_true, y_pred, 3) == expected).all()
    norm = F.confusion(y_true, y_pred, 3, normalize="true")
    assert np.allclose(norm, expected / expected.sum(1, keepdims=True))
    assert F.per_class_accuracy(y_true, y_pred, 3) == pytest.approx([0.5, 2 / 3, 1.0])
    # a class that never occurs: a row of zeros, accuracy None
    assert F.per_class_accuracy(y_true, y_pred, 4)[3] is None
    fig = F.confusion_matrix(y_true, y_pred, 3, title="dev")
    shown = np.asarray(fig.axes[0].images[0].get_array())
    assert np.allclose(shown, norm)  # the picture is normalised by true class
    texts = sorted(t.get_text() for t in fig.axes[0].texts)
    assert "0.50" in texts and "1.00" in texts and "0.67" in texts
    assert "accuracy 0.700" in fig.axes[0].get_title()
    # a number on exactly the cells with examples: the three empty ones stay blank
    visible = [t.get_position() for t in fig.axes[0].texts if t.get_visible()]
    shown_cells = {(round(y), round(x)) for x, y in visible}
    assert shown_cells == {(i, j) for i in range(3) for j in range(3) if expected[i, j]}


def test_confusion_cells_under_half_a_percent_read_less_than_a_percent():
    y_true = np.zeros(400, dtype=int)
    y_pred = np.zeros(400, dtype=int)
    y_pred[0] = 1  # 1 of 400 = 0.0025: "0.00" would read as none
    fig = F.confusion_matrix(np.r_[y_true, 1], np.r_[y_pred, 1], 2)
    visible = {t.get_text() for t in fig.axes[0].texts if t.get_visible()}
    assert visible == {"1.00", "<.01"}  # row 0: 0.9975 and 0.0025; row 1: 1.00 and an empty cell


def _history():
    h = []
    for e in range(1, 11):
        h.append(
            {
                "epoch": e,
                "loss/train": 1.0 / e,
                "loss/dev": 1.0 / e + 0.05 * e,
                "metric/accuracy_train": 0.5 + 0.045 * e,
                "metric/accuracy_dev": 0.5 + 0.03 * e,
            }
        )
    del h[3]["loss/train"]  # an epoch whose last logging step was its last step: no train entry
    return h


def test_learning_curves_plot_the_history_and_draw_the_gaps():
    h = _history()
    fig = F.learning_curves(h, best_epoch=6, early_stopped=True, bayes_error=0.1)
    ax_loss, ax_err = fig.axes[:2]
    lines = {ln.get_label(): ln for ln in ax_loss.lines + ax_err.lines}
    ep, v = lines["train loss"].get_data()
    assert list(ep) == [1, 2, 3, 5, 6, 7, 8, 9, 10]  # the missing epoch is skipped
    assert np.allclose(v, [1.0 / e for e in ep])
    ep, v = lines["dev error"].get_data()
    assert np.allclose(v, [0.5 - 0.03 * e for e in ep])
    assert lines["best epoch 6"].get_xdata()[0] == 6
    assert lines["early stop (epoch 10)"].get_xdata()[0] == 10
    assert lines["Bayes error 0.1"].get_ydata()[0] == pytest.approx(0.1)
    # gaps at the best epoch: train error 0.5 - 0.27 = 0.23, dev error 0.32
    texts = [t.get_text() for t in ax_err.texts]
    assert f"avoidable bias {0.23 - 0.1:.3f}" in texts
    assert f"variance {0.32 - 0.23:.3f} (at epoch 6)" in texts
    # with the final evaluation given, the gaps are its numbers
    final = {"train": {"accuracy": 0.9}, "dev": {"accuracy": 0.8}}
    fig = F.learning_curves(h, best_epoch=6, bayes_error=0.05, final=final)
    texts = [t.get_text() for t in fig.axes[1].texts]
    assert "avoidable bias 0.050" in texts and "variance 0.100 (at epoch 6)" in texts


def test_rendered_figure_and_png_round_trip():
    from PIL import Image

    fig = F.learning_curves(_history(), best_epoch=3)
    rgb = F.to_rgb(fig)
    w, h = fig.get_size_inches() * fig.dpi
    assert rgb.shape == (round(h), round(w), 3) and rgb.dtype == np.uint8
    back = np.asarray(Image.open(io.BytesIO(F.png_bytes(rgb))).convert("RGB"))
    assert (back == rgb).all()


def test_add_png_logs_what_add_image_logs_from_the_same_bytes(tmp_path):
    """TensorBoard gets the file's own PNG bytes: same size, same pixels as add_image's image."""
    from PIL import Image
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from torch.utils.tensorboard import SummaryWriter

    rgb = F.to_rgb(F.learning_curves(_history(), best_epoch=3))
    png = F.png_bytes(rgb)
    with SummaryWriter(str(tmp_path)) as w:
        F.add_png(w, "figures/ours", png, rgb.shape, 7)
        w.add_image("figures/torch", rgb, 7, dataformats="HWC")
    ea = EventAccumulator(str(tmp_path), size_guidance={"images": 0}).Reload()
    (ours,), (ref,) = ea.Images("figures/ours"), ea.Images("figures/torch")
    assert ours.encoded_image_string == png  # not encoded again
    assert (ours.step, ours.width, ours.height) == (ref.step, ref.width, ref.height) == (7, rgb.shape[1], rgb.shape[0])
    for ev in (ours, ref):
        assert (np.asarray(Image.open(io.BytesIO(ev.encoded_image_string)).convert("RGB")) == rgb).all()


def test_publish_writes_the_same_png_to_the_file_and_tensorboard(tmp_path, monkeypatch):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from torch.utils.tensorboard import SummaryWriter

    renders = []
    real = F.to_rgb
    monkeypatch.setattr(F, "to_rgb", lambda fig: renders.append(fig) or real(fig))
    fig = F.learning_curves(_history(), best_epoch=3)
    with SummaryWriter(str(tmp_path / "tb")) as w:
        png = F.publish(fig, tmp_path / "figures" / "lc.png", w, "figures/lc", 4)
    assert len(renders) == 1  # rendered once for both
    assert (tmp_path / "figures" / "lc.png").read_bytes() == png
    (ev,) = EventAccumulator(str(tmp_path / "tb"), size_guidance={"images": 0}).Reload().Images("figures/lc")
    assert (ev.encoded_image_string, ev.step) == (png, 4)
    assert F.publish(fig) == png  # neither a file nor a writer: the bytes alone
    assert sorted(p.name for p in tmp_path.rglob("*.png")) == ["lc.png"]


def test_save_png_writes_a_readable_file(tmp_path):
    from PIL import Image

    fig = F.confusion_matrix(np.array([0, 1]), np.array([0, 1]), 2)
    path = F.save_png(fig, tmp_path / "sub" / "c.png")
    assert Image.open(path).size == tuple(round(v) for v in fig.get_size_inches() * fig.dpi)
    assert [p.name for p in path.parent.iterdir()] == ["c.png"]  # no temp file left


def test_learning_curves_of_a_regression_run_show_the_loss_alone():
    h = [{"epoch": e, "loss/train": 1.0 / e, "loss/dev": 2.0 / e, "metric/rmse_dev": 1.0} for e in (1, 2, 3)]
    fig = F.learning_curves(h, best_epoch=3, final={"train": {"loss": 0.3}, "dev": {"loss": 0.6}})
    assert len(fig.axes) == 1
    lines = {ln.get_label(): ln for ln in fig.axes[0].lines}
    assert np.allclose(lines["dev loss"].get_ydata(), [2.0, 1.0, 2 / 3])
