"""Data augmentation for the TRAINING split only, batched on the device.

The Trainer calls `augment(xb)` on each training mini-batch after slicing it from the
on-device training tensor; dev and test batches never pass through here. Every random draw
is per example and comes from one `torch.Generator` (the Trainer's, bound in `run.py`), so
a run is reproducible from its seed and a resumed run continues the same stream.

Images (N, C, H, W): horizontal flip (p = 0.5), random shift by up to `shift` pixels
(replicate-pad by `shift`, random crop back to H x W), additive gaussian noise.
Anything else (feature vectors (N, F), 1-D signals (N, C, L)): additive gaussian noise.
"""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F

log = logging.getLogger("torchprac")

__all__ = ["Augment", "build_augment"]


class Augment:
    """x -> augmented copy of x (never in place). `generator` must live on x's device."""

    def __init__(
        self,
        flip: bool = False,
        shift: int = 0,
        noise: float = 0.0,
        *,
        images: bool = True,
        generator: torch.Generator | None = None,
    ) -> None:
        if shift < 0 or noise < 0:
            raise ValueError(f"shift and noise must be >= 0, got shift={shift}, noise={noise}")
        # Flip and shift only make sense on images; for vectors only noise applies.
        self.flip, self.shift = bool(flip) and images, int(shift) if images else 0
        self.noise, self.images = float(noise), images
        self.generator = generator

    @property
    def active(self) -> bool:
        return self.flip or self.shift > 0 or self.noise > 0

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.images and x.ndim != 4:
            raise ValueError(f"image augmentation expects (N, C, H, W) batches, got shape {tuple(x.shape)}")
        g = self.generator
        if self.flip:
            flip = torch.rand(x.shape[0], device=x.device, generator=g) < 0.5
            x = torch.where(flip[:, None, None, None], x.flip(-1), x)
        if self.shift > 0:
            x = self._shift(x, g)
        if self.noise > 0:
            x = x + self.noise * torch.randn(x.shape, device=x.device, dtype=x.dtype, generator=g)
        return x

    def _shift(self, x: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
        """Per-example random crop of the replicate-padded batch: a translation by
        (dy, dx) in [-shift, shift]^2 whose uncovered border repeats the edge pixels."""
        n, c, h, w = x.shape
        s = self.shift
        padded = F.pad(x, (s, s, s, s), mode="replicate")
        off = torch.randint(0, 2 * s + 1, (2, n), device=x.device, generator=g)
        rows = off[0, :, None] + torch.arange(h, device=x.device)  # (N, H)
        cols = off[1, :, None] + torch.arange(w, device=x.device)  # (N, W)
        return padded[
            torch.arange(n, device=x.device)[:, None, None, None],
            torch.arange(c, device=x.device)[None, :, None, None],
            rows[:, None, :, None],
            cols[:, None, None, :],
        ]

    def __repr__(self) -> str:
        return f"Augment(flip={self.flip}, shift={self.shift}, noise={self.noise}, images={self.images})"


def build_augment(
    flip: bool, shift: int, noise: float, input_shape: tuple[int, ...], generator: torch.Generator | None = None
) -> Augment | None:
    """None when every transform is off. Flip and shift apply to images (C, H, W) only; a
    shift as large as the image would replace it by its border, so it is refused."""
    from torchprac.errors import ConfigError

    images = len(input_shape) == 3
    if images and shift >= min(input_shape[1:]):
        raise ConfigError(
            "reg.augment.shift",
            shift,
            f"an integer in [0, {min(input_shape[1:]) - 1}] for images of {input_shape[1]}x{input_shape[2]} pixels",
        )
    aug = Augment(flip=flip, shift=shift, noise=noise, images=images, generator=generator)
    if not images and (flip or shift):
        log.info(
            "reg.augment: flip/shift apply to images only; input shape %s gets gaussian noise only", tuple(input_shape)
        )
    if not aug.active:
        log.info("reg.augment selected but every transform is off (flip=false, shift=0, noise=0)")
        return None
    return aug
