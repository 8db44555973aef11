"""The training loop against references computed another way."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from conftest import make_cfg, run_cfg

from torchprac.data import build_data
from torchprac.nn import build_model
from torchprac.optim import build_optim
from torchprac.train import EarlyStopping, Trainer
from torchprac.train.trainer import steps_per_epoch


def _parts(overrides, epochs):
    cfg = make_cfg(overrides + [f"trainer.epochs={epochs}"], "/tmp/x")
    torch.manual_seed(0)
    s = build_data(cfg.data, 0, torch.device("cpu"))
    model = build_model(cfg, s.input_shape, s.num_classes)
    full = bool(cfg.optimizer.get("full_batch", False))
    spe = steps_per_epoch(len(s.train), len(s.train) if full else cfg.trainer.batch_size, cfg.trainer.drop_last)
    return cfg, s, model, build_optim(cfg, model, spe, epochs)


def test_gd_takes_exactly_one_full_batch_step_per_epoch():
    cfg, s, model, optim = _parts(["optimizer=gd", "data=moons", "trainer.log_every_n_steps=1"], epochs=3)
    theta0 = [p.detach().clone() for p in model.parameters()]
    # Reference: one step of full-batch gradient descent, computed by hand.
    ref = build_model(cfg, s.input_shape, s.num_classes)
    ref.load_state_dict(model.state_dict())
    loss = F.cross_entropy(ref(s.train.x), s.train.y)
    grads = torch.autograd.grad(loss, list(ref.parameters()))
    expected = [p - cfg.optimizer.lr * g for p, g in zip(theta0, grads)]
    tr = Trainer(model, optim, s.train, s.dev, epochs=1, batch_size=cfg.trainer.batch_size, progress=False)
    tr.fit()
    assert tr.global_step == 1 and tr.batch_size == len(s.train)
    for p, e in zip(model.parameters(), expected):
        torch.testing.assert_close(p.detach(), e, rtol=1e-5, atol=1e-6)
    tr.epochs = 3
    tr.fit()
    assert tr.global_step == 3


@pytest.mark.parametrize("drop_last,expected", [(False, 17), (True, 16)])
def test_drop_last_and_step_count(drop_last, expected):
    # digits: 1079 training examples, batch 64 -> 16 full batches + one of 55
    cfg, s, model, optim = _parts([f"trainer.drop_last={drop_last}"], epochs=2)
    tr = Trainer(model, optim, s.train, s.dev, epochs=2, batch_size=64, drop_last=drop_last, progress=False)
    tr.fit()
    assert len(s.train) == 1079 and tr.global_step == 2 * expected


def test_host_reads_only_every_n_steps(monkeypatch):
    cfg, s, model, optim = _parts([], epochs=2)
    calls = []
    orig = Trainer._flush
    monkeypatch.setattr(Trainer, "_flush", lambda self, acc, n: calls.append(self.global_step) or orig(self, acc, n))
    tr = Trainer(model, optim, s.train, s.dev, epochs=2, batch_size=64, log_every_n_steps=5, progress=False)
    tr.fit()
    # 34 steps: reads at steps 5, 10, ..., 30 and once at each epoch end (17, 34)
    assert calls == [5, 10, 15, 17, 20, 25, 30, 34]


def test_epoch_permutation_is_seeded():
    runs = []
    for _ in range(2):
        cfg, s, model, optim = _parts(["data=moons"], epochs=2)
        Trainer(model, optim, s.train, s.dev, epochs=2, batch_size=32, seed=7, progress=False).fit()
        runs.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    torch.testing.assert_close(runs[0], runs[1], rtol=0, atol=0)


def test_early_stopping_restores_best_logged_dev_loss(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    # A large lr on a wide net overfits quickly: dev loss has a minimum, then rises.
    _, m = run_cfg(
        [
            "optimizer=adam",
            "optimizer.lr=0.01",
            "model.hidden=[256]",
            "data.train_subset=200",
            "trainer.epochs=60",
            "trainer.early_stopping.patience=4",
        ],
        tmp_path,
    )
    ea = EventAccumulator(str(tmp_path), size_guidance={"scalars": 0}).Reload()
    dev_losses = [e.value for e in ea.Scalars("loss/dev")]
    assert m["status"] == "early_stopped" and m["epochs_run"] < 60
    assert len(dev_losses) == m["epochs_run"]
    best = min(dev_losses)
    assert m["metrics"]["dev"]["loss"] == pytest.approx(best, rel=1e-6, abs=1e-7)
    assert m["best_epoch"] == dev_losses.index(best) + 1
    assert dev_losses[-1] > best  # the last epoch was worse: weights really were restored


def test_restore_best_also_when_never_fired(tmp_path):
    _, m = run_cfg(
        [
            "optimizer=adam",
            "optimizer.lr=0.01",
            "model.hidden=[256]",
            "data.train_subset=200",
            "trainer.epochs=12",
            "trainer.early_stopping.patience=100",
        ],
        tmp_path,
    )
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    dev = [e.value for e in EventAccumulator(str(tmp_path)).Reload().Scalars("loss/dev")]
    assert m["status"] == "completed" and len(dev) == 12
    assert m["metrics"]["dev"]["loss"] == pytest.approx(min(dev), rel=1e-6)


def test_early_stopping_unit():
    es = EarlyStopping(mode="max", patience=2, min_delta=0.01)
    model = torch.nn.Linear(1, 1)
    assert not es.update(0, 0.5, model) and not es.update(1, 0.505, model)  # within min_delta
    assert es.update(2, 0.4, model) and es.best_epoch == 0


def test_metrics_json_schema(tmp_path):
    value, m = run_cfg(["trainer.epochs=2", "data=moons", "data.split=[0.7,0.3,0]"], tmp_path)
    assert set(m) >= {"status", "epochs_run", "best_epoch", "objective", "metrics", "diagnosis", "message"}
    assert "test" not in m["metrics"]  # no test split
    assert m["objective"] == {"name": "dev/accuracy", "value": m["metrics"]["dev"]["accuracy"], "mode": "max"}
    assert json.loads((tmp_path / "metrics.json").read_text()) == m
    assert (tmp_path / "checkpoints" / "last.pt").is_file() and (tmp_path / "checkpoints" / "best.pt").is_file()
    v2, m2 = run_cfg(["trainer.epochs=2", "data=moons", "trainer.objective=dev/loss"], tmp_path / "b")
    assert m2["objective"]["mode"] == "min" and v2 == m2["metrics"]["dev"]["loss"]


def test_early_stopping_on_accuracy_keeps_the_best_epoch(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    # mode is derived from the monitor (max for accuracy): the restored weights are the best epoch's
    _, m = run_cfg(
        [
            "trainer.early_stopping.monitor=dev/accuracy",
            "trainer.early_stopping.patience=3",
            "trainer.epochs=12",
            "optimizer=adam",
            "optimizer.lr=0.01",
        ],
        tmp_path,
    )
    accs = [e.value for e in EventAccumulator(str(tmp_path)).Reload().Scalars("metric/accuracy_dev")]
    assert m["metrics"]["dev"]["accuracy"] == pytest.approx(max(accs), abs=1e-6)
    assert m["best_epoch"] == accs.index(max(accs)) + 1


@pytest.mark.parametrize("clip", ["none", "value", "norm"])
def test_preclip_norm_logged_for_every_clip_kind(tmp_path, clip):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run_cfg([f"clip={clip}", "trainer.epochs=1", "trainer.log_every_n_steps=5", "data=moons"], tmp_path)
    ea = EventAccumulator(str(tmp_path)).Reload()
    norms = [e.value for e in ea.Scalars("grad_norm/global_preclip")]
    assert norms and all(n > 0 for n in norms)
    assert ("clip/fired_fraction" in ea.Tags()["scalars"]) == (clip != "none")


def _host_reads(batch_size: int) -> tuple[int, int]:
    """(device->host scalar reads, steps) for one epoch, counted by torch.profiler."""
    from torch.profiler import ProfilerActivity, profile

    cfg, s, model, optim = _parts([], epochs=1)
    tr = Trainer(model, optim, s.train, s.dev, epochs=1, batch_size=batch_size, log_every_n_steps=1000, progress=False)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        tr.fit()
    # every .item()/float(tensor) ends in one _local_scalar_dense
    reads = sum(e.count for e in prof.key_averages() if e.key == "aten::_local_scalar_dense")
    return reads, tr.global_step


def test_no_host_sync_per_step():
    # 1079 examples: 135 steps at batch 8 vs 9 steps at batch 128, no logging step in either: the
    # reads (epoch-end flush and dev evaluation only) must not grow with the number of steps.
    many, steps_many = _host_reads(8)
    few, steps_few = _host_reads(128)
    assert steps_many == 135 and steps_few == 9
    assert many == few and many < 20


@pytest.mark.parametrize("interval,expected_steps", [("step", 2 * 17), ("epoch", 2)])
def test_scheduler_stepped_at_its_interval(interval, expected_steps):
    # exponential: lr = lr0 * 0.1^(t/s); after a 2-epoch fit t counts steps or epochs by interval
    cfg, s, model, optim = _parts(
        ["scheduler=exponential", f"scheduler.interval={interval}", "scheduler.s=10"], epochs=2
    )
    Trainer(model, optim, s.train, s.dev, epochs=2, batch_size=64, progress=False).fit()
    lr = optim.optimizer.param_groups[0]["lr"]
    assert lr == pytest.approx(cfg.optimizer.lr * 0.1 ** (expected_steps / 10), rel=1e-9)


def test_plateau_is_fed_the_dev_loss():
    cfg, s, model, optim = _parts(["scheduler=plateau", "scheduler.patience=0", "scheduler.factor=0.5"], epochs=3)
    seen = []
    orig = optim.scheduler.step
    optim.scheduler.step = lambda metric: seen.append(metric) or orig(metric)
    tr = Trainer(model, optim, s.train, s.dev, epochs=3, batch_size=64, progress=False)
    tr.fit()
    assert seen == pytest.approx([h["loss/dev"] for h in tr.history])
