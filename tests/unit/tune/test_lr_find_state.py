"""The range test on a torchprac model (torchprac.tune.runner): it leaves the model, the
optimizer, the clipping counters and every random state exactly as it found them, scales all
param groups together, and with eval=dev measures a fixed dev subset."""

from __future__ import annotations

import copy
import random
from contextlib import nullcontext
from dataclasses import replace

import numpy as np
import pytest
import torch
from conftest import make_model, make_optimization

from torchprac.data.splits import Split
from torchprac.tune.lr_find import LRFindSettings, lr_schedule
from torchprac.tune.runner import cross_entropy, dev_loss, dev_subset, find_lr

FEATURES, CLASSES = 12, 3


def data(n: int, seed: int) -> Split:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, FEATURES, generator=g)
    return Split(x, (x[:, 0] > 0).long() + (x[:, 1] > 0.5).long())


def same(a, b) -> bool:
    """Recursive bit-identity of (nested) state: tensors by torch.equal, the rest by ==."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, np.ndarray):
        return np.array_equal(a, b)
    return a == b


def everything(model, optim) -> dict:
    return copy.deepcopy(
        {
            "model": model.state_dict(),
            "grads": [p.grad for p in model.parameters()],
            "training": [m.training for m in model.modules()],
            "optimizer": optim.optimizer.state_dict(),
            "clipper": (optim.clipper.fired, optim.clipper.steps),
            "torch_rng": torch.get_rng_state(),
            "numpy_rng": np.random.get_state(),
            "python_rng": random.getstate(),
        }
    )


@pytest.mark.parametrize("optimizer", ["adam", "nesterov", "rmsprop"])
def test_model_optimizer_and_rng_state_bit_identical_after_the_test(optimizer):
    overrides = [
        f"optimizer={optimizer}",
        "model.hidden=[16,16]",
        "model.batch_norm=before",
        "reg=[l2,dropout,max_norm]",
        "clip=norm",
        "clip.max_norm=0.5",
    ]
    rc, model = make_model(overrides, (FEATURES,), CLASSES)
    optim = make_optimization(rc, model)
    train, dev = data(256, 0), data(128, 1)
    for i in range(3):  # optimizer state (moments, step counts), gradients and BN statistics exist
        loss = cross_entropy(model(train.x[i * 32 : (i + 1) * 32]), train.y[i * 32 : (i + 1) * 32])
        optim.step(loss)
    model.eval()  # a mode the test must put back
    before = everything(model, optim)

    settings = LRFindSettings(min_lr=1e-4, max_lr=10.0, steps=30, eval="dev", dev_examples=64)
    test = find_lr(model, optim, train, settings, 32, base_lr=rc.optimizer.lr, dev=dev, seed=3)

    assert len(test.lrs) >= 10 and test.losses[0] != test.losses[-1]  # it did train
    after = everything(model, optim)
    for key in before:
        assert same(before[key], after[key]), key


def test_param_groups_scale_together():
    rc, model = make_model(["optimizer=momentum", "model.hidden=[8]"], (FEATURES,), CLASSES)
    optim = make_optimization(rc, model)
    base = rc.optimizer.lr
    weights, no_decay = optim.optimizer.param_groups
    no_decay["lr"] = base * 0.1  # e.g. a lower lr for some layers: kept 10x lower during the test
    seen = []
    step = optim.optimizer.step
    optim.optimizer.step = lambda *a, **k: (seen.append([g["lr"] for g in optim.optimizer.param_groups]), step())[1]
    settings = LRFindSettings(min_lr=1e-3, max_lr=1.0, steps=12, diverge_factor=1e6)
    find_lr(model, optim, data(128, 0), settings, 16, base_lr=base)
    lrs = np.array(seen)
    assert lrs[:, 0] == pytest.approx(lr_schedule(1e-3, 1.0, 12), rel=1e-12)
    assert lrs[:, 1] == pytest.approx(0.1 * lrs[:, 0], rel=1e-12)
    assert [g["lr"] for g in optim.optimizer.param_groups] == [base, base * 0.1]  # restored


def test_eval_dev_measures_one_fixed_subset():
    """At lrs too small to move the weights, every recorded dev loss is the loss of the initial
    model on the same fixed subset (no dropout: eval mode)."""
    rc, model = make_model(["optimizer=sgd", "model.hidden=[8]", "reg=[dropout]"], (FEATURES,), CLASSES)
    optim = make_optimization(rc, model)
    dev = data(300, 1)
    sub = dev_subset(dev, 50, seed=7)
    assert len(sub) == 50 and torch.equal(sub.x, dev_subset(dev, 50, seed=7).x)
    expected = float(dev_loss(model, sub, cross_entropy, nullcontext))
    settings = replace(LRFindSettings(), min_lr=1e-14, max_lr=1e-12, steps=10, eval="dev", dev_examples=50, beta=0.0)
    test = find_lr(model, optim, data(64, 0), settings, 16, base_lr=rc.optimizer.lr, dev=dev, seed=7)
    assert test.losses == pytest.approx([expected] * 10, rel=1e-6)
