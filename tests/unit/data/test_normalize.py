"""Input standardisation with TRAINING statistics only (per feature / per channel)."""

from __future__ import annotations

import pytest
import torch
from conftest import CPU, make_rc

from torchprac.data import build_data
from torchprac.data.normalize import fit_normalizer


def _data(overrides):
    return build_data(make_rc(overrides).data, seed=0, device=CPU)


def test_normalisation_uses_train_statistics_only():
    s = _data(["data=moons", "data.n_samples=1000"])
    raw = _data(["data=moons", "data.n_samples=1000", "data.normalize=false"])
    mu, sd = raw.train.x.double().mean(0), raw.train.x.double().std(0, unbiased=False)
    torch.testing.assert_close(s.mean.double(), mu, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(s.std.double(), sd, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(s.train.x.mean(0), torch.zeros(2), atol=1e-5, rtol=0)
    # dev/test transformed with the TRAIN statistics, not their own
    torch.testing.assert_close(s.dev.x, ((raw.dev.x - mu) / sd).float(), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(s.test.x, ((raw.test.x - mu) / sd).float(), rtol=1e-5, atol=1e-5)
    assert s.dev.x.mean(0).abs().max() > 1e-4  # dev is not re-centred on its own mean


def test_image_normalisation_is_per_channel():
    s = _data([])
    assert s.input_shape == (1, 8, 8) and s.mean.shape == (1, 1, 1)
    assert abs(s.train.x.mean().item()) < 1e-5 and s.train.x.std(unbiased=False).item() == pytest.approx(1, rel=1e-4)


def test_normalizer_formula_per_channel():
    x = torch.randn(50, 3, 4, 4, generator=torch.Generator().manual_seed(0)) * torch.tensor([1.0, 2.0, 3.0]).view(
        1, 3, 1, 1
    )
    n = fit_normalizer(x)
    assert n.mean.shape == n.std.shape == (3, 1, 1)
    torch.testing.assert_close(n.mean.flatten(), x.mean((0, 2, 3)), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(n.std.flatten(), x.std((0, 2, 3), unbiased=False), rtol=1e-5, atol=1e-6)
