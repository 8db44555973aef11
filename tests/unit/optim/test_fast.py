"""Fused optimizer kernels, chosen automatically where torch has them."""

from __future__ import annotations

import torch
from conftest import make_model, make_optimization
from torch import nn

from torchprac.optim.fast import fast_kwargs


def _defaults(overrides):
    rc, model = make_model(overrides, (1, 8, 8), 10)
    return make_optimization(rc, model).optimizer.defaults


def test_optimizers_get_fused_kernels_where_torch_has_them():
    assert _defaults([])["fused"] is True  # nesterov: torch.optim.SGD
    assert _defaults(["optimizer=adam"])["fused"] is True
    assert not _defaults(["optimizer=rmsprop"]).get("fused")  # no fused RMSprop: torch's default
    assert not _defaults(["+optimizer.fused=false"])["fused"]  # an explicit choice wins
    cpu = torch.device("cpu")
    assert fast_kwargs(torch.optim.SGD, cpu, {"foreach": True}) == {}
    assert fast_kwargs(torch.optim.NAdam, cpu, {}) == {}


def test_fused_sgd_trains_like_the_default_kernel():
    torch.manual_seed(0)
    x, y = torch.randn(64, 20), torch.randint(0, 3, (64,))
    finals = []
    for kw in ({}, {"fused": True}):
        torch.manual_seed(1)
        m = nn.Sequential(nn.Linear(20, 16), nn.ELU(), nn.Linear(16, 3))
        opt = torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3, **kw)
        for i in range(0, 64, 8):
            opt.zero_grad()
            nn.functional.cross_entropy(m(x[i : i + 8]), y[i : i + 8]).backward()
            opt.step()
        finals.append(torch.cat([p.detach().flatten() for p in m.parameters()]))
    torch.testing.assert_close(finals[0], finals[1], rtol=1e-5, atol=1e-6)
