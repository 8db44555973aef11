"""Input standardisation x <- (x - mu) / sigma with mu, sigma from the TRAINING split only
(per feature for vectors, per channel for images and signals)."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Normalizer:
    mean: torch.Tensor  # broadcastable to one example
    std: torch.Tensor

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


def fit_normalizer(x_train: torch.Tensor, eps: float = 1e-8) -> Normalizer:
    if x_train.ndim <= 2:  # (N, F): per feature
        dims, shape = (0,), (x_train.shape[1],) if x_train.ndim == 2 else ()
    else:  # (N, C, ...): per channel
        dims = (0, *range(2, x_train.ndim))
        shape = (x_train.shape[1],) + (1,) * (x_train.ndim - 2)
    x64 = x_train.double()
    mean = x64.mean(dim=dims).reshape(shape)
    std = x64.std(dim=dims, unbiased=False).reshape(shape).clamp_min(eps)
    return Normalizer(mean.float(), std.float())
