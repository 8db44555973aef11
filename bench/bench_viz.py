"""What the pictures cost: one Trainer epoch of the bench model with and without the VizCallback,
in ONE process, alternating (off on, on off, ...) so that drift in machine load hits both alike.

The bench model and data are bench_trainer.py's (MLP 784-300-100-10, ELU, he_normal, SGD Nesterov
0.9; Fashion-MNIST's 60 000 training images from --data-root, random data of that shape
otherwise), built through the real config tree and torchprac.run's own build_trainer, as
`python train.py` builds it (TensorBoard, checkpoints, early stopping, health monitor on both
sides). Only `viz.enabled` differs. The 784-feature data has no decision boundary, so "on" is the
activation histograms (forward hooks on sampled steps, device binning, one host read and one
TensorBoard histogram per layer per sample), the epoch scalar and log line, the layout.

Two cadences are timed:
  run-of-1-epoch  the default cadence for a run of ONE epoch, the worst case per epoch: the run's
                  viz.activations.samples (100) would all fall in it, the floor of one sampled
                  step in 16 (viz/settings.py AUTO_MIN_EVERY) leaves 59
  30-epoch-run    the default cadence of a default-length run (trainer.epochs=30): 100 samples over
                  30 epochs, i.e. every ceil(30 * steps/epoch / 100) steps, timed over one epoch
The end-of-fit activation figure (drawn once per run) is timed apart and not in the ratio.

    python bench/bench_viz.py                  # batch 64 (the trainer default), 5 repeats
    python bench/bench_viz.py --batch-size 1024 --repeats 3 --threads 1
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_trainer import DEFAULT_ROOT, HIDDEN, INPUT_SHAPE, LR, MOMENTUM, N_DEV, N_TRAIN, ROOT  # noqa: E402

from torchprac.viz.settings import AUTO_MIN_EVERY  # noqa: E402

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
    "trainer.progress=false",
    "viz.epoch_log=false",  # the same on both sides: no log line to a console
]


def load_data(root: Path, device: torch.device) -> tuple[str, tuple[torch.Tensor, ...]]:
    """bench_trainer's data: Fashion-MNIST (train, and its test set as dev) normalised with the
    training mean/std, or random data of that shape when it is not under `root`."""
    try:
        from torchvision.datasets import FashionMNIST

        tr, te = FashionMNIST(str(root), train=True), FashionMNIST(str(root), train=False)
        x, y = tr.data[:N_TRAIN].float().div(255).unsqueeze(1), tr.targets[:N_TRAIN]
        xd, yd = te.data[:N_DEV].float().div(255).unsqueeze(1), te.targets[:N_DEV]
        what = f"Fashion-MNIST from {root}"
    except (RuntimeError, OSError):
        g = torch.Generator().manual_seed(0)
        x, xd = torch.rand(N_TRAIN, *INPUT_SHAPE, generator=g), torch.rand(N_DEV, *INPUT_SHAPE, generator=g)
        y, yd = torch.randint(0, 10, (N_TRAIN,), generator=g), torch.randint(0, 10, (N_DEV,), generator=g)
        what = "random data (Fashion-MNIST not found)"
    mu, sd = x.mean(), x.std()
    data = tuple(t.to(device).contiguous() for t in ((x - mu) / sd, y, (xd - mu) / sd, yd))
    return f"{what}: {len(data[0])} train / {len(data[2])} dev", data


def build(data, batch: int, run_dir: Path, viz: bool, every: int | None):
    """(trainer, VizCallback or None) as torchprac.run builds them for this config."""
    from hydra import compose, initialize_config_dir

    from torchprac import distributed
    from torchprac.config import RunConfig
    from torchprac.data.splits import Split, Splits
    from torchprac.run import build_model, build_trainer
    from torchprac.train import Precision, TBLogger
    from torchprac.viz.callback import VizCallback

    x, y, xd, yd = data
    ov = [*OVERRIDES, f"trainer.batch_size={batch}", "trainer.epochs=1", f"paths.run_dir={run_dir}"]
    ov.append(f"viz.enabled={str(viz).lower()}")
    if every is not None:
        ov.append(f"viz.activations.every_n_steps={every}")
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        rc = RunConfig.from_cfg(compose(config_name="config", overrides=ov), user_keys=set())
    torch.manual_seed(0)
    splits = Splits(Split(x, y), Split(xd, yd), None, INPUT_SHAPE, 10)
    model = build_model(rc, splits.input_shape, splits.num_classes, x.device)
    logger = TBLogger(run_dir)
    ddp = distributed.setup(x.device)
    trainer, _ = build_trainer(rc, model, splits, Precision.of("32", x.device), logger, ddp, None, run_dir)
    cb = next((c for c in trainer.callbacks if isinstance(c, VizCallback)), None)
    return trainer, cb, logger


def timed_fit(data, batch: int, run_dir: Path, viz: bool, every: int | None) -> tuple[float, float, int]:
    """(seconds of the epoch without the end-of-fit figure, seconds of that figure, samples)."""
    trainer, cb, logger = build(data, batch, run_dir, viz, every)
    figure_s = 0.0
    if cb is not None:
        end = cb.on_fit_end

        def timed_end(tr, result) -> None:
            nonlocal figure_s
            t = time.perf_counter()
            end(tr, result)
            figure_s = time.perf_counter() - t

        cb.on_fit_end = timed_end
        trainer.hooks["on_fit_end"] = [h if h != end else timed_end for h in trainer.hooks["on_fit_end"]]
    t0 = time.perf_counter()
    trainer.fit()
    if data[0].is_cuda:
        torch.cuda.synchronize()
    total = time.perf_counter() - t0
    logger.close()
    samples = len(cb.recorder.history[0].steps) if cb is not None and cb.recorder is not None else 0
    return total - figure_s, figure_s, samples


def sample_cost(data, batch: int, run_dir: Path, pairs: int = 200) -> tuple[float, float]:
    """(ms of a plain training step, extra ms of a sampled one): steps alternate plain / sampled
    (hooks armed, statistics binned, the one host read, the TensorBoard histograms written), so
    load drifting on a shared machine hits both; medians over `pairs` pairs."""
    import torch.nn.functional as F

    trainer, cb, logger = build(data, batch, run_dir, True, None)
    rec, model, opt = cb.recorder, trainer.model, trainer.optim.optimizer
    rec.logger = logger
    x, y = data[0], data[1]
    g = torch.Generator(device=x.device).manual_seed(0)

    def step(sampled: bool, k: int) -> float:
        idx = torch.randint(0, len(x), (batch,), generator=g, device=x.device)
        t = time.perf_counter()
        if sampled:
            rec.arm()
        loss = F.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if sampled:
            rec.collect(k)
            rec.disarm()
        if x.is_cuda:
            torch.cuda.synchronize()
        return time.perf_counter() - t

    for k in range(20):  # warm-up
        step(k % 2 == 0, k)
    plain, extra = [], []
    for k in range(pairs):
        a = step(False, k)
        b = step(True, k)
        plain.append(a)
        extra.append(b - a)
    logger.close()
    return 1e3 * statistics.median(plain), 1e3 * statistics.median(extra)


def main(argv: list[str] | None = None) -> dict[str, float]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--data-root", type=Path, default=DEFAULT_ROOT)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--device", default="cpu")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    what, data = load_data(args.data_root, device)
    steps = math.ceil(len(data[0]) / args.batch_size)
    cadences = {"run-of-1-epoch": None, "30-epoch-run": math.ceil(30 * steps / 100)}
    print(f"device {device}, {torch.get_num_threads()} threads; {what}; batch {args.batch_size} ({steps} steps/epoch)")
    print(f"load average {os.getloadavg()[0]:.2f}; {args.repeats} repeats per variant, alternating off/on")
    ratios = {}
    with tempfile.TemporaryDirectory(prefix="torchprac-bench-viz-") as td:
        tmp = Path(td)
        warm = tuple(t[:4096] for t in data)
        timed_fit(warm, args.batch_size, tmp / "warm_off", False, None)
        timed_fit(warm, args.batch_size, tmp / "warm_on", True, None)
        print(f"{'cadence':>15} | {'every':>5} | {'samples':>7} | {'off s/epoch':>12} | {'on s/epoch':>12} | "
              f"{'on/off':>6} | {'end figure s':>12}")  # fmt: skip
        for name, every in cadences.items():
            off, on, fig, n = [], [], [], 0
            for k in range(args.repeats):
                for variant in ("off", "on") if k % 2 == 0 else ("on", "off"):
                    s, f, samples = timed_fit(
                        data, args.batch_size, tmp / f"{name}_{variant}_{k}", variant == "on", every
                    )
                    (on if variant == "on" else off).append(s)
                    if variant == "on":
                        fig.append(f)
                        n = samples
            ratio = statistics.median(b / a for a, b in zip(off, on))
            ratios[name] = ratio
            shown = every if every is not None else max(AUTO_MIN_EVERY, math.ceil(steps / 100))
            off_s, on_s = statistics.median(off), statistics.median(on)
            print(
                f"{name:>15} | {shown:>5} | {n:>7} | {off_s:>12.3f} | {on_s:>12.3f} | "
                f"{ratio:>6.3f} | {statistics.median(fig):>12.2f}"
            )
        step_ms, extra_ms = sample_cost(data, args.batch_size, tmp / "sample_cost")
    floor = extra_ms / AUTO_MIN_EVERY / step_ms  # one sample every AUTO_MIN_EVERY steps
    per_epoch = math.ceil(steps / cadences["30-epoch-run"])
    print(
        f"per sampled step: +{extra_ms:.2f} ms over a {step_ms:.2f} ms training step (medians of 200 "
        f"alternating pairs): at most 1 step in {AUTO_MIN_EVERY} sampled costs <= {floor:.2%} of an epoch; "
        f"the default cadence of a 30-epoch run ({per_epoch} samples per epoch) "
        f"{per_epoch * extra_ms / (step_ms * steps):.2%}"
    )
    print(f"load average at end {os.getloadavg()[0]:.2f}")
    print("on/off: median over repeats of (on) / its neighbouring (off) run; 1.05 = 5% of an epoch")
    return ratios


if __name__ == "__main__":
    main()
