"""The logic behind bench/ and the speed work (never timings): FLOP counting, the bench's two
variants on tiny data, fused optimizers, device-side histograms, lazy imports, AMP and compile."""

from __future__ import annotations

import importlib.util
import math
import shutil
import subprocess
import sys

import pytest
import torch
from conftest import ROOT, make_cfg, run_cfg
from torch import nn

# bench/ is a folder of scripts, not a package: load the script as a module.
_spec = importlib.util.spec_from_file_location("bench_trainer", ROOT / "bench" / "bench_trainer.py")
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)

MACS_784_300_100_10 = 784 * 300 + 300 * 100 + 100 * 10  # 266 200 multiply-accumulates per example


def test_flop_counter_matches_a_hand_count():
    fwd = bench.forward_flops_per_sample(bench.hand_model(torch.device("cpu")), (1, 28, 28))
    assert fwd == 2 * MACS_784_300_100_10 == 532_400
    assert bench.train_flops_per_sample(bench.hand_model(torch.device("cpu")), (1, 28, 28)) == 3 * 532_400
    # A conv layer: 8x8 output positions x 4 channels x 3x3 kernel x 1 input channel, plus the head.
    cnn = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.Flatten(), nn.Linear(4 * 8 * 8, 10))
    assert bench.forward_flops_per_sample(cnn, (1, 8, 8)) == 2 * (8 * 8 * 4 * 9 + 256 * 10)


def test_torchprac_model_is_the_hand_model():
    """The two variants train the same architecture: same parameter shapes, same FLOPs."""
    from torchprac.nn import build_model

    ours = build_model(make_cfg(bench.OVERRIDES), bench.INPUT_SHAPE, bench.CLASSES)
    hand = bench.hand_model(torch.device("cpu"))
    assert [p.shape for p in ours.parameters()] == [p.shape for p in hand.parameters()]
    assert bench.forward_flops_per_sample(ours, bench.INPUT_SHAPE) == 2 * MACS_784_300_100_10


def test_step_matmul_shapes_count_three_forwards_minus_the_input_gradient():
    b = 32
    shapes = bench.mlp_matmul_shapes(b, [784, 300, 100, 10])
    assert len(shapes) == 3 * 3 - 1
    # forward + weight gradient + input gradient, except the first layer's (x needs no grad)
    assert sum(2 * m * k * n for m, k, n in shapes) == 2 * b * (3 * MACS_784_300_100_10 - 784 * 300)


def test_bench_variants_run_on_tiny_data(tmp_path):
    g = torch.Generator().manual_seed(0)
    data = (
        torch.randn(256, 1, 28, 28, generator=g),
        torch.randint(0, 10, (256,), generator=g),
        torch.randn(64, 1, 28, 28, generator=g),
        torch.randint(0, 10, (64,), generator=g),
    )
    train_loss, dev_loss, dev_acc = bench.hand_loop(data, 64, 1)()
    assert math.isfinite(train_loss) and math.isfinite(dev_loss) and 0 <= dev_acc <= 1
    fit, close = bench.torchprac_trainer(data, 64, 1, tmp_path / "run")
    result = fit()
    close()
    assert result.status == "completed" and result.epochs_run == 1
    assert (tmp_path / "run" / "checkpoints" / "last.pt").is_file()


def test_optimizers_get_fused_kernels_where_torch_has_them():
    from torchprac.nn import build_model
    from torchprac.optim import build_optim
    from torchprac.optim.fast import fast_kwargs

    def defaults(overrides):
        cfg = make_cfg(overrides)
        return build_optim(cfg, build_model(cfg, (1, 8, 8), 10), 10, 1).optimizer.defaults

    assert defaults([])["fused"] is True  # nesterov: torch.optim.SGD
    assert defaults(["optimizer=adam"])["fused"] is True
    assert not defaults(["optimizer=rmsprop"]).get("fused")  # no fused RMSprop: torch's default
    assert not defaults(["+optimizer.fused=false"])["fused"]  # an explicit choice wins
    cpu = torch.device("cpu")
    assert fast_kwargs(torch.optim.SGD, cpu, {"foreach": True}) == {}
    assert fast_kwargs(torch.optim.NAdam, cpu, {}) == {}


def test_fused_sgd_trains_like_the_default_kernel():
    torch.manual_seed(0)
    x, y = torch.randn(64, 20), torch.randint(0, 3, (64,))
    finals = []
    for kw in ({}, {"fused": True}):
        torch.manual_seed(1)
        m = nn.Sequential(nn.Linear(20, 16), nn.ELU(), nn.Linear(16, 3))
        opt = torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3, **kw)
        for i in range(0, 64, 8):
            opt.zero_grad()
            nn.functional.cross_entropy(m(x[i : i + 8]), y[i : i + 8]).backward()
            opt.step()
        finals.append(torch.cat([p.detach().flatten() for p in m.parameters()]))
    torch.testing.assert_close(finals[0], finals[1], rtol=1e-5, atol=1e-6)


def test_device_side_histograms_round_trip(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from torchprac.train import TBLogger

    w = torch.randn(300, 50, generator=torch.Generator().manual_seed(0))
    logger = TBLogger(tmp_path)
    logger.add_histograms({"w": w, "const": torch.full((7,), 2.0), "bad": torch.tensor([1.0, math.nan])}, step=3)
    logger.close()
    acc = EventAccumulator(str(tmp_path), size_guidance={"histograms": 0}).Reload()
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


def test_the_default_path_imports_neither_torchvision_nor_tensorboard_up_front():
    code = (
        "import sys, torchprac.run; "
        "print(sorted(m for m in ('torchvision', 'torch.utils.tensorboard') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_bf16_mixed_precision_trains_on_cpu(tmp_path):
    _, m = run_cfg(["trainer.precision=bf16-mixed", "trainer.epochs=2", "trainer.health.enabled=false"], tmp_path)
    assert m["status"] == "completed"
    assert m["metrics"]["dev"]["accuracy"] > 0.5  # digits: learns in bf16 too


@pytest.mark.slow
@pytest.mark.skipif(
    shutil.which("cc") is None and shutil.which("gcc") is None, reason="torch.compile on CPU needs a C compiler"
)
def test_compiled_model_trains(tmp_path):
    _, m = run_cfg(["trainer.compile=true", "trainer.epochs=1", "trainer.health.enabled=false"], tmp_path)
    assert m["status"] == "completed"
    assert math.isfinite(m["metrics"]["dev"]["loss"])
