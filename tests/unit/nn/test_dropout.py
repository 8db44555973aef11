"""Inverted dropout against its definition."""

from __future__ import annotations

import math

import pytest
import torch

from torchprac.nn import InvertedDropout

Z = 5.0  # z-score bound for the statistical checks (false-failure odds ~ 1e-6 each)


@pytest.mark.parametrize("keep_prob", [0.2, 0.5, 0.8])
def test_kept_fraction_and_mean_are_unbiased(keep_prob):
    torch.manual_seed(0)
    d = InvertedDropout(keep_prob).train()
    x = torch.rand(256) + 0.5  # strictly positive: a zero output means "dropped"
    draws = 4000
    out = d(x.expand(draws, -1).contiguous())  # one independent mask per row
    kept = out != 0
    n = kept.numel()
    frac = kept.float().mean().item()
    assert abs(frac - keep_prob) < Z * math.sqrt(keep_prob * (1 - keep_prob) / n)
    # kept units are scaled by exactly 1/keep_prob
    torch.testing.assert_close(out[kept], (x.expand(draws, -1) / keep_prob)[kept])
    # E[out] = x per unit: mean over draws, bound from out's variance x^2 (1-p)/p
    mean = out.mean(0)
    sd = x * math.sqrt((1 - keep_prob) / keep_prob / draws)
    assert ((mean - x).abs() < Z * sd).all()


def test_eval_is_exact_identity_and_keep_prob_one_is_identity():
    x = torch.randn(64, 32)
    d = InvertedDropout(0.5).eval()
    assert d(x) is x
    assert InvertedDropout(1.0).train()(x) is x


def test_gradient_is_zero_exactly_on_dropped_units():
    torch.manual_seed(1)
    x = (torch.rand(128, 64) + 0.5).requires_grad_()
    out = InvertedDropout(0.6).train()(x)
    upstream = torch.randn_like(out)
    out.backward(upstream)
    dropped = out == 0
    assert dropped.any() and (~dropped).any()
    assert torch.equal(x.grad[dropped], torch.zeros(int(dropped.sum())))
    torch.testing.assert_close(x.grad[~dropped], upstream[~dropped] / 0.6)


@pytest.mark.parametrize("bad", [0.0, -0.1, 1.5])
def test_keep_prob_out_of_range_is_refused(bad):
    with pytest.raises(ValueError, match="keep_prob"):
        InvertedDropout(bad)
