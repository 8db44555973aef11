"""Data stage: read a dataset, split it (train/dev/test), normalise with train statistics,
and place every split on the run's device as tensors."""

from __future__ import annotations

import numpy as np
import torch

from torchprac.data.normalize import fit_normalizer
from torchprac.data.sources import READERS, read
from torchprac.data.splits import Split, Splits, auto_split_sizes, split_indices
from torchprac.errors import ConfigError

__all__ = ["build_data", "Split", "Splits", "auto_split_sizes", "READERS"]


def _select_classes(x, y, classes):
    """Keep only `classes` and relabel them 0..k-1 in the given order."""
    keep = np.isin(y, classes)
    remap = {c: i for i, c in enumerate(classes)}
    return x[torch.as_tensor(keep) if isinstance(x, torch.Tensor) else keep], np.vectorize(remap.get)(y[keep]).astype(
        np.int64
    )


def build_data(cfg, seed: int, device: torch.device) -> Splits:
    """cfg is the `data` group. Returns Splits on `device`."""
    raw = read(cfg)
    x, y, xt, yt = raw.x, raw.y, raw.x_test, raw.y_test
    classes = cfg.get("classes")
    if classes is not None:
        classes = [int(c) for c in classes]
        present = set(np.unique(y).tolist())
        if len(classes) < 2 or len(set(classes)) != len(classes) or not set(classes) <= present:
            raise ConfigError("data.classes", classes, f"a list of at least 2 distinct labels among {sorted(present)}")
        x, y = _select_classes(x, y, classes)
        if xt is not None:
            xt, yt = _select_classes(xt, yt, classes)
    num_classes = int(len(np.unique(y))) if classes is None else len(classes)
    num_classes = max(num_classes, int(y.max()) + 1)

    tr, dv, te = split_indices(
        y, cfg.split, seed, has_official_test=xt is not None, n_official_test=0 if yt is None else len(yt)
    )
    subset = cfg.get("train_subset")
    if subset is not None and int(subset) < len(tr):
        from sklearn.model_selection import train_test_split

        strat = y[tr] if np.unique(y[tr], return_counts=True)[1].min() >= 2 and int(subset) >= num_classes else None
        tr, _ = train_test_split(tr, train_size=int(subset), random_state=seed, stratify=strat)
        tr = np.sort(tr)

    def take(a, idx):
        t = a[torch.as_tensor(idx)] if isinstance(a, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(a[idx]))
        return t

    x_all = x if isinstance(x, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(x))
    train = Split(take(x_all, tr).float(), torch.from_numpy(y[tr]))
    dev = Split(take(x_all, dv).float(), torch.from_numpy(y[dv]))
    if xt is not None:
        xt_t = xt if isinstance(xt, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(xt))
        test = Split(xt_t.float(), torch.from_numpy(yt))
    elif te is not None:
        test = Split(take(x_all, te).float(), torch.from_numpy(y[te]))
    else:
        test = None

    mean = std = None
    if cfg.get("normalize", True):
        norm = fit_normalizer(train.x)
        mean, std = norm.mean, norm.std
        train.x, dev.x = norm(train.x), norm(dev.x)
        if test is not None:
            test.x = norm(test.x)

    def to_dev(s: Split | None) -> Split | None:
        if s is None:
            return None
        return Split(s.x.to(device, non_blocking=True).contiguous(), s.y.to(device, non_blocking=True))

    return Splits(
        train=to_dev(train),
        dev=to_dev(dev),
        test=to_dev(test),
        input_shape=tuple(train.x.shape[1:]),
        num_classes=num_classes,
        mean=mean,
        std=std,
        name=str(cfg.name),
    )
