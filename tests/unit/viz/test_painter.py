"""The figure painter (viz/painter.py): figures drawn by the background process are the same
pixels, files and TensorBoard images as figures drawn in the run's process; a dead figure
process costs no figure; a failing picture costs only itself."""

from __future__ import annotations

import logging
import os
import signal

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from torchprac.viz import painter as P  # noqa: E402


def _pictures() -> list[P.Picture]:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 200)
    pred = np.where(rng.random(200) < 0.7, y, 0)
    hist = [{"epoch": e, "loss/train": 1 / e, "loss/dev": 1.1 / e} for e in range(1, 11)]
    return [
        P.Picture("confusion_dev", "confusion_matrix", (y, pred, 3), {"title": "dev"}),
        P.Picture("learning_curves", "learning_curves", (hist,), {"best_epoch": 7}),
    ]


def _png(path) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(path))


def _images(tb_dir) -> dict[str, list[int]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    ea = EventAccumulator(str(tb_dir), size_guidance={"images": 0}).Reload()
    return {tag: [e.step for e in ea.Images(tag)] for tag in ea.Tags()["images"]}


@pytest.fixture
def painter(monkeypatch):
    """A fresh module-level painter for the test, closed after it."""
    monkeypatch.setattr(P, "_painter", None)
    yield P
    if P._painter is not None:
        P._painter.close()


def test_background_figures_equal_the_ones_drawn_here(tmp_path, painter):
    from torch.utils.tensorboard import SummaryWriter

    here, there = tmp_path / "here", tmp_path / "there"
    writer = SummaryWriter(log_dir=str(here))
    painter.draw(P.Batch(_pictures(), here / "figures", str(here), 5), writer, background=False)
    writer.close()
    painter.draw(P.Batch(_pictures(), there / "figures", str(there), 5), None, background=True)
    assert painter._painter.pending is not None and painter._painter.proc.is_alive()
    painter.drain()
    assert painter._painter.pending is None
    for name in ("confusion_dev", "learning_curves"):
        assert np.array_equal(_png(here / "figures" / f"{name}.png"), _png(there / "figures" / f"{name}.png"))
    expected = {"figures/confusion_dev": [5], "figures/learning_curves": [5]}
    assert _images(here) == _images(there) == expected
    assert any(p.name.endswith(".figures") for p in there.iterdir())  # the figure process's own event file


def test_a_dead_figure_process_costs_no_figure(tmp_path, painter, caplog):
    painter.draw(P.Batch(_pictures()[:1], tmp_path / "a" / "figures", None, 1), background=True)
    painter.drain()
    proc = painter._painter.proc
    os.kill(proc.pid, signal.SIGKILL)
    proc.join()
    with caplog.at_level(logging.WARNING, logger="torchprac"):
        painter.draw(P.Batch(_pictures(), tmp_path / "b" / "figures", None, 2), background=True)
        painter.drain()
        painter.draw(P.Batch(_pictures(), tmp_path / "c" / "figures", None, 3), background=True)
    assert "background figure process ended" in caplog.text
    assert painter._painter.broken and painter._painter.proc is None  # later runs draw here
    for run in ("b", "c"):
        assert sorted(p.name for p in (tmp_path / run / "figures").iterdir()) == [
            "confusion_dev.png",
            "learning_curves.png",
        ]


def test_a_failing_picture_costs_only_itself(tmp_path, painter, caplog):
    bad = P.Picture("broken", "learning_curves", (), {"no_such_argument": 1})
    with caplog.at_level(logging.WARNING, logger="torchprac"):
        painter.draw(P.Batch([bad, *_pictures()], tmp_path / "figures", None, 1), background=True)
        painter.drain()
    assert "figures/broken.png could not be drawn (TypeError" in caplog.text
    assert sorted(p.name for p in (tmp_path / "figures").iterdir()) == ["confusion_dev.png", "learning_curves.png"]


def test_a_worker_process_draws_its_figures_itself(tmp_path, painter, monkeypatch):
    # a parallel sweep's worker leaves with os._exit (no atexit drain): never hand figures away there
    monkeypatch.setattr(P.mp, "parent_process", lambda: object())
    painter.draw(P.Batch(_pictures(), tmp_path / "figures", None, 1), background=True)
    assert painter._painter is None  # no figure process was started
    assert sorted(p.name for p in (tmp_path / "figures").iterdir()) == ["confusion_dev.png", "learning_curves.png"]


def _many(n: int) -> list[P.Picture]:
    two = _pictures()
    return [P.Picture(f"{two[i % 2].name}_{i}", two[i % 2].draw, two[i % 2].args, two[i % 2].kwargs) for i in range(n)]


def _tb_counts(tb_dir) -> dict[str, int]:
    """Images per tag over every event file in tb_dir (the run's and each drawing process's)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    counts: dict[str, int] = {}
    for f in tb_dir.iterdir():
        if f.name.startswith("events.out.tfevents"):
            ea = EventAccumulator(str(f), size_guidance={"images": 0}).Reload()
            for tag in ea.Tags()["images"]:
                counts[tag] = counts.get(tag, 0) + len(ea.Images(tag))
    return counts


def test_waiting_for_the_figure_process_the_run_draws_the_last_pictures_itself(tmp_path, painter):
    painter.draw(P.Batch(_pictures()[:1], tmp_path / "warm" / "figures", None, 1), background=True)
    painter.drain()  # drawn here: the figure process was still starting
    assert painter._painter.conn.poll(120)  # its (empty) answer to that batch: it is up and idle
    n, before = 12, painter._painter.drawn_here
    painter.draw(P.Batch(_many(n), tmp_path / "figures", str(tmp_path), 4), background=True)
    painter.drain()  # right away: both draw, from the two ends of the batch
    here = painter._painter.drawn_here - before
    assert 0 < here < n  # the figure process drew some, this process the others
    names = sorted(p.name for p in (tmp_path / "figures").iterdir())
    assert names == sorted(f"{p.name}.png" for p in _many(n))  # every picture, no temp file left
    assert _tb_counts(tmp_path) == {f"figures/{p.name}": 1 for p in _many(n)}  # each drawn once
    assert len([f for f in tmp_path.iterdir() if f.name.endswith(".figures")]) == 2  # one file per drawer


def test_a_figure_process_killed_mid_batch_costs_no_figure(tmp_path, painter, caplog):
    import time

    painter.draw(P.Batch(_pictures()[:1], tmp_path / "warm" / "figures", None, 1), background=True)
    painter.drain()
    assert painter._painter.conn.poll(120)  # up and idle
    n = 8
    painter.draw(P.Batch(_many(n), tmp_path / "figures", None, 2), background=True)
    time.sleep(0.5)  # it is drawing its first pictures
    os.kill(painter._painter.proc.pid, signal.SIGKILL)
    with caplog.at_level(logging.WARNING, logger="torchprac"):
        painter.drain()
    assert "background figure process ended" in caplog.text
    assert sorted(p.name for p in (tmp_path / "figures").iterdir()) == sorted(f"{p.name}.png" for p in _many(n))


def test_a_figure_process_that_cannot_start_costs_no_figure(tmp_path, painter, monkeypatch, caplog):
    real = P.mp.get_context

    class NoProcess:  # spawn's context, but starting a process fails (e.g. the user's process limit)
        def __getattr__(self, name):
            return getattr(real("spawn"), name)

        def Process(self, *args, **kwargs):  # noqa: N802 - multiprocessing's name
            proc = real("spawn").Process(*args, **kwargs)
            proc.start = lambda: (_ for _ in ()).throw(OSError(11, "Resource temporarily unavailable"))
            return proc

    monkeypatch.setattr(P.mp, "get_context", lambda method=None: NoProcess())
    with caplog.at_level(logging.WARNING, logger="torchprac"):
        painter.start()  # as a run starts: never raises
        painter.draw(P.Batch(_pictures(), tmp_path / "figures", None, 1), background=True)
    assert "background figure process could not start (BlockingIOError" in caplog.text
    assert painter._painter.broken and painter._painter.proc is None
    assert sorted(p.name for p in (tmp_path / "figures").iterdir()) == ["confusion_dev.png", "learning_curves.png"]


@pytest.mark.parametrize("mode, starts", [("train", True), ("gradcheck", False)])
def test_a_run_starts_the_figure_process_before_training_only_when_it_will_draw(tmp_path, monkeypatch, mode, starts):
    from tests.conftest import make_cfg
    from torchprac.run import run
    from torchprac.train.trainer import Trainer

    events: list[str] = []
    monkeypatch.setattr(P, "start", lambda: events.append("start"))
    monkeypatch.setattr(P, "draw", lambda *a, **k: events.append("draw"))
    fit = Trainer.fit
    monkeypatch.setattr(Trainer, "fit", lambda self: (events.append("fit"), fit(self))[1])
    over = [f"mode={mode}", "viz.background=true", "model.hidden=[8]", "trainer.epochs=1"]
    run(make_cfg([*over, "trainer.checkpoint.enabled=false"], tmp_path))
    assert events == (["start", "fit", "draw"] if starts else [])  # gradcheck returns before any figure
