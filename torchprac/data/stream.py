"""Larger than memory: `data.in_memory=auto|true|false`.

In memory (the default whenever it fits), every split is one tensor on the device and a
mini-batch is an index slice. Streaming, a split is a `StreamSplit`: its examples stay where
they are (image files, or host arrays) and a `DataLoader` (worker processes, pinned memory,
persistent workers, prefetch) decodes the batches the Trainer asks for. The Trainer draws the
same seeded permutation either way and hands each epoch's index lists to the loader as its batch
sampler, so the two paths see the same batches in the same order; decoding returns the same
bytes (uint8 images), and the conversion to float, the normalisation and any augmentation run on
the device after the transfer. The sampler has no state of its own: an epoch's order is a
function of the trainer's generator, which every checkpoint stores, so a resumed run replays the
interrupted epoch exactly.

`auto` streams when the decoded float32 dataset would exceed `data.memory_limit` GiB (default:
half of the available RAM, and of the free GPU memory when training on CUDA)."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from torchprac.data.splits import Split

log = logging.getLogger("torchprac")


class Examples(Dataset):
    """A dataset read on demand: item i is one example as a CPU tensor (uint8 for images);
    `finish` turns a batch of them into float inputs, on whatever device the batch is."""

    shape: tuple[int, ...] = ()  # one example's shape

    def finish(self, batch: torch.Tensor) -> torch.Tensor:
        return batch.float()

    def subset(self, indices: np.ndarray) -> Examples:
        return Subset(self, np.asarray(indices, dtype=np.int64))

    def nbytes(self) -> int:
        """Size of the decoded dataset as float32."""
        return len(self) * int(np.prod(self.shape)) * 4

    def load(self, indices: Sequence[int] | None = None, workers: int = 0) -> torch.Tensor:
        """Decode examples (all by default) into one float tensor on the CPU."""
        ds = self if indices is None else self.subset(np.asarray(indices))
        if len(ds) == 0:
            return torch.zeros((0, *self.shape))
        loader = DataLoader(ds, batch_size=256, num_workers=workers, collate_fn=torch.stack, generator=_own_rng())
        return torch.cat([self.finish(b) for b in loader])


class Subset(Examples):
    def __init__(self, base: Examples, indices: np.ndarray) -> None:
        self.base, self.indices = base, indices
        self.shape = base.shape

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.base[int(self.indices[i])]

    def finish(self, batch: torch.Tensor) -> torch.Tensor:
        return self.base.finish(batch)

    def subset(self, indices: np.ndarray) -> Examples:
        return Subset(self.base, self.indices[np.asarray(indices, dtype=np.int64)])


class ArrayExamples(Examples):
    """Examples held in host memory (a numpy array or CPU tensor), streamed to the device in
    batches: for data that fits in RAM but not on the GPU, and to compare the two paths."""

    def __init__(self, x: np.ndarray | torch.Tensor) -> None:
        self.x = x if isinstance(x, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(x))
        self.shape = tuple(self.x.shape[1:])

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.x[i]


def _detach_inherited_loaders() -> None:
    """In a freshly forked DataLoader worker: the parent's persistent loader iterators were
    copied into it; marked shut down, their cleanup there no longer probes the parent's own
    workers (PyTorch's "can only test a child process" noise when a second loader starts)."""
    from torch.utils.data import dataloader

    for it in tuple(getattr(dataloader, "_persistent_workers_atexit", ())):
        it._shutdown = True


os.register_at_fork(after_in_child=_detach_inherited_loaders)


def _own_rng() -> torch.Generator:
    """A DataLoader draws its workers' base seed from its generator at every iter(); from the
    global one by default, which would shift the model's init and dropout masks against an
    in-memory run. Decoding draws nothing, so a fixed private generator is enough."""
    return torch.Generator().manual_seed(0)


# -- deciding ------------------------------------------------------------------------------------
def available_bytes(device: torch.device | str) -> int | None:
    """Free RAM, or the smaller of free RAM and free GPU memory for a CUDA device."""
    try:
        have = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        have = None
    dev = torch.device(device)
    if dev.type == "cuda" and torch.cuda.is_available():
        free, _ = torch.cuda.mem_get_info(dev)
        have = free if have is None else min(have, free)
    return have


def should_stream(in_memory: Any, nbytes: int, memory_limit_gib: float | None, device) -> bool:
    if in_memory is True or in_memory == "true":
        return False
    if in_memory is False or in_memory == "false":
        return True
    if memory_limit_gib is not None:
        limit = memory_limit_gib * 2**30
    else:
        have = available_bytes(device)
        if have is None:
            return False
        limit = 0.5 * have
    stream = nbytes > limit
    if stream:
        log.info(
            "data: %.2f GiB decoded is more than data.memory_limit (%.2f GiB): streaming batches through a DataLoader",
            nbytes / 2**30,
            limit / 2**30,
        )
    return stream


def default_workers() -> int:
    return max(0, min(4, (os.cpu_count() or 1) - 1))


# -- statistics ----------------------------------------------------------------------------------
@torch.no_grad()
def streamed_stats(ex: Examples, workers: int = 0, batch_size: int = 512, eps: float = 1e-8):
    """Per-feature (vectors) or per-channel (images, signals) mean and population std of the
    examples, in one float64 pass over batches: the training split's normaliser without holding
    the split in memory."""
    loader = DataLoader(ex, batch_size=batch_size, num_workers=workers, collate_fn=torch.stack, generator=_own_rng())
    total = total_sq = None
    count = 0
    for b in loader:
        x = ex.finish(b).double()
        dims = (0,) if x.ndim <= 2 else (0, *range(2, x.ndim))
        s, sq = x.sum(dims), x.square().sum(dims)
        total, total_sq = (s, sq) if total is None else (total + s, total_sq + sq)
        count += x.numel() // (x.shape[1] if x.ndim > 1 else 1)
    mean = total / count
    std = (total_sq / count - mean.square()).clamp_min(0).sqrt().clamp_min(eps)
    shape = (len(mean),) + (1,) * (len(ex.shape) - 1) if len(ex.shape) > 1 else (len(mean),)
    return mean.reshape(shape).float(), std.reshape(shape).float()


# -- the streaming split -------------------------------------------------------------------------
class _EpochBatches(Sampler):
    """The batch sampler of a StreamSplit's loader: the index lists of the current epoch,
    set by the Trainer from its seeded permutation before the epoch starts."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


class LazyX:
    """`split.x` of a StreamSplit for code that reads a few examples (gradcheck, figures, the
    lr range test): slices and index selections decode just those rows, in the main process."""

    def __init__(self, split: StreamSplit) -> None:
        self.split = split
        self.shape = (len(split), *split.examples.shape)
        self.device = split.y.device
        self.dtype = torch.float32
        self.ndim = len(self.shape)

    def __len__(self) -> int:
        return self.shape[0]

    def _rows(self, idx) -> np.ndarray:
        if isinstance(idx, slice):
            return np.arange(len(self))[idx]
        if isinstance(idx, torch.Tensor):
            idx = idx.cpu().numpy()
        return np.arange(len(self))[np.asarray(idx)]

    def __getitem__(self, idx) -> torch.Tensor:
        if isinstance(idx, int):
            return self[[idx]][0]
        rows = self._rows(idx)
        x = self.split.examples.load(rows).to(self.device)
        return self.split.normalize(x)

    def index_select(self, dim: int, idx: torch.Tensor) -> torch.Tensor:
        assert dim == 0
        return self[idx]


class StreamSplit(Split):
    """A split whose inputs are decoded by a DataLoader batch by batch; labels on the device."""

    def __init__(
        self,
        examples: Examples,
        y: torch.Tensor,
        mean: torch.Tensor | None,
        std: torch.Tensor | None,
        workers: int = 0,
        prefetch: int = 4,
    ) -> None:
        self.examples, self.y = examples, y
        dev = y.device
        self.mean = None if mean is None else mean.to(dev)
        self.std = None if std is None else std.to(dev)
        self.workers, self.prefetch = int(workers), int(prefetch)
        self._sampler, self._eval_sampler = _EpochBatches(), _EpochBatches()
        self._loader: DataLoader | None = None
        self._eval_loader: DataLoader | None = None
        self._it: Iterator | None = None

    @property
    def x(self) -> LazyX:  # type: ignore[override]
        return LazyX(self)

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.mean is None else (x - self.mean) / self.std

    def _to_inputs(self, b: torch.Tensor) -> torch.Tensor:
        b = b.to(self.y.device, non_blocking=True)
        return self.normalize(self.examples.finish(b))

    def _make_loader(self, sampler) -> DataLoader:
        w = self.workers
        return DataLoader(
            self.examples,
            batch_sampler=sampler,
            num_workers=w,
            collate_fn=torch.stack,
            pin_memory=self.y.device.type == "cuda",
            persistent_workers=w > 0,
            prefetch_factor=self.prefetch if w > 0 else None,
            generator=_own_rng(),
        )

    # -- training: the Trainer's index lists, in its order ---------------------------------------
    def start_epoch(self, batches: list[torch.Tensor]) -> None:
        """The epoch's batches as index tensors (one host copy per epoch, not per step)."""
        if not batches:
            self._it = None
            return
        flat = torch.cat(batches).cpu().tolist()
        out, i = [], 0
        for b in batches:
            out.append(flat[i : i + len(b)])
            i += len(b)
        self._sampler.batches = out
        if self._loader is None:  # persistent workers: made once, reused every epoch
            self._loader = self._make_loader(self._sampler)
        self._it = iter(self._loader)

    def take(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self._it is None:
            raise RuntimeError("StreamSplit.take before start_epoch")
        return self._to_inputs(next(self._it)), self.y.index_select(0, idx)

    # -- evaluation: in order ---------------------------------------------------------------------
    def batches(self, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = len(self)
        self._eval_sampler.batches = [list(range(i, min(i + batch_size, n))) for i in range(0, n, batch_size)]
        if self._eval_loader is None:
            self._eval_loader = self._make_loader(self._eval_sampler)
        for i, b in zip(range(0, n, batch_size), self._eval_loader):
            yield self._to_inputs(b), self.y[i : i + batch_size]
