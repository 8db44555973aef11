"""TBLogger: device-side histograms read back with tensorboard's own EventAccumulator."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import events

from torchprac.train import TBLogger


def test_device_side_histograms_round_trip(tmp_path):
    w = torch.randn(300, 50, generator=torch.Generator().manual_seed(0))
    logger = TBLogger(tmp_path)
    logger.add_histograms({"w": w, "const": torch.full((7,), 2.0), "bad": torch.tensor([1.0, math.nan])}, step=3)
    logger.close()
    acc = events(tmp_path)
    assert set(acc.Tags()["histograms"]) == {"w", "const"}  # non-finite tensors are skipped
    h = acc.Histograms("w")[0]
    assert h.step == 3
    hv = h.histogram_value
    assert hv.num == w.numel() == sum(hv.bucket)
    assert hv.min == pytest.approx(w.min().item()) and hv.max == pytest.approx(w.max().item())
    assert hv.sum == pytest.approx(w.sum().item(), abs=1e-2)
    assert hv.sum_squares == pytest.approx((w * w).sum().item(), rel=1e-5)
    c = acc.Histograms("const")[0].histogram_value
    assert (c.num, sum(c.bucket), c.min, c.max) == (7, 7, 2.0, 2.0)


def test_hparams_go_into_the_run_own_event_file(tmp_path):
    logger = TBLogger(tmp_path)
    logger.hparams({"lr": 0.1, "optimizer": "sgd"}, {"hparam/dev_accuracy": 0.75})
    logger.close()
    assert [p for p in tmp_path.iterdir() if p.is_dir()] == []  # no timestamped sub-run
    assert [e.value for e in events(tmp_path).Scalars("hparam/dev_accuracy")] == [0.75]
