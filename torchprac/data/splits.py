"""Train/dev/test splitting: `auto` sizes from the course's rule, explicit ratios, stratified and seeded."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from torchprac.errors import ConfigError

# dev and test each get min(AUTO_FRACTION * m, AUTO_CAP) examples.
AUTO_FRACTION = 0.2
AUTO_CAP = 10_000


@dataclass
class Split:
    """One split as tensors on the run's device: x (N, *input_shape) float, y (N,) long class
    indices (classification) or float32 targets, standardised with train statistics (regression)."""

    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return int(self.y.shape[0])

    # The Trainer and evaluate() read batches through these; data/stream.py's StreamSplit
    # (data.in_memory=false) serves the same batches from a DataLoader.
    def start_epoch(self, batches: list[torch.Tensor]) -> None:
        """The epoch's index batches, in order (a streaming split prepares its loader)."""

    def take(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # index_select: the same gather as x[idx], at half the cost for batches of images
        return self.x.index_select(0, idx), self.y.index_select(0, idx)

    def batches(self, batch_size: int):
        """(x, y) slices in order, for evaluation."""
        for i in range(0, len(self), batch_size):
            yield self.x[i : i + batch_size], self.y[i : i + batch_size]


@dataclass
class Splits:
    train: Split
    dev: Split
    test: Split | None
    input_shape: tuple[int, ...]
    num_classes: int  # the model's outputs: the class count, or 1 for regression
    mean: torch.Tensor | None = None  # normalisation statistics (from train only)
    std: torch.Tensor | None = None
    name: str = ""
    task: str = "classification"  # or "regression"
    class_names: list[str] | None = None
    feature_names: list[str] | None = None
    y_mean: float = 0.0  # regression: y was standardised as (y - y_mean) / y_std (train statistics)
    y_std: float = 1.0

    def items(self) -> list[tuple[str, Split]]:
        out = [("train", self.train), ("dev", self.dev)]
        if self.test is not None:
            out.append(("test", self.test))
        return out


def auto_split_sizes(m: int) -> tuple[int, int, int]:
    """(train, dev, test) sizes for m examples: dev = test = min(0.2 m, 10 000).

    60/20/20 for 10 000 examples, 98/1/1 for 1 000 000, 99.5/0.25/0.25 for 4 000 000.
    """
    held = min(int(AUTO_FRACTION * m), AUTO_CAP)
    return m - 2 * held, held, held


def auto_dev_size(m_pool: int, m_total: int) -> int:
    """Dev size carved from an official training pool, by the same rule on the whole dataset."""
    return min(int(AUTO_FRACTION * m_total), AUTO_CAP, m_pool // 2)


def ratio_sizes(m: int, ratios: Sequence[float]) -> tuple[int, int, int]:
    n_dev = int(round(ratios[1] * m))
    n_test = int(round(ratios[2] * m)) if len(ratios) > 2 else 0
    return m - n_dev - n_test, n_dev, n_test


def check_ratios(split: object) -> None:
    """Validate `data.split`: 'auto' or [train, dev] / [train, dev, test] ratios summing to 1."""
    if split == "auto":
        return
    allowed = "'auto' or a list [train, dev, test] of fractions in [0, 1] that sum to 1, e.g. [0.7, 0.3, 0]"
    try:
        ratios = [float(r) for r in split]  # type: ignore[union-attr]
    except (TypeError, ValueError):
        raise ConfigError("data.split", split, allowed) from None
    if len(ratios) not in (2, 3) or not all(0 <= r <= 1 for r in ratios):  # NaN fails too
        raise ConfigError("data.split", split, allowed)
    if abs(sum(ratios) - 1.0) > 1e-6:
        raise ConfigError("data.split", split, allowed, f"These sum to {sum(ratios):g}.")
    if ratios[0] <= 0 or ratios[1] <= 0:
        raise ConfigError("data.split", split, allowed, "train and dev fractions must be > 0.")


def _stratify(y: np.ndarray, n: int) -> np.ndarray | None:
    # Stratify only when every class can appear on both sides.
    _, counts = np.unique(y, return_counts=True)
    return y if counts.min() >= 2 and n >= len(counts) else None


def _carve(
    idx: np.ndarray, y: np.ndarray, n_out: int, seed: int, stratify: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Split idx into (rest, carved) with |carved| = n_out, stratified on y[idx] (or plain seeded)."""
    if n_out <= 0:
        return idx, idx[:0]
    # Imported here: sklearn pulls scipy.stats (~1 s), which a refused config never needs.
    from sklearn.model_selection import train_test_split

    strat = _stratify(y[idx], n_out) if stratify else None
    rest, out = train_test_split(idx, test_size=n_out, random_state=seed, stratify=strat)
    return np.sort(rest), np.sort(out)


def split_indices(
    y: np.ndarray, split: object, seed: int, has_official_test: bool, n_official_test: int = 0, stratify: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Indices (train, dev, test) into y. With an official test set, test is None here
    (the caller keeps the official one) and dev is carved from y, the official training pool,
    with the `auto` size computed on the whole dataset (pool + official test). `stratify=False`
    (regression targets): plain seeded splits."""
    m = len(y)
    idx = np.arange(m)
    if has_official_test:
        if split == "auto":
            n_dev = auto_dev_size(m, m + n_official_test)
        else:
            r = [float(v) for v in split]  # type: ignore[union-attr]
            n_dev = int(round(m * r[1] / (r[0] + r[1])))
        train, dev = _carve(idx, y, n_dev, seed, stratify)
        return train, dev, None
    if split == "auto":
        _, n_dev, n_test = auto_split_sizes(m)
    else:
        _, n_dev, n_test = ratio_sizes(m, [float(v) for v in split])  # type: ignore[union-attr]
    rest, test = _carve(idx, y, n_test, seed, stratify)
    train, dev = _carve(rest, y, n_dev, seed + 1, stratify)
    return train, dev, (test if n_test > 0 else None)
