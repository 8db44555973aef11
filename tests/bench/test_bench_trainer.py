"""The logic behind bench/bench_trainer.py (never timings): FLOP counting, the matmul shapes of
a step, and the bench's two variants on tiny data."""

from __future__ import annotations

import importlib.util
import math

import torch
from conftest import ROOT, make_model
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
    _, ours = make_model(bench.OVERRIDES, bench.INPUT_SHAPE, bench.CLASSES)
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


def test_fashion_mnist_is_read_through_the_data_group(shared_data):
    what, (x, y, xd, yd) = bench.load_data(shared_data, torch.device("cpu"))
    assert what.startswith("Fashion-MNIST") and x.shape == (60_000, 1, 28, 28) and xd.shape == (10_000, 1, 28, 28)
    assert abs(float(x.mean())) < 1e-3  # normalised with the training statistics
