"""torchprac's Trainer against a minimal hand-written PyTorch loop, in ONE process.

Same model (MLP 784-300-100-10, ELU, he_normal), same optimizer (SGD, Nesterov momentum 0.9),
same in-memory data (Fashion-MNIST train split, 60 000 samples, from --data-root when present,
else random data of the same shape). The two variants alternate (a b, b a, ...) so drift in
machine load hits both alike. Prints samples/s (median, min, max over --repeats), the ratio
b/a, a FLOP-based throughput bound, the start-up time of `python train.py`, and last the line
`min ratio X`.

    python bench/bench_trainer.py                      # what `make bench` runs
    python bench/bench_trainer.py --batch-sizes 32 --repeats 5
    python bench/bench_trainer.py --profile            # where one Trainer epoch at batch 32 goes
    python bench/bench_trainer.py --threads 1          # steadier on a machine others are using
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from math import prod
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_ROOT = ROOT.parent / "shared" / "data"
N_TRAIN, N_DEV, INPUT_SHAPE, CLASSES = 60_000, 10_000, (1, 28, 28), 10
HIDDEN = (300, 100)
LR, MOMENTUM = 0.05, 0.9  # conf/optimizer/nesterov.yaml
# ELU is the benchmark's; relu shows what torch's slow CPU expm1 (ELU's kernel) costs (README).
ACTIVATIONS = {"elu": nn.ELU, "relu": nn.ReLU}

# The Trainer side is configured through the real config tree, as `python train.py` would be.
OVERRIDES = [
    f"model.hidden=[{','.join(map(str, HIDDEN))}]",
    "activation=elu",
    "init=he_normal",
    "optimizer=nesterov",
    f"optimizer.lr={LR}",
    f"optimizer.momentum={MOMENTUM}",
    "scheduler=none",
    "clip=none",
    "reg=[]",
    # A terminal would get a tqdm bar; the bench prints a table instead.
    "trainer.progress=false",
]


# -- FLOPs and the bound ---------------------------------------------------------------------
def forward_flops_per_sample(model: nn.Module, input_shape: tuple[int, ...], batch: int = 4) -> float:
    """Forward FLOPs of one example (2 x multiply-accumulates of matmuls and convolutions), as
    counted by torch's own FlopCounterMode."""
    from torch.utils.flop_counter import FlopCounterMode

    was_training = model.training
    model.eval()
    x = torch.zeros(batch, *input_shape, device=next(model.parameters()).device)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x)
    model.train(was_training)
    return counter.get_total_flops() / batch


def train_flops_per_sample(model: nn.Module, input_shape: tuple[int, ...]) -> float:
    """Training ~ 3 x forward: the backward pass costs two matmuls per forward matmul."""
    return 3.0 * forward_flops_per_sample(model, input_shape)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_gflops(
    device: torch.device, shapes: list[tuple[int, int, int]], seconds: float = 0.5, trials: int = 3
) -> float:
    """Best-of-`trials` fp32 GFLOP/s of running the (m, k, n) matmuls `shapes` back to back."""
    mats = [
        (torch.randn(m, k, device=device), torch.randn(k, n, device=device), torch.empty(m, n, device=device))
        for m, k, n in shapes
    ]
    flops = sum(2 * m * k * n for m, k, n in shapes)
    best = 0.0
    for _ in range(trials):
        for a, b, c in mats:  # warm-up: oneDNN/cuBLAS pick their kernels on first use
            torch.mm(a, b, out=c)
        _sync(device)
        reps, t0 = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - t0) < seconds:
            for a, b, c in mats:
                torch.mm(a, b, out=c)
            reps += 1
            if reps % 8 == 0:  # bound the queue of asynchronous CUDA work
                _sync(device)
        _sync(device)
        elapsed = time.perf_counter() - t0
        best = max(best, flops * reps / elapsed / 1e9)
    return best


def mlp_matmul_shapes(batch: int, widths: list[int]) -> list[tuple[int, int, int]]:
    """The matmuls of one training step of an MLP: forward X W^T, backward dW = dY^T X and
    dX = dY W (none for the first layer: the input needs no gradient)."""
    out = []
    for i, (fan_in, fan_out) in enumerate(zip(widths[:-1], widths[1:])):
        out.append((batch, fan_in, fan_out))
        out.append((fan_out, batch, fan_in))
        if i > 0:
            out.append((batch, fan_out, fan_in))
    return out


# -- data --------------------------------------------------------------------------------------
def load_data(root: Path | None, device: torch.device) -> tuple[str, tuple[torch.Tensor, ...]]:
    """(description, (x_train, y_train, x_dev, y_dev)) on `device`, normalised with train stats."""
    from torchprac.data.normalize import fit_normalizer

    if root is not None and (root / "FashionMNIST" / "raw").is_dir():
        from omegaconf import OmegaConf

        from torchprac.data.sources import read

        raw = read(OmegaConf.create({"name": "fashion_mnist", "root": str(root), "download": False}))
        x, y = raw.x[:N_TRAIN], torch.as_tensor(raw.y[:N_TRAIN])
        xd, yd = raw.x_test[:N_DEV], torch.as_tensor(raw.y_test[:N_DEV])
        what = f"Fashion-MNIST from {root}"
    else:
        g = torch.Generator().manual_seed(0)
        x, xd = torch.rand(N_TRAIN, *INPUT_SHAPE, generator=g), torch.rand(N_DEV, *INPUT_SHAPE, generator=g)
        y, yd = torch.randint(0, CLASSES, (N_TRAIN,), generator=g), torch.randint(0, CLASSES, (N_DEV,), generator=g)
        what = "random data (Fashion-MNIST not found)"
    norm = fit_normalizer(x)
    tensors = tuple(t.to(device).contiguous() for t in (norm(x), y, norm(xd), yd))
    return f"{what}: {len(tensors[0])} train / {len(tensors[2])} dev", tensors


# -- (a) the hand-written loop ---------------------------------------------------------------
def hand_model(device: torch.device, activation: str = "elu") -> nn.Module:
    widths = [INPUT_SHAPE[0] * INPUT_SHAPE[1] * INPUT_SHAPE[2], *HIDDEN, CLASSES]
    layers: list[nn.Module] = [nn.Flatten()]
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        lin = nn.Linear(a, b)
        nn.init.kaiming_normal_(lin.weight, mode="fan_in", nonlinearity="relu")
        nn.init.zeros_(lin.bias)
        layers += [lin] if i == len(widths) - 2 else [lin, ACTIVATIONS[activation]()]
    return nn.Sequential(*layers).to(device)


def hand_loop(
    data: tuple[torch.Tensor, ...], batch: int, epochs: int, activation: str = "elu"
) -> Callable[[], list[float]]:
    """Per-epoch randperm, index slices, dev evaluation under no_grad, one host sync per epoch."""
    x, y, xd, yd = data
    torch.manual_seed(0)
    model = hand_model(x.device, activation)
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM, nesterov=True)
    gen = torch.Generator(device=x.device).manual_seed(0)

    def run() -> list[float]:
        n, stats = len(x), []
        for _ in range(epochs):
            model.train()
            perm = torch.randperm(n, device=x.device, generator=gen)
            loss_sum = torch.zeros((), device=x.device)
            for i in range(0, n, batch):
                idx = perm[i : i + batch]
                loss = F.cross_entropy(model(x[idx]), y[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                loss_sum += loss.detach() * len(idx)
            model.eval()
            with torch.no_grad():
                dev_loss = torch.zeros((), device=x.device)
                correct = torch.zeros((), device=x.device, dtype=torch.long)
                for i in range(0, len(xd), 4096):
                    logits = model(xd[i : i + 4096])
                    dev_loss += F.cross_entropy(logits, yd[i : i + 4096], reduction="sum")
                    correct += (logits.argmax(1) == yd[i : i + 4096]).sum()
            # The one host sync of the epoch.
            stats = torch.stack([loss_sum / n, dev_loss / len(xd), correct / len(xd)]).tolist()
        return stats

    return run


# -- (b) torchprac's Trainer, built by torchprac.run's own stage functions -------------------
def torchprac_trainer(
    data: tuple[torch.Tensor, ...], batch: int, epochs: int, run_dir: Path, overrides: list[str] | None = None
) -> tuple[Callable[[], object], Callable[[], None]]:
    """(fit, close): what run.py builds (TensorBoard logger with the config text, early stopping,
    checkpoints, histograms, the health monitor) from the config tree's trainer defaults."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from torchprac import distributed
    from torchprac.data.splits import Split, Splits
    from torchprac.run import build_model_on, build_optim_for, build_trainer, precision_context
    from torchprac.train import TBLogger

    x, y, xd, yd = data
    ov = [
        *OVERRIDES,
        f"trainer.batch_size={batch}",
        f"trainer.epochs={epochs}",
        f"paths.run_dir={run_dir}",
        "trainer.progress=false",  # the bench prints its own table
        *(overrides or []),
    ]
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(config_name="config", overrides=ov)
    torch.manual_seed(0)
    splits = Splits(Split(x, y), Split(xd, yd), None, INPUT_SHAPE, CLASSES)
    model = build_model_on(cfg, splits, x.device)
    optim = build_optim_for(cfg, model, splits, world_size=1)
    logger = TBLogger(run_dir)
    logger.text("config", "```yaml\n" + OmegaConf.to_yaml(cfg) + "\n```")
    precision = precision_context(str(cfg.trainer.precision), x.device)
    trainer, _ = build_trainer(cfg, model, optim, splits, logger, distributed.setup(x.device), None, run_dir, precision)
    return trainer.fit, logger.close


# -- measurement ---------------------------------------------------------------------------------
def timed(fn: Callable[[], object], device: torch.device) -> float:
    _sync(device)
    t0 = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - t0


def measure(
    data: tuple[torch.Tensor, ...], batch: int, epochs: int, repeats: int, tmp: Path, activation: str = "elu"
) -> tuple[list[float], list[float]]:
    """Samples/s of (a) the hand loop and (b) the Trainer, alternating a/b every repeat."""
    device, n = data[0].device, len(data[0]) * epochs
    hand: list[float] = []
    ours: list[float] = []

    def once(variant: str, sub: tuple[torch.Tensor, ...], out: list[float] | None, k: int) -> None:
        if variant == "a":
            fn, close = hand_loop(sub, batch, epochs, activation), (lambda: None)
        else:
            fn, close = torchprac_trainer(sub, batch, epochs, tmp / f"b{batch}_{k}", [f"activation={activation}"])
        dt = timed(fn, device)
        close()
        if out is not None:
            out.append(n / dt)

    # Warm-up on a slice: allocator, oneDNN primitives and lazy imports are paid outside the timing.
    warm = (data[0][: 4 * max(batch, 1024)], data[1][: 4 * max(batch, 1024)], data[2][:2048], data[3][:2048])
    once("a", warm, None, -1)
    once("b", warm, None, -1)
    for k in range(repeats):
        for v in "ab" if k % 2 == 0 else "ba":
            once(v, data, hand if v == "a" else ours, k)
    return hand, ours


def startup(tmp: Path) -> tuple[float, float]:
    """(wall s of `python train.py` on the default config, s to import torchprac.run)."""
    t0 = time.perf_counter()
    r = subprocess.run(
        [sys.executable, str(ROOT / "train.py"), f"hydra.run.dir={tmp / 'startup'}"],  # no bar: not a terminal
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit(f"python train.py failed (exit {r.returncode}):\n{r.stderr[-2000:]}")
    code = "import time; t = time.perf_counter(); import torchprac.run; print(time.perf_counter() - t)"
    imp = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return wall, float(imp.stdout.strip())


def profile(data: tuple[torch.Tensor, ...], batch: int, tmp: Path, rows: int = 15) -> None:
    """One Trainer epoch at `batch` (on 16 384 samples) under torch.profiler (where the op
    time goes), then under cProfile (where the Python time goes)."""
    import cProfile
    import pstats

    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    sub = tuple(t[:16_384] if i < 2 else t for i, t in enumerate(data))
    fit, close = torchprac_trainer(sub, batch, 1, tmp / "warm")
    fit()  # warm-up: first-call costs (oneDNN primitives, lazy imports) are not the loop's
    close()
    fit, close = torchprac_trainer(sub, batch, 1, tmp / "profile")
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if data[0].is_cuda else [])
    with torch_profile(activities=acts) as prof:
        fit()
    close()
    print(f"torch.profiler, Trainer, batch {batch}, {len(sub[0])} samples: top ops by self CPU time")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows))
    fit, close = torchprac_trainer(sub, batch, 1, tmp / "cprofile")
    pr = cProfile.Profile()
    pr.runcall(fit)
    close()
    print("cProfile, same epoch: top functions by own time")
    pstats.Stats(pr).sort_stats("tottime").print_stats(rows)


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), "cpu")
    except OSError:
        return "cpu"


def fmt(xs: list[float]) -> str:
    return f"{statistics.median(xs):>9,.0f} [{min(xs):>7,.0f}, {max(xs):>7,.0f}]"


def bench_device(dev_name: str, args: argparse.Namespace, tmp: Path) -> list[float]:
    """Print one device's table; returns its b/a ratios. The table is printed at the end: the
    bound uses the best matmul rate seen over the whole run (measured before and after every
    batch size), since one reading on a busy machine can be far below what the hardware does."""
    device = torch.device(dev_name)
    what, data = load_data(args.data_root, device)
    fwd = forward_flops_per_sample(hand_model(device), INPUT_SHAPE)
    load = os.getloadavg()[0]
    where = (
        f"{torch.get_num_threads()} threads, {cpu_name()}, ATen {torch.backends.cpu.get_cpu_capability()}"
        if dev_name == "cpu"
        else torch.cuda.get_device_name()
    )
    print(f"device {dev_name} ({where}); {what}; load average {load:.2f}")
    if dev_name == "cpu" and load > 0.5 * (os.cpu_count() or 1):
        print(f"warning: the machine is busy (load {load:.1f}): CPU numbers are noisy, --threads 1 is steadier")
    print(
        f"model MLP 784-{'-'.join(map(str, HIDDEN))}-10 {args.activation} he_normal, SGD Nesterov 0.9; "
        f"{args.epochs} epoch(s) per run, {args.repeats} runs per variant, alternating a/b",
        flush=True,
    )
    peak = [matmul_gflops(device, [(2048, 2048, 2048)])]
    widths = [prod(INPUT_SHAPE), *HIDDEN, CLASSES]
    rows = []
    for b in args.batch_sizes:
        hand, ours = measure(data, b, args.epochs, args.repeats, tmp, args.activation)
        shapes = mlp_matmul_shapes(b, widths)
        mm = matmul_gflops(device, shapes, seconds=0.3) * 1e9 * b / sum(2 * m * k * n for m, k, n in shapes)
        rows.append((b, hand, ours, statistics.median(o / h for o, h in zip(ours, hand)), mm))
        peak.append(matmul_gflops(device, [(2048, 2048, 2048)]))
        print(f"  batch {b} measured", file=sys.stderr, flush=True)
    bound = max(peak) * 1e9 / (3 * fwd)
    print(
        f"fp32 matmul peak {max(peak):,.1f} GFLOP/s (2048^3, best of {len(peak)} readings, lowest "
        f"{min(peak):,.1f}); {fwd / 1e6:.4f} MFLOP forward, {3 * fwd / 1e6:.4f} MFLOP training per "
        f"sample -> bound {bound:,.0f} samples/s"
    )
    print("samples/s: median [min, max]. b/a: median over repeats of (b) / its neighbouring (a) run.")
    print("mm/bound: the step's own matmuls alone at this batch size, over the bound: a ceiling for any loop.")
    print(
        f"{'batch':>5} | {'(a) hand loop samples/s':>28} | {'(b) torchprac Trainer':>28} | "
        f"{'b/a':>5} | {'b/bound':>7} | {'mm/bound':>8}"
    )
    for b, hand, ours, ratio, mm in rows:
        print(
            f"{b:>5} | {fmt(hand)} | {fmt(ours)} | {ratio:5.3f} | "
            f"{statistics.median(ours) / bound:7.3f} | {mm / bound:8.3f}"
        )
    return [r[3] for r in rows]


def main(argv: list[str] | None = None) -> float:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[32, 128, 1024])
    p.add_argument("--repeats", type=int, default=5, help="timed runs per variant (median reported)")
    p.add_argument("--epochs", type=int, default=1, help="epochs per timed run")
    p.add_argument("--device", default="all", choices=["all", "cpu", "cuda"], help="all: cpu, and cuda when available")
    p.add_argument("--data-root", type=Path, default=DEFAULT_ROOT)
    p.add_argument(
        "--activation", default="elu", choices=sorted(ACTIVATIONS), help="both variants (elu is the benchmark)"
    )
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's own)")
    p.add_argument("--no-startup", action="store_true", help="skip the train.py start-up measurement")
    p.add_argument("--profile", action="store_true", help="profile the Trainer at the first batch size and exit")
    args = p.parse_args(argv)
    if args.repeats < 3:
        p.error("--repeats must be at least 3 (the median of fewer is not worth printing)")
    if args.threads:
        torch.set_num_threads(args.threads)
    devices = {"all": ["cpu"] + (["cuda"] if torch.cuda.is_available() else []), "cpu": ["cpu"], "cuda": ["cuda"]}
    with tempfile.TemporaryDirectory(prefix="torchprac-bench-") as td:
        tmp = Path(td)
        if args.profile:
            _, data = load_data(args.data_root, torch.device(devices[args.device][-1]))
            profile(data, args.batch_sizes[0], tmp)
            return 0.0
        ratios = [r for dev_name in devices[args.device] for r in bench_device(dev_name, args, tmp)]
        if not args.no_startup:
            wall, imp = startup(tmp)
            print(
                f"start-up: python train.py (default config, full run) {wall:.1f} s wall; "
                f"import torchprac.run {imp:.2f} s"
            )
    print(f"load average at end {os.getloadavg()[0]:.2f} (1 min), {os.cpu_count()} CPUs")
    worst = min(ratios)
    print(f"min ratio {worst:.3f}")
    return worst


if __name__ == "__main__":
    main()
