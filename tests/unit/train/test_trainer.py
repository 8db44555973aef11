"""The training loop against references computed another way: full-batch gd by hand, step
counts, seeded permutations, host reads only at logging steps and epoch ends (counted with
torch.profiler), divergence, and a DDP-wrapped model."""

from __future__ import annotations

import pytest
import torch
import torch.distributed as dist
import torch.nn.functional as F
from conftest import CPU, make_optimization, make_rc, make_trainer

from torchprac.data import build_data
from torchprac.data.splits import Split
from torchprac.metrics import Status
from torchprac.run import build_loop, build_model
from torchprac.train import Callback, Optimization, Trainer


def _parts(overrides, epochs):
    rc = make_rc(overrides + [f"trainer.epochs={epochs}"])
    torch.manual_seed(0)
    s = build_data(rc.data, 0, CPU)
    model = build_model(rc, s.input_shape, s.num_classes, CPU)
    return rc, s, model, make_optimization(rc, model)


def _trainer(rc, s, model, optim, seed=0, callbacks=None) -> Trainer:
    """The Trainer as run.py loops it (run.build_loop), without logging callbacks."""
    loop = build_loop(rc, len(s.train))
    return Trainer(
        model, optim, s.train, s.dev, loop, callbacks=callbacks or [], generator=torch.Generator().manual_seed(seed)
    )


def test_gd_takes_exactly_one_full_batch_step_per_epoch():
    rc, s, model, optim = _parts(["optimizer=gd", "data=moons", "trainer.log_every_n_steps=1"], epochs=1)
    theta0 = [p.detach().clone() for p in model.parameters()]
    # Reference: one step of full-batch gradient descent, computed by hand.
    ref = build_model(rc, s.input_shape, s.num_classes, CPU)
    ref.load_state_dict(model.state_dict())
    loss = F.cross_entropy(ref(s.train.x), s.train.y)
    grads = torch.autograd.grad(loss, list(ref.parameters()))
    expected = [p - rc.optimizer.lr * g for p, g in zip(theta0, grads)]
    tr = _trainer(rc, s, model, optim)
    tr.fit()
    assert tr.global_step == 1 and tr.batch_size == len(s.train)
    for p, e in zip(model.parameters(), expected):
        torch.testing.assert_close(p.detach(), e, rtol=1e-5, atol=1e-6)
    tr.loop.epochs = 3  # fit again: it continues from the epoch it reached
    tr.fit()
    assert tr.global_step == 3


@pytest.mark.parametrize("drop_last,expected", [(False, 17), (True, 16)])
def test_drop_last_and_step_count(drop_last, expected):
    # digits: 1079 training examples, batch 64 -> 16 full batches + one of 55
    rc, s, model, optim = _parts([f"trainer.drop_last={drop_last}"], epochs=2)
    tr = _trainer(rc, s, model, optim)
    tr.fit()
    assert len(s.train) == 1079 and tr.global_step == 2 * expected
    assert tr.steps_per_epoch == expected


def test_epoch_permutation_is_seeded():
    runs = []
    for seed in (7, 7, 8):
        rc, s, model, optim = _parts(["data=moons", "trainer.batch_size=32"], epochs=2)
        _trainer(rc, s, model, optim, seed=seed).fit()
        runs.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    torch.testing.assert_close(runs[0], runs[1], rtol=0, atol=0)
    assert not torch.equal(runs[0], runs[2])


class _ReadSteps(Callback):
    """The global steps at which the Trainer handed host values to callbacks."""

    def __init__(self) -> None:
        self.steps: list[int] = []

    def on_log(self, trainer, logs) -> None:
        self.steps.append(trainer.global_step)

    def on_epoch_end(self, trainer, logs) -> None:
        self.steps.append(trainer.global_step)


def _host_reads(batch_size: int, log_every: int, callbacks=None) -> tuple[int, int]:
    """(device->host scalar reads, steps) for the fit, counted by torch.profiler."""
    from torch.profiler import ProfilerActivity, profile

    rc, s, model, optim = _parts([f"trainer.batch_size={batch_size}", f"trainer.log_every_n_steps={log_every}"], 2)
    tr = _trainer(rc, s, model, optim, callbacks=callbacks)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        tr.fit()
    # every .item()/float(tensor) ends in one _local_scalar_dense
    reads = sum(e.count for e in prof.key_averages() if e.key == "aten::_local_scalar_dense")
    return reads, tr.global_step


def test_host_reads_only_every_n_steps():
    seen = _ReadSteps()
    every5, steps = _host_reads(64, 5, [seen])
    # 34 steps: reads at steps 5, 10, ..., 30 and once at each epoch end (17, 34)
    assert steps == 34 and seen.steps == [5, 10, 15, 17, 20, 25, 30, 34]
    # the reads grow with the logging steps and nothing else: 6 logging steps cost 6x what the
    # 3 logging steps of log_every_n_steps=10 cost, over the epoch ends alone
    never, _ = _host_reads(64, 1000)
    every10, _ = _host_reads(64, 10)
    per_log = (every10 - never) / 3
    assert per_log >= 1 and per_log == int(per_log)
    assert every5 - never == 6 * per_log


def test_no_host_sync_per_step():
    # 1079 examples: 135 steps at batch 8 vs 9 steps at batch 128 per epoch, no logging step in
    # either: the reads (epoch-end reads and dev evaluation only) must not grow with the steps.
    many, steps_many = _host_reads(8, 1000)
    few, steps_few = _host_reads(128, 1000)
    assert steps_many == 2 * 135 and steps_few == 2 * 9
    assert many == few and many < 40


def test_history_has_one_entry_per_epoch_with_the_documented_tags():
    # no logging step ends an epoch: the epoch end reads the epoch's running sums
    rc, s, model, optim = _parts(["data=moons", "trainer.log_every_n_steps=1000"], epochs=2)
    tr = _trainer(rc, s, model, optim)
    result = tr.fit()
    assert result.status == Status.COMPLETED and result.epochs_run == 2 and result.history == tr.history
    assert [h["epoch"] for h in tr.history] == [1, 2]
    assert {"loss/train", "metric/accuracy_train", "loss/dev", "metric/accuracy_dev", "lr/weights"} <= set(
        tr.history[0]
    )


def test_divergence_ends_the_fit_with_a_hint():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(64, 4, generator=g) * 100, torch.randint(0, 2, (64,), generator=g)
    model = torch.nn.Sequential(torch.nn.Linear(4, 64), torch.nn.Linear(64, 64), torch.nn.Linear(64, 2))
    optim = Optimization(torch.optim.SGD(model.parameters(), lr=1e6))
    result = make_trainer(model, optim, Split(x, y), Split(x, y), epochs=5, batch_size=8, log_every_n_steps=1).fit()
    assert result.status == Status.DIVERGED and result.epochs_run < 5
    assert "non-finite" in result.message and "optimizer.lr" in result.message


def test_ddp_wrapped_model_is_unwrapped_for_eval_and_checkpoints(monkeypatch):
    """A 1-process gloo group: the Trainer trains through DDP but keeps the plain module."""
    if not dist.is_available() or not dist.is_gloo_available():
        pytest.skip("needs torch.distributed with gloo")
    from torch.nn.parallel import DistributedDataParallel

    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", "29531")
    dist.init_process_group("gloo", rank=0, world_size=1)
    try:
        net = torch.nn.Linear(3, 2)
        opt = Optimization(torch.optim.SGD(net.parameters(), lr=0.1))
        split = Split(torch.randn(8, 3), torch.randint(0, 2, (8,)))
        tr = make_trainer(DistributedDataParallel(net), opt, split, split, epochs=1, batch_size=4)
        assert tr.model is net and isinstance(tr.net, DistributedDataParallel)
        assert tr.fit().status == "completed"
        assert not any(k.startswith("module.") for k in tr.state_dict()["model"])
    finally:
        dist.destroy_process_group()
