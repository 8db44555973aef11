"""The clip group: each choice's effect on the gradients and its fired counter."""

from __future__ import annotations

import pytest
import torch
from conftest import conf_choices, make_model, make_optimization


@pytest.mark.parametrize("name", conf_choices("clip"))
def test_clip_effect(name):
    rc, model = make_model([f"clip={name}"], (1, 8, 8), 10)
    clipper = make_optimization(rc, model).clipper
    for p in model.parameters():
        p.grad = torch.full_like(p, 3.0)
    pre = torch.sqrt(sum((p.grad**2).sum() for p in model.parameters()))
    norm = clipper(want_norm=True)
    post = torch.sqrt(sum((p.grad**2).sum() for p in model.parameters()))
    torch.testing.assert_close(norm, pre)  # every kind returns the PRE-clip global norm
    if name == "none":
        assert post == pre
    elif name == "norm":
        assert post.item() == pytest.approx(rc.clip.max_norm, rel=1e-4)
        assert clipper.fired_fraction() == 1.0
    else:
        assert all(p.grad.abs().max() <= rc.clip.clip_value for p in model.parameters())
        assert clipper.fired_fraction() == 1.0


def test_norm_is_computed_only_when_asked_without_norm_clipping():
    rc, model = make_model(["clip=none"], (4,), 2)
    clipper = make_optimization(rc, model).clipper
    for p in model.parameters():
        p.grad = torch.ones_like(p)
    assert clipper(want_norm=False) is None and clipper.fired_fraction() == 0.0
