"""Max-norm: each unit's incoming weight vector is projected back onto the ball of radius r
after the optimizer step; rows under r (and frozen weights) are left bit-for-bit alone."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from conftest import make_model, make_optimization
from torch import nn

from torchprac.data.splits import Split
from torchprac.reg.constraints import MaxNorm


def test_max_norm_after_huge_lr_step():
    r = 2.0
    torch.manual_seed(0)
    rc, model = make_model(
        ["model.hidden=[32,16]", "optimizer=sgd", "optimizer.lr=100", "reg=[max_norm]", f"reg.max_norm.r={r}"],
        (1, 8, 8),
        10,
    )
    optim = make_optimization(rc, model)
    (constraint,) = optim.constraints
    assert isinstance(constraint, MaxNorm) and constraint.r == r
    g = torch.Generator().manual_seed(0)
    data = Split(torch.randn(32, 1, 8, 8, generator=g), torch.randint(0, 10, (32,), generator=g))
    F.cross_entropy(model(data.x), data.y).backward()
    weights = [m.weight for m in model.modules() if isinstance(m, nn.Linear)]
    for w in weights:  # freeze the first half of the rows: they stay as initialised (norm < r)
        w.grad[: w.shape[0] // 2] = 0
    optim.optimizer.step()
    before = [w.detach().clone() for w in weights]
    constraint()
    n_clipped = 0
    for w, b in zip(weights, before):
        norms_before, norms = b.norm(dim=1), w.detach().norm(dim=1)
        assert (norms <= r + 1e-6).all()
        under = norms_before <= r
        assert under[: w.shape[0] // 2].all()  # the frozen rows were under r...
        assert torch.equal(w[under], b[under])  # ...and are bit-for-bit unchanged
        over = ~under
        n_clipped += int(over.sum())
        # rows over r keep their direction and land exactly on the sphere of radius r
        torch.testing.assert_close(w[over], r * b[over] / norms_before[over, None])
    assert n_clipped > 0  # the huge step did push rows past r


def test_max_norm_conv_kernels_per_output_channel():
    conv = nn.Conv2d(3, 5, 3)
    with torch.no_grad():
        conv.weight.mul_(torch.tensor([0.01, 10, 0.01, 10, 10]).view(5, 1, 1, 1))
    before = conv.weight.detach().clone()
    MaxNorm([conv.weight], r=1.0)()
    norms = conv.weight.detach().flatten(1).norm(dim=1)
    assert (norms <= 1 + 1e-6).all()
    assert torch.equal(conv.weight[[0, 2]], before[[0, 2]])
    torch.testing.assert_close(norms[[1, 3, 4]], torch.ones(3))


def test_max_norm_leaves_frozen_weights_alone():
    frozen, live = torch.full((3, 4), 5.0), torch.full((3, 4), 5.0, requires_grad=True)
    frozen.requires_grad_(False)
    MaxNorm([frozen, live], r=1.0)()
    assert torch.equal(frozen, torch.full((3, 4), 5.0))
    assert torch.allclose(live.detach().norm(dim=1), torch.ones(3), atol=1e-5)
