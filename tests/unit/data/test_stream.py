"""data.in_memory (torchprac/data/stream.py): when `auto` streams, and a streaming split serves
exactly the batches, slices and statistics the in-memory split has."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from torchprac import registry
from torchprac.data import build_data
from torchprac.data.stream import ArrayExamples, StreamSplit, should_stream, streamed_stats


def _folder(root: Path, n: int = 12) -> Path:
    rng = np.random.default_rng(0)
    for c in ("a", "b", "c"):
        (root / "train" / c).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(rng.integers(0, 256, (6, 5, 3), dtype=np.uint8)).save(root / "train" / c / f"{i}.png")
    return root


def _spec(root: Path, **kw):
    return registry.build("data", {"name": "image_folder", "root": str(root), "workers": 0, **kw})


def test_auto_streams_only_above_the_limit():
    gib = 2**30
    assert should_stream("auto", 3 * gib, 2.0, "cpu") and not should_stream("auto", gib, 2.0, "cpu")
    assert should_stream(False, 1, None, "cpu") and not should_stream(True, 10**15, None, "cpu")
    assert not should_stream("auto", 1000, None, "cpu")  # a few KB always fit


def test_streaming_split_serves_the_in_memory_batches(tmp_path):
    root = _folder(tmp_path)
    mem = build_data(_spec(root, in_memory=True), 3)
    st = build_data(_spec(root, in_memory="auto", memory_limit=1e-9), 3)  # auto, over a tiny limit: streams
    assert isinstance(st.train, StreamSplit) and not isinstance(mem.train, StreamSplit)
    assert torch.equal(mem.mean, st.mean) and torch.equal(mem.std, st.std)  # the same float64 pass
    batches = [torch.tensor([5, 0, 17]), torch.tensor([2, 9]), torch.tensor([11])]
    st.train.start_epoch(batches)
    for idx in batches:
        (xa, ya), (xb, yb) = mem.train.take(idx), st.train.take(idx)
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    for (xa, ya), (xb, yb) in zip(mem.dev.batches(4), st.dev.batches(4), strict=True):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    # code that reads a few examples (gradcheck, figures) gets the same rows
    assert torch.equal(st.train.x[2:5], mem.train.x[2:5])
    assert torch.equal(st.train.x.index_select(0, torch.tensor([4, 1])), mem.train.x[[4, 1]])
    assert st.train.x.shape == mem.train.x.shape


def test_streamed_statistics_equal_the_normaliser():
    from torchprac.data.normalize import fit_normalizer

    x = torch.randn(1000, 3, 4, 4, dtype=torch.float64).float() * 3 + 1
    mean, std = streamed_stats(ArrayExamples(x), batch_size=64)
    ref = fit_normalizer(x)
    torch.testing.assert_close(mean, ref.mean, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(std, ref.std, rtol=1e-6, atol=1e-6)
    assert mean.shape == (3, 1, 1)


@pytest.mark.parametrize("workers", [0, 2])
def test_array_data_streams_with_the_in_memory_statistics(workers):
    spec_mem = registry.build("data", {"name": "digits", "in_memory": True})
    spec_st = registry.build("data", {"name": "digits", "in_memory": False, "workers": workers})
    mem, st = build_data(spec_mem, 0), build_data(spec_st, 0)
    assert torch.equal(mem.mean, st.mean) and torch.equal(mem.test.y, st.test.y)
    idx = torch.randperm(len(mem.train))[:64]
    st.train.start_epoch([idx])
    assert torch.equal(st.train.take(idx)[0], mem.train.take(idx)[0])
