"""torchprac's Trainer against a minimal hand-written PyTorch loop, in ONE process.

Same model (MLP 784-300-100-10, ELU, he_normal), same optimizer (SGD, Nesterov momentum 0.9),
same in-memory data (Fashion-MNIST train split, 60 000 samples, from --data-root when present,
else random data of the same shape). Variants: (a) the hand loop, (b) the Trainer, (c) the
Trainer with trainer.compile=true, on CUDA also (p) bf16 autocast; they alternate in a rotated
order (a b c, b c a, ...) so drift in machine load hits all alike. Prints samples/s (median,
min, max over --repeats), each variant's ratio to the hand loop and to a FLOP-based throughput
bound, then `vs lightning X` (Trainer / PyTorch Lightning doing the same job at batch 128, when
pytorch-lightning is installed: the `bench` extra), the start-up time of `python train.py`, and
last the line `min ratio X` (the smallest b/a).

    python bench/bench_trainer.py                      # what `make bench` runs first
    python bench/bench_trainer.py --batch-sizes 32 --repeats 5 --variants ab --no-lightning
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
    # The pictures (activation histograms, the figure rendered when fit ends: ~1-2 s per run) are
    # a lesson aid, not training work that the hand loop or Lightning does; variant v has them.
    "viz.enabled=false",
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


# What the timings read: wall time, or with --cpu-time this process's CPU time, which other
# processes cannot inflate (meaningful with one thread only: idle OpenMP threads spin).
clock: Callable[[], float] = time.perf_counter


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
        reps, t0 = 0, clock()
        while (elapsed := clock() - t0) < seconds:
            for a, b, c in mats:
                torch.mm(a, b, out=c)
            reps += 1
            if reps % 8 == 0:  # bound the queue of asynchronous CUDA work
                _sync(device)
        _sync(device)
        elapsed = clock() - t0
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
        from torchprac import registry

        raw = registry.build("data", {"name": "fashion_mnist", "root": str(root), "download": False}).read()
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

    from torchprac import distributed
    from torchprac.config import RunConfig
    from torchprac.data.splits import Split, Splits
    from torchprac.run import build_model, build_trainer
    from torchprac.train import Precision, TBLogger

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
        rc = RunConfig.from_cfg(compose(config_name="config", overrides=ov))
    torch.manual_seed(0)
    splits = Splits(Split(x, y), Split(xd, yd), None, INPUT_SHAPE, CLASSES)
    model = build_model(rc, splits.input_shape, splits.num_classes, x.device)
    logger = TBLogger(run_dir)
    logger.text("config", "```yaml\n" + rc.yaml + "\n```")
    precision = Precision.of(rc.trainer.precision, x.device)
    trainer, _ = build_trainer(rc, model, splits, precision, logger, distributed.setup(x.device), None, run_dir)
    return trainer.fit, logger.close


# -- (L) the same job in PyTorch Lightning (optional: the `bench` extra) ----------------------
def lightning_version() -> str | None:
    try:
        import pytorch_lightning as pl
    except ImportError:
        return None
    return pl.__version__


def lightning_trainer(
    data: tuple[torch.Tensor, ...], batch: int, epochs: int, run_dir: Path, activation: str = "elu"
) -> tuple[Callable[[], object], Callable[[], None]]:
    """(fit, close): the hand loop's model trained by Lightning doing the Trainer's job: the same
    in-memory tensors (shuffled every epoch, batches gathered by index lists: no per-sample
    collate), SGD Nesterov with the same fused kernel torchprac picks, TensorBoard logging
    (train loss/accuracy every 25 steps and per epoch, dev loss/accuracy per epoch), a
    checkpoint every epoch (last + best on dev loss), early stopping on dev loss (patience 10),
    no progress bar, no model summary, no sanity-check validation."""
    import logging
    import warnings

    import pytorch_lightning as pl
    from pytorch_lightning.callbacks import EarlyStopping, ModelCheckpoint
    from pytorch_lightning.loggers import TensorBoardLogger
    from torch.utils.data import BatchSampler, DataLoader, RandomSampler, SequentialSampler, TensorDataset

    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)  # "GPU available: ..." lines
    x, y, xd, yd = data
    fused = x.device.type in ("cpu", "cuda")

    class Module(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            torch.manual_seed(0)
            self.net = hand_model(x.device, activation)

        def forward(self, xb: torch.Tensor) -> torch.Tensor:
            return self.net(xb)

        def _metrics(self, batch_: tuple[torch.Tensor, torch.Tensor], split: str) -> torch.Tensor:
            xb, yb = batch_
            logits = self.net(xb)
            loss = F.cross_entropy(logits, yb)
            on_step = split == "train"
            n = len(yb)
            self.log(f"{split}_loss", loss, on_step=on_step, on_epoch=True, batch_size=n)
            acc = (logits.argmax(1) == yb).float().mean()
            self.log(f"{split}_accuracy", acc, on_step=on_step, on_epoch=True, batch_size=n)
            return loss

        def training_step(self, batch_: tuple[torch.Tensor, torch.Tensor], idx: int) -> torch.Tensor:
            return self._metrics(batch_, "train")

        def validation_step(self, batch_: tuple[torch.Tensor, torch.Tensor], idx: int) -> None:
            self._metrics(batch_, "val")

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return torch.optim.SGD(self.parameters(), lr=LR, momentum=MOMENTUM, nesterov=True, fused=fused)

    def loader(ds: TensorDataset, sampler: torch.utils.data.Sampler, size: int) -> DataLoader:
        # batch_size=None: the dataset is indexed with a whole list of indices at once.
        return DataLoader(ds, batch_size=None, sampler=BatchSampler(sampler, size, drop_last=False))

    gen = torch.Generator().manual_seed(0)
    train_ds, dev_ds = TensorDataset(x, y), TensorDataset(xd, yd)
    train_dl = loader(train_ds, RandomSampler(train_ds, generator=gen), batch)
    dev_dl = loader(dev_ds, SequentialSampler(dev_ds), 4096)
    module, ckpt_dir = Module(), str(run_dir / "checkpoints")
    trainer = pl.Trainer(
        max_epochs=epochs,
        accelerator="gpu" if x.is_cuda else "cpu",
        devices=1,
        logger=TensorBoardLogger(str(run_dir), name="", version=""),
        callbacks=[  # last.ckpt every epoch (save_last would only copy saves of the monitored one), best.ckpt
            ModelCheckpoint(dirpath=ckpt_dir, filename="last", enable_version_counter=False),
            ModelCheckpoint(
                dirpath=ckpt_dir, filename="best", monitor="val_loss", mode="min", enable_version_counter=False
            ),
            EarlyStopping(monitor="val_loss", mode="min", patience=10),
        ],
        log_every_n_steps=25,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )

    def fit() -> None:
        with warnings.catch_warnings():  # "does not have many workers": the data is in memory
            warnings.simplefilter("ignore")
            trainer.fit(module, train_dl, dev_dl)

    return fit, lambda: None


def vs_lightning(
    data: tuple[torch.Tensor, ...], batch: int, epochs: int, repeats: int, tmp: Path, activation: str = "elu"
) -> tuple[list[float], list[float]]:
    """Samples/s of the Trainer (b) and of Lightning (L), alternating b L, L b, ... after one
    warm-up run each."""
    device, n = data[0].device, len(data[0]) * epochs
    out: dict[str, list[float]] = {"b": [], "L": []}

    def once(variant: str, sub: tuple[torch.Tensor, ...], record: bool, k: int) -> None:
        run_dir = tmp / f"{variant}{batch}_vs_{k}"
        if variant == "b":
            fn, close = torchprac_trainer(sub, batch, epochs, run_dir, [f"activation={activation}"])
        else:
            fn, close = lightning_trainer(sub, batch, epochs, run_dir, activation)
        dt = timed(fn, device)
        close()
        if record:
            out[variant].append(n / dt)

    m = 4 * max(batch, 1024) + len(data[0]) % batch
    warm = (data[0][:m], data[1][:m], data[2], data[3])
    once("b", warm, False, -1)
    once("L", warm, False, -1)
    for k in range(repeats):
        for v in ("b", "L") if k % 2 == 0 else ("L", "b"):
            once(v, data, True, k)
    return out["b"], out["L"]


# -- measurement ---------------------------------------------------------------------------------
def timed(fn: Callable[[], object], device: torch.device) -> float:
    _sync(device)
    t0 = clock()
    fn()
    _sync(device)
    return clock() - t0


# The Trainer variants beside (a) the hand loop: their config overrides.
VARIANTS = {
    "b": ("torchprac Trainer", []),
    "c": ("Trainer, compile", ["trainer.compile=true"]),
    "p": ("Trainer, bf16 autocast", ["trainer.precision=bf16-mixed"]),
    "v": ("Trainer, viz defaults", ["viz.enabled=true"]),
}


def measure(
    data: tuple[torch.Tensor, ...],
    batch: int,
    epochs: int,
    repeats: int,
    tmp: Path,
    activation: str = "elu",
    variants: str = "ab",
) -> dict[str, list[float]]:
    """Samples/s of (a) the hand loop and the Trainer variants (b, c, p: VARIANTS), in an order
    rotated every repeat (a b c, b c a, c a b, ...)."""
    device, n = data[0].device, len(data[0]) * epochs
    out: dict[str, list[float]] = {v: [] for v in variants}

    def once(variant: str, sub: tuple[torch.Tensor, ...], record: bool, k: int) -> None:
        if variant == "a":
            fn, close = hand_loop(sub, batch, epochs, activation), (lambda: None)
        else:
            ov = [f"activation={activation}", *VARIANTS[variant][1]]
            fn, close = torchprac_trainer(sub, batch, epochs, tmp / f"{variant}{batch}_{k}", ov)
        dt = timed(fn, device)
        close()
        if record:
            out[variant].append(n / dt)

    # Warm-up on a slice with the same last-batch and dev shapes: allocator, oneDNN primitives,
    # lazy imports and torch.compile's graphs are paid outside the timing.
    m = 4 * max(batch, 1024) + len(data[0]) % batch
    warm = (data[0][:m], data[1][:m], data[2], data[3])
    for v in variants:
        once(v, warm, False, -1)
    for k in range(repeats):
        for v in variants[k % len(variants) :] + variants[: k % len(variants)]:
            once(v, data, True, k)
    return out


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
        f"{args.epochs} epoch(s) per run, {args.repeats} runs per variant, alternating; "
        f"timing: {'CPU time of this process' if clock is time.process_time else 'wall time'}",
        flush=True,
    )
    peak = [matmul_gflops(device, [(2048, 2048, 2048)])]
    widths = [prod(INPUT_SHAPE), *HIDDEN, CLASSES]
    variants = args.variants or ("abcp" if dev_name == "cuda" else "abc")
    rows = []
    for b in args.batch_sizes:
        res = measure(data, b, args.epochs, args.repeats, tmp, args.activation, variants)
        shapes = mlp_matmul_shapes(b, widths)
        mm = matmul_gflops(device, shapes, seconds=0.3) * 1e9 * b / sum(2 * m * k * n for m, k, n in shapes)
        rows.append((b, res, mm))
        peak.append(matmul_gflops(device, [(2048, 2048, 2048)]))
        print(f"  batch {b} measured (load average {os.getloadavg()[0]:.2f})", file=sys.stderr, flush=True)
    bound = max(peak) * 1e9 / (3 * fwd)
    print(
        f"fp32 matmul peak {max(peak):,.1f} GFLOP/s (2048^3, best of {len(peak)} readings, lowest "
        f"{min(peak):,.1f}); {fwd / 1e6:.4f} MFLOP forward, {3 * fwd / 1e6:.4f} MFLOP training per "
        f"sample -> bound {bound:,.0f} samples/s"
    )
    print("samples/s: median [min, max]. x/a: median over repeats of the variant / the (a) run of the same repeat.")
    print("mm/bound: the step's own matmuls alone at this batch size, over the bound: a ceiling for any loop.")
    print(f"{'batch':>5} | {'variant':<26} | {'samples/s':>28} | {'x/a':>5} | {'x/bound':>7} | {'mm/bound':>8}")
    names = {"a": "hand loop", **{k: v[0] for k, v in VARIANTS.items()}}
    b_over_a = []
    for b, res, mm in rows:
        for v, xs in res.items():
            ratio = statistics.median(x / h for x, h in zip(xs, res["a"]))
            if v == "b":
                b_over_a.append(ratio)
            x_a = "" if v == "a" else f"{ratio:5.3f}"
            mm_col = f"{mm / bound:8.3f}" if v == "a" else ""
            x_bound = statistics.median(xs) / bound
            print(f"{b:>5} | ({v}) {names[v]:<22} | {fmt(xs)} | {x_a:>5} | {x_bound:7.3f} | {mm_col:>8}")
    print(f"load average after the table {os.getloadavg()[0]:.2f}")
    return b_over_a


def lightning_line(args: argparse.Namespace, dev_name: str, tmp: Path) -> float | None:
    """Prints `vs lightning X`: Trainer / Lightning samples/s at --lightning-batch, the median of
    the ratios of neighbouring runs; None when Lightning is not installed."""
    version = lightning_version()
    if version is None:
        print("vs lightning: skipped (pytorch-lightning not installed: pip install -c constraints.txt -e '.[bench]')")
        return None
    device = torch.device(dev_name)
    _, data = load_data(args.data_root, device)
    load0 = os.getloadavg()[0]
    ours, theirs = vs_lightning(data, args.lightning_batch, args.epochs, args.repeats, tmp, args.activation)
    ratio = statistics.median(o / t for o, t in zip(ours, theirs))
    print(
        f"Lightning {version} on {dev_name}, batch {args.lightning_batch}, {args.repeats} runs each alternating: "
        f"Trainer {fmt(ours)} samples/s, Lightning {fmt(theirs)}; load average {load0:.2f} -> {os.getloadavg()[0]:.2f}"
    )
    print(f"vs lightning {ratio:.2f}")
    return ratio


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
    p.add_argument(
        "--variants",
        default=None,
        help="which runs: a hand loop, b Trainer, c Trainer with trainer.compile=true, p Trainer with bf16 "
        "autocast, v Trainer with the viz defaults (default: abc on cpu, abcp on cuda; a and b always run)",
    )
    p.add_argument("--no-lightning", action="store_true", help="skip the Lightning comparison")
    p.add_argument(
        "--cpu-time",
        action="store_true",
        help="time with this process's CPU time instead of wall time (with --threads 1): steady on a busy machine",
    )
    p.add_argument("--lightning-batch", type=int, default=128, help="batch size of the `vs lightning` runs")
    args = p.parse_args(argv)
    if args.repeats < 3:
        p.error("--repeats must be at least 3 (the median of fewer is not worth printing)")
    if args.variants is not None:
        bad = set(args.variants) - set("abcpv")
        if bad:
            p.error(f"--variants: unknown {''.join(sorted(bad))} (letters of abcpv)")
        args.variants = "ab" + "".join(dict.fromkeys(v for v in args.variants if v in VARIANTS and v != "b"))
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.cpu_time:
        if torch.get_num_threads() != 1 or args.device == "cuda" or torch.cuda.is_available():
            p.error("--cpu-time needs --threads 1 and --device cpu")
        global clock
        clock = time.process_time
    devices = {"all": ["cpu"] + (["cuda"] if torch.cuda.is_available() else []), "cpu": ["cpu"], "cuda": ["cuda"]}
    with tempfile.TemporaryDirectory(prefix="torchprac-bench-") as td:
        tmp = Path(td)
        if args.profile:
            _, data = load_data(args.data_root, torch.device(devices[args.device][-1]))
            profile(data, args.batch_sizes[0], tmp)
            return 0.0
        ratios = [r for dev_name in devices[args.device] for r in bench_device(dev_name, args, tmp)]
        if not args.no_lightning:
            lightning_line(args, devices[args.device][0], tmp)
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
