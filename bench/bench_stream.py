"""Streaming (data.in_memory=false) against a plain hand-written DataLoader loop on the SAME
image folder, in ONE process; and the in-memory path on the same data for reference.

Both streaming variants decode the PNGs in DataLoader workers (same count, pinned memory on
CUDA, persistent workers, prefetch 4) to uint8, move the batch, then scale, normalise (training
statistics) and train the same CNN (conv 16-32, fc 64, from the config tree, seed 0) with SGD
Nesterov at lr 0.05 on the device. Variants, alternated every repeat so machine load hits all
alike:

  (a) hand loop: Dataset + DataLoader(RandomSampler), per-epoch dev evaluation, one host sync
      per epoch;
  (s) torchprac Trainer, data.in_memory=false: built as torchprac/run.py builds it (TensorBoard,
      checkpoints, early stopping, health monitor);
  (m) torchprac Trainer, data.in_memory=true: the images decoded once, batches are index slices.

    python bench/bench_stream.py                         # 3000 32x32 RGB images, 10 classes
    python bench/bench_stream.py --images 6000 --workers 3 --epochs 2 --repeats 3
    python bench/bench_stream.py --root path/to/image_folder   # your own (root/train/<class>/...)

Prints samples/s (median, min, max) per variant and the ratio s/a (goal >= 0.9)."""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, RandomSampler

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OVERRIDES = [
    "data=image_folder",
    "model=cnn",
    "model.channels=[16,32]",
    "model.hidden=[64]",
    "optimizer=nesterov",
    "optimizer.lr=0.05",
    "trainer.progress=false",
    "viz.enabled=false",
]


def make_folder(root: Path, n: int, size: int = 32, classes: int = 10, seed: int = 0) -> Path:
    """n PNGs (RGB, size x size) in root/train/<class>/: noisy class-coloured blobs."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    colours = rng.integers(0, 256, (classes, 3))
    for i in range(n):
        c = i % classes
        d = root / "train" / f"class{c:02d}"
        d.mkdir(parents=True, exist_ok=True)
        img = np.clip(rng.normal(colours[c], 60, (size, size, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(img).save(d / f"{i:06d}.png")
    return root


def _rc(root: Path, workers: int, batch: int, epochs: int, in_memory: bool, run_dir: Path):
    from hydra import compose, initialize_config_dir

    from torchprac.config import RunConfig

    ov = [
        *OVERRIDES,
        f"data.root={root}",
        f"data.workers={workers}",
        f"data.in_memory={str(in_memory).lower()}",
        f"trainer.batch_size={batch}",
        f"trainer.epochs={epochs}",
        f"paths.run_dir={run_dir}",
    ]
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return RunConfig.from_cfg(compose(config_name="config", overrides=ov))


def _model(rc, splits, device):
    from torchprac.run import build_model

    torch.manual_seed(0)
    return build_model(rc, splits.input_shape, splits.num_classes, device)


# -- (a) the hand-written loop ---------------------------------------------------------------------
class Files(Dataset):
    """The same decode as torchprac's ImageFiles: PIL -> RGB -> uint8 (C, H, W)."""

    def __init__(self, files: list[Path], labels: np.ndarray) -> None:
        self.files, self.labels = files, labels

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int):
        from PIL import Image

        with Image.open(self.files[i]) as im:
            a = np.asarray(im.convert("RGB"), dtype=np.uint8)
        return torch.from_numpy(a.copy()).permute(2, 0, 1).contiguous(), int(self.labels[i])


def hand_loop(rc, splits, workers: int, batch: int, epochs: int, device) -> Callable[[], list[float]]:
    tr, dv = splits.train.examples, splits.dev.examples  # the same files and split as torchprac's
    files = tr.base.files
    labels = np.empty(len(files), np.int64)
    labels[tr.indices] = splits.train.y.cpu().numpy()
    labels[dv.indices] = splits.dev.y.cpu().numpy()
    model = _model(rc, splits, device)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True)
    mean, std = splits.mean.to(device), splits.std.to(device)
    pin = device.type == "cuda"
    kw = dict(num_workers=workers, pin_memory=pin, persistent_workers=workers > 0)
    if workers:
        kw["prefetch_factor"] = 4
    train_ds = Files([files[i] for i in tr.indices], labels[tr.indices])
    dev_ds = Files([files[i] for i in dv.indices], labels[dv.indices])
    train = DataLoader(train_ds, batch_size=batch, sampler=RandomSampler(train_ds), **kw)
    dev = DataLoader(dev_ds, batch_size=4096, **kw)

    def inputs(xb: torch.Tensor) -> torch.Tensor:
        return (xb.to(device, non_blocking=True).float().div_(255.0) - mean) / std

    def run() -> list[float]:
        stats: list[float] = []
        for _ in range(epochs):
            model.train()
            loss_sum = torch.zeros((), device=device)
            for xb, yb in train:
                yb = yb.to(device, non_blocking=True)
                loss = F.cross_entropy(model(inputs(xb)), yb)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                loss_sum += loss.detach() * len(yb)
            model.eval()
            with torch.no_grad():
                dev_loss = torch.zeros((), device=device)
                for xb, yb in dev:
                    dev_loss += F.cross_entropy(model(inputs(xb)), yb.to(device), reduction="sum")
            stats = torch.stack([loss_sum / len(train_ds), dev_loss / len(dev_ds)]).tolist()  # one sync
        return stats

    return run


# -- (s), (m) torchprac's Trainer ------------------------------------------------------------------
def trainer(rc, splits, device, run_dir: Path) -> tuple[Callable[[], object], Callable[[], None]]:
    from torchprac import distributed
    from torchprac.run import build_trainer
    from torchprac.train import Precision, TBLogger

    model = _model(rc, splits, device)
    logger = TBLogger(run_dir)
    logger.text("config", "```yaml\n" + rc.yaml + "\n```")
    t, _ = build_trainer(
        rc, model, splits, Precision.of("32", device), logger, distributed.setup(device), None, run_dir
    )
    return t.fit, logger.close


def timed(fn: Callable[[], object], device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> float:
    from torchprac.data import build_data
    from torchprac.data.stream import default_workers

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--root", type=Path, default=None, help="an image folder (default: a generated one)")
    p.add_argument("--images", type=int, default=3000)
    p.add_argument("--workers", type=int, default=default_workers())
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    tmp = Path(tempfile.mkdtemp(prefix="bench_stream_"))
    root = args.root or make_folder(tmp / "images", args.images)
    w, b, e = args.workers, args.batch_size, args.epochs

    rc_s = _rc(root, w, b, e, False, tmp / "cfg")
    rc_m = _rc(root, w, b, e, True, tmp / "cfg")
    t0 = time.perf_counter()
    stream = build_data(rc_s.data, rc_s.trainer.seed, device)
    t_stream_setup = time.perf_counter() - t0
    t0 = time.perf_counter()
    memory = build_data(rc_m.data, rc_m.trainer.seed, device)
    t_mem_setup = time.perf_counter() - t0
    n = len(stream.train) * e
    print(
        f"{len(stream.train)} training images {stream.input_shape}, dev {len(stream.dev)}, batch {b}, {w} worker(s), "
        f"{e} epoch(s) per run, device {device}, torch {torch.__version__}, {torch.get_num_threads()} thread(s)"
    )
    print(f"setup: streaming {t_stream_setup:.2f} s (statistics pass), in memory {t_mem_setup:.2f} s (decode all)")

    out: dict[str, list[float]] = {"a": [], "s": [], "m": []}

    def once(v: str, k: int, record: bool) -> None:
        if v == "a":
            fn, close = hand_loop(rc_s, stream, w, b, e, device), (lambda: None)
        else:
            rc, splits = (rc_s, stream) if v == "s" else (rc_m, memory)
            # a fresh split object per run: its loader (and worker processes) start with the run
            splits = build_data(rc.data, rc.trainer.seed, device) if v == "s" else splits
            fn, close = trainer(rc, splits, device, tmp / f"{v}{k}")
        dt = timed(fn, device)
        close()
        if record:
            out[v].append(n / dt)

    for v in "asm":
        once(v, -1, False)  # warm-up: allocator, oneDNN primitives, lazy imports
    for k in range(args.repeats):
        for v in "asm"[k % 3 :] + "asm"[: k % 3]:
            once(v, k, True)
    names = {
        "a": "(a) hand DataLoader loop",
        "s": "(s) torchprac, data.in_memory=false",
        "m": "(m) torchprac, data.in_memory=true",
    }
    print("\n| variant | samples/s median | min | max | vs (a) |\n|---|---|---|---|---|")
    base = statistics.median(out["a"])
    for v in "asm":
        xs = out[v]
        med = statistics.median(xs)
        print(f"| {names[v]} | {med:,.0f} | {min(xs):,.0f} | {max(xs):,.0f} | {med / base:.2f} |")
    ratio = statistics.median(out["s"]) / base
    print(f"\nstreaming ratio s/a {ratio:.2f} (goal >= 0.9)")
    return ratio


if __name__ == "__main__":
    main()
