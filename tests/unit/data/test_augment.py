"""Batched on-device augmentation against its definitions: per-example flips and shifts, noise
of the configured std, never in place, reproducible from the generator."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from torchprac.data.augment import Augment, build_augment
from torchprac.errors import ConfigError


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _images(n: int = 256) -> torch.Tensor:
    return torch.randn(n, 3, 8, 8, generator=_gen(123))


def test_flip_is_per_example_mirror_about_half_the_time():
    x = _images()
    out = Augment(flip=True, generator=_gen())(x)
    same = (out == x).flatten(1).all(1)
    mirrored = (out == x.flip(-1)).flatten(1).all(1)
    assert (same ^ mirrored).all()  # each example is either untouched or exactly mirrored
    n = len(x)
    assert abs(mirrored.float().mean().item() - 0.5) < 5 * (0.25 / n) ** 0.5


def test_shift_is_a_per_example_translation_within_range():
    s = 2
    x = _images()
    out = Augment(shift=s, generator=_gen())(x)
    assert out.shape == x.shape
    padded = F.pad(x, (s, s, s, s), mode="replicate")
    h, w = x.shape[-2:]
    offsets = set()
    for i in range(len(x)):
        # exactly one crop offset (dy, dx) in [0, 2s]^2 of the padded example reproduces it
        hits = [
            (dy, dx)
            for dy in range(2 * s + 1)
            for dx in range(2 * s + 1)
            if torch.equal(out[i], padded[i, :, dy : dy + h, dx : dx + w])
        ]
        assert len(hits) == 1, i
        offsets.add(hits[0])
    assert len(offsets) == (2 * s + 1) ** 2  # every shift in range occurs over 256 examples


def test_noise_has_the_configured_std_and_zero_mean():
    x = _images(1024)
    out = Augment(noise=0.3, generator=_gen())(x)
    eps = out - x
    assert abs(eps.std().item() - 0.3) < 0.01 and abs(eps.mean().item()) < 0.005


def test_never_in_place_and_reproducible_from_the_generator():
    x = _images()
    x0 = x.clone()
    aug = dict(flip=True, shift=1, noise=0.1)
    a = Augment(**aug, generator=_gen(7))(x)
    b = Augment(**aug, generator=_gen(7))(x)
    c = Augment(**aug, generator=_gen(8))(x)
    assert torch.equal(x, x0)
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_vectors_and_signals_get_noise_only():
    for shape in ((2,), (1, 40)):  # moons-like features, MNIST-1D-like signals
        aug = build_augment(True, 2, 0.5, shape, generator=_gen())
        assert aug is not None and not aug.flip and aug.shift == 0 and aug.noise == 0.5
        x = torch.randn(4096, *shape, generator=_gen(1))
        assert abs((aug(x) - x).std().item() - 0.5) < 0.02
    # everything off: no augmentation object at all
    assert build_augment(False, 0, 0.0, (1, 8, 8)) is None


def test_a_shift_as_large_as_the_image_is_refused():
    with pytest.raises(ConfigError) as e:
        build_augment(False, 8, 0.0, (1, 8, 8))
    assert e.value.key == "reg.augment.shift" and "[0, 7]" in e.value.allowed
