"""CheckpointCallback: last.pt every epoch (the one before kept as prev.pt), best.pt when the
monitor improves; every RNG saved as tensors and plain numbers, restored exactly."""

from __future__ import annotations

import random

import numpy as np
import torch
from conftest import make_trainer

from torchprac.data.splits import Split
from torchprac.files import load_checkpoint
from torchprac.train import CheckpointCallback, EarlyStopping, Optimization
from torchprac.train.checkpoint import rng_state, set_rng_state


def test_last_prev_and_best_are_written_each_epoch(tmp_path):
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(32, 4, generator=g), torch.randint(0, 2, (32,), generator=g)
    model = torch.nn.Linear(4, 2)
    es = EarlyStopping("dev/loss", patience=10)
    ckpt = CheckpointCallback(tmp_path / "checkpoints", extra={"num_classes": 2}, best=es)
    tr = make_trainer(
        model,
        Optimization(torch.optim.SGD(model.parameters(), lr=0.1)),
        Split(x, y),
        Split(x, y),
        3,
        8,
        callbacks=[es, ckpt],
    )
    tr.fit()
    last, prev = (
        load_checkpoint(tmp_path / "checkpoints" / "last.pt"),
        load_checkpoint(tmp_path / "checkpoints" / "prev.pt"),
    )
    best = load_checkpoint(tmp_path / "checkpoints" / "best.pt")
    assert (last["epoch"], prev["epoch"]) == (3, 2) and last["num_classes"] == 2
    assert best["epoch"] == es.best_epoch + 1
    assert {"model", "optimizer", "callbacks", "epoch", "global_step", "history", "rng"} <= set(last)
    assert last["global_step"] == 12 and len(last["history"]) == 3
    assert set(last["callbacks"]) == {"EarlyStopping", "CheckpointCallback"}
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["best.pt", "last.pt", "prev.pt"]


def test_rng_state_round_trip_restores_every_stream():
    gen = torch.Generator().manual_seed(3)
    state = rng_state(gen)
    assert state["numpy"]["keys"].dtype == torch.int64  # plain numbers, no pickle to unpickle
    first = (torch.rand(3), np.random.rand(3), random.random(), torch.rand(3, generator=gen))
    set_rng_state(state, gen)
    again = (torch.rand(3), np.random.rand(3), random.random(), torch.rand(3, generator=gen))
    assert torch.equal(first[0], again[0]) and np.array_equal(first[1], again[1])
    assert first[2] == again[2] and torch.equal(first[3], again[3])
