"""VizCallback in a real Trainer: what lands in TensorBoard (boundary images at the cadence,
activation histograms equal to the recorder's samples, the epoch scalar, the custom-scalars
layout), the per-epoch log line, and the end-of-run figures/ folder."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import torch

pytest.importorskip("matplotlib")

from torchprac.data.splits import Split, Splits  # noqa: E402
from torchprac.nn.models import ModelSpec  # noqa: E402
from torchprac.train import Loop, Optimization, TBLogger, TensorBoardCallback, Trainer  # noqa: E402
from torchprac.viz.callback import VizCallback, epoch_line  # noqa: E402
from torchprac.viz.settings import ActivationSettings, VizSettings  # noqa: E402


def _moons(n: int, seed: int) -> Split:
    from sklearn.datasets import make_moons

    x, y = make_moons(n, noise=0.2, random_state=seed)
    return Split(torch.tensor(x, dtype=torch.float32), torch.tensor(y))


def _fit(tmp_path, settings: VizSettings, epochs: int = 5):
    torch.manual_seed(0)
    train, dev = _moons(256, 0), _moons(128, 1)
    model = ModelSpec("mlp", [16, 8]).make((2,), 2)
    logger = TBLogger(tmp_path)
    viz = VizCallback(settings, model, logger)
    trainer = Trainer(
        model,
        Optimization(torch.optim.SGD(model.parameters(), lr=0.2, momentum=0.9)),
        train,
        dev,
        Loop(epochs=epochs, batch_size=32, progress=False),
        callbacks=[TensorBoardCallback(logger, histograms=False), viz],
    )
    result = trainer.fit()
    logger.close()
    return trainer, viz, result, Splits(train, dev, None, (2,), 2)


def _events(path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    sizes = {"images": 0, "histograms": 0, "scalars": 0, "tensors": 0}
    return EventAccumulator(str(path), size_guidance=sizes).Reload()


def test_tensorboard_gets_boundaries_activations_epoch_and_layout(tmp_path):
    s = VizSettings(every_n_epochs=2, activations=ActivationSettings(every_n_steps=5, bins=12))
    trainer, viz, _, _ = _fit(tmp_path, s, epochs=5)
    ea = _events(tmp_path)
    # boundary images after epochs 2 and 4, and the final one at the end of fit
    imgs = ea.Images("figures/decision_boundary")
    assert [i.step for i in imgs] == [16, 32, 40]  # 8 steps per epoch
    assert imgs[0].width > 100 and imgs[0].height > 100
    assert viz.activations_picture().draw == "activations_overview"  # drawn with the run's figures
    # activation histograms: one per sampled step and layer, equal to the recorder's samples
    for h in viz.recorder.history:
        hist = ea.Histograms(f"activations/{h.name}")
        assert [e.step for e in hist] == h.steps == list(range(1, 41, 5))
        for e, lo, hi, n, counts in zip(hist, h.lo, h.hi, h.numel, h.counts):
            v = e.histogram_value
            assert v.min == pytest.approx(lo) and v.max == pytest.approx(hi) and v.num == n
            assert np.allclose(v.bucket[1:], counts)  # the leading empty bucket marks the left edge
    assert [e.value for e in ea.Scalars("epoch")] == [1, 2, 3, 4, 5]
    assert "custom_scalars__config__" in ea.Tags()["tensors"]


def test_epoch_log_line_off_a_terminal(tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="torchprac"):
        _fit(tmp_path, VizSettings(epoch_log=True, decision_boundary=False, activations=ActivationSettings(False)), 3)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("epoch ")]
    assert len(lines) == 3 and lines[0].startswith("epoch 1/3  train loss ")
    assert " dev loss " in lines[0] and " acc " in lines[0] and " lr 0.2 " in lines[0] and lines[0].endswith(" s")
    logs = {"loss/train": 0.5, "metric/accuracy_train": 0.75, "loss/dev": 0.25, "metric/accuracy_dev": 1.0}
    assert (
        epoch_line(2, 9, {**logs, "lr/weights": 0.05}, 1.25)
        == "epoch 2/9  train loss 0.5000 acc 0.7500  dev loss 0.2500 acc 1.0000  lr 0.05  1.2 s"
    )
    assert epoch_line(1, 1, {"loss/dev": 0.1}, 0.0) == "epoch 1/1  dev loss 0.1000  0.0 s"


def test_run_figures_and_per_class_accuracy(tmp_path):
    from PIL import Image

    from torchprac.viz.figures import per_class_accuracy
    from torchprac.viz.run_figures import write_run_figures

    s = VizSettings(activations=ActivationSettings(every_n_steps=3))
    trainer, viz, result, splits = _fit(tmp_path, s, epochs=3)
    out = {"epochs_run": 3, "metrics": {"train": {"accuracy": 0.9}, "dev": {"accuracy": 0.85}}}
    extra = write_run_figures(s, tmp_path, trainer.model, splits, result, out, 0.0, None, None, viz)
    names = sorted(p.name for p in (tmp_path / "figures").iterdir())
    assert names == ["activations.png", "confusion_dev.png", "decision_boundary.png", "learning_curves.png"]
    for n in names:
        assert min(Image.open(tmp_path / "figures" / n).size) > 100
    with torch.no_grad():
        pred = trainer.model(splits.dev.x).argmax(1).numpy()
    expected = per_class_accuracy(splits.dev.y.numpy(), pred, 2)
    assert extra == {"per_class_accuracy": {"dev": expected}}  # no test split here
    json.dumps(extra)  # plain JSON


def test_viz_settings_from_the_registry():
    from torchprac import registry
    from torchprac.errors import ConfigError

    s = registry.build("viz", {"name": "default", "every_n_epochs": 3, "activations": False})
    assert s.image_every(100) == 3 and s.activations.enabled is False
    auto = registry.build("viz", {"name": "default"})
    assert auto.image_every(100) == 10 and auto.image_every(3) == 1
    assert auto.activations.every(938 * 30) == 282  # about 100 samples over the run
    assert auto.activations.every(938) == 16  # but never more than one step in 16
    with pytest.raises(ConfigError, match="viz.every_n_epochs"):
        registry.build("viz", {"name": "default", "every_n_epochs": 0})
    with pytest.raises(ConfigError, match="viz.activations.bins"):
        registry.build("viz", {"name": "default", "activations": {"bins": 1}})
