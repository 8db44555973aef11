"""trainer.num_threads: torch's default thread count against `auto` (and one thread), on whole
runs as `python train.py` makes them, alone and next to a background CPU load.

Workloads: the default digits run (`python train.py`: MLP 64-128-64-10, 30 epochs, early
stopping), a 500-step circles run (50 epochs), and the bench MLP (784-300-100-10 ELU on
Fashion-MNIST, batch 128, 2 epochs, as in bench_trainer.py). Each runs in this process through torchprac.run with
trainer.num_threads = torch's default (one per core) / 1 / auto; the variants alternate
(rotated every repeat) and each cell is the median run time (metrics.json timing.total_s: data,
model, fit, final evaluation, figures; not the interpreter's start-up); `fit: def/auto` is the
default/auto ratio of the training alone (timing.fit_s). `loaded`: the bench starts a
process that keeps one core busy (numpy matmuls, one thread) and stops it afterwards.

    python bench/bench_threads.py                  # the table (bench/README.md)
    python bench/bench_threads.py --workloads digits circles --repeats 3
    python bench/bench_threads.py --calibrate      # the 1-vs-2-thread crossover behind `auto`

OMP_NUM_THREADS is removed from this process's environment before torch is imported: the
bench sets the thread count of every run itself.
"""

from __future__ import annotations

import os

OMP_ENV = os.environ.pop("OMP_NUM_THREADS", None)  # before torch: see the docstring

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DATA_ROOT = ROOT.parent / "shared" / "data"
QUIET = ["trainer.progress=false"]
WORKLOADS = {
    "digits": ("digits (the default run)", []),
    "circles": ("circles (500 steps)", ["data=circles", "trainer.epochs=50", "trainer.early_stopping=false"]),
    "mlp": (
        "bench MLP (F-MNIST, b128, 2 ep)",
        [
            "data=fashion_mnist",
            f"data.root={DATA_ROOT}",
            "model.hidden=[300,100]",
            "activation=elu",
            "trainer.batch_size=128",
            "trainer.epochs=2",
        ],
    ),
}
SMALL = ("digits", "circles")  # the models the >= 3x goal is about
SPIN = "import numpy as np\na = np.random.rand(256, 256)\nwhile True:\n    a @ a\n"


class BackgroundLoad:
    """A process that keeps one core busy until stopped (single-threaded numpy matmuls)."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> BackgroundLoad:
        env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        self.proc = subprocess.Popen([sys.executable, "-c", SPIN], env=env)
        time.sleep(1.0)  # past numpy's import: spinning
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=30)


def compose(overrides: list[str]):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return hydra_compose(config_name="config", overrides=[*QUIET, *overrides])


def one_run(overrides: list[str], threads: int | str, run_dir: Path) -> tuple[float, float, int]:
    """(run seconds, fit seconds, threads used) of one in-process run."""
    from torchprac.run import run

    run(compose([*overrides, f"trainer.num_threads={threads}", f"paths.run_dir={run_dir}"]))
    m = json.loads((run_dir / "metrics.json").read_text())
    return m["timing"]["total_s"], m["timing"]["fit_s"], m["threads"]["num_threads"]


def measure(name: str, loaded: bool, variants: dict[str, int | str], repeats: int, tmp: Path) -> dict:
    """Run and fit seconds per variant (lists), the auto thread counts, and the load average around it."""
    overrides = WORKLOADS[name][1]
    times: dict[str, list[float]] = {v: [] for v in variants}
    fits: dict[str, list[float]] = {v: [] for v in variants}
    chosen: list[int] = []
    keys = list(variants)
    with BackgroundLoad() if loaded else _nothing():
        load0 = os.getloadavg()[0]
        for k in range(repeats):
            for v in keys[k % len(keys) :] + keys[: k % len(keys)]:  # rotate the order each repeat
                total, fit, used = one_run(overrides, variants[v], tmp / f"{name}-{int(loaded)}-{v}-{k}")
                times[v].append(total)
                fits[v].append(fit)
                if v == "auto":
                    chosen.append(used)
        load1 = os.getloadavg()[0]
    return {"times": times, "fits": fits, "chosen": chosen, "load": (load0, load1)}


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def per_repeat(times: dict[str, list[float]], f) -> float:
    """Median over repeats of f(times of one repeat): ratios of runs made next to each other."""
    n = len(next(iter(times.values())))
    return statistics.median(f({v: ts[i] for v, ts in times.items()}) for i in range(n))


def table(args: argparse.Namespace, tmp: Path) -> bool:
    default = torch.get_num_threads()
    variants: dict[str, int | str] = {"default": default, "one": 1, "auto": "auto"}
    print(
        f"torch default {default} threads on {os.cpu_count()} CPUs; OMP_NUM_THREADS was "
        f"{OMP_ENV!r} (removed); {args.repeats} runs per cell, variants alternating; cells: median run s"
        + (f"; overrides {' '.join(args.overrides)}" if args.overrides else "")
    )
    names = [n for n in args.workloads if n != "mlp" or (DATA_ROOT / "FashionMNIST" / "raw").is_dir()]
    if "mlp" in args.workloads and "mlp" not in names:
        print(f"bench MLP skipped: Fashion-MNIST not found under {DATA_ROOT}")
    for n in names:  # warm-up: imports, dataset caches, oneDNN primitives
        one_run(WORKLOADS[n][1] + ["trainer.epochs=1"], 1, tmp / f"warm-{n}")
    rows = []
    for n in names:
        for loaded in (False, True):
            r = measure(n, loaded, variants, args.repeats, tmp)
            rows.append((n, loaded, r))
            print(f"  {n} {'loaded' if loaded else 'alone'} measured", file=sys.stderr, flush=True)
    head = (
        f"{'workload':<32} | {'load':<6} | {'default (' + str(default) + ')':>11} | {'1 thread':>8} | "
        f"{'auto':>12} | {'auto/best':>9} | {'default/auto':>12} | {'fit: def/auto':>13} | loadavg"
    )
    print(head)
    ok_best, ok_load = True, True
    for n, loaded, r in rows:
        t = r["times"]
        med = {v: statistics.median(ts) for v, ts in t.items()}
        # The better fixed choice by median; then auto over it within each repeat (a per-repeat
        # min of two noisy times would be biased low).
        best = min(("default", "one"), key=lambda v: med[v])
        vs_best = per_repeat(t, lambda x, best=best: x["auto"] / x[best])
        speedup = per_repeat(t, lambda x: x["default"] / x["auto"])
        fit_speedup = per_repeat(r["fits"], lambda x: x["default"] / x["auto"])  # training alone
        ok_best &= vs_best <= 1.05
        if loaded and n in SMALL:
            ok_load &= speedup >= 3.0
        chose = "/".join(str(c) for c in sorted(set(r["chosen"])))
        print(
            f"{WORKLOADS[n][0]:<32} | {'loaded' if loaded else 'alone':<6} | {med['default']:>9.2f} s | "
            f"{med['one']:>6.2f} s | {med['auto']:>6.2f} s ({chose}) | {vs_best:>9.3f} | {speedup:>12.2f} | "
            f"{fit_speedup:>13.2f} | {r['load'][0]:.2f} -> {r['load'][1]:.2f}"
        )
    print("runs (s, in order of repeat):")
    for n, loaded, r in rows:
        runs = "; ".join(f"{v} " + " ".join(f"{x:.1f}" for x in ts) for v, ts in r["times"].items())
        print(f"  {n} {'loaded' if loaded else 'alone'}: {runs}")
    print(f"goal auto <= 1.05 x the better fixed choice: {'met' if ok_best else 'NOT met'}")
    print(f"goal small models loaded, default/auto >= 3 (whole runs): {'met' if ok_load else 'NOT met'}")
    print("fit: def/auto is the same ratio for the training alone (timing.fit_s), the part threads decide")
    return ok_best and ok_load


# -- calibration -----------------------------------------------------------------------------
def wait_quiet(max_wait: float) -> bool:
    """Wait until other processes use less than a quarter of a core (sampled over 0.2 s), so
    the 1-vs-2-thread pair that follows measures the machine, not its neighbours."""
    from torchprac.threads import busy_cores

    deadline = time.perf_counter() + max_wait
    while time.perf_counter() < deadline:
        if busy_cores(0.2) < 0.25:
            return True
    return False


def _train_step(model: torch.nn.Module, d: int, k: int, b: int):
    """One training step of `model` on a fixed random batch (forward, backward, SGD step)."""
    import torch.nn.functional as F

    torch.manual_seed(0)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True)
    x, y = torch.randn(b, d), torch.randint(0, k, (b,))

    def step() -> None:
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def calibrate(args: argparse.Namespace) -> None:
    """Median step time of MLP training steps (forward, backward, SGD step) at 1 and 2 threads,
    alternating, across FLOPs per step; the crossover is where 2 threads start to win."""
    from torch import nn

    from torchprac.threads import MIN_FLOPS_PER_THREAD, busy_cores

    shapes = [  # (input, hidden, classes, batch)
        (64, [128, 64], 10, 64),
        (64, [128, 64], 10, 128),
        (64, [256, 256], 10, 64),
        (64, [128, 64], 10, 256),
        (784, [300, 100], 10, 32),
        (64, [512, 512], 10, 64),
        (784, [300, 100], 10, 64),
        (784, [300, 100], 10, 128),
        (784, [300, 100], 10, 256),
        (784, [300, 100], 10, 1024),
    ]
    print(
        f"load average {os.getloadavg()[0]:.2f}; step time median of {args.repeats} x 0.1 s, alternating 1/2 "
        f"threads; each pair waits up to {args.quiet_wait:g} s for a quiet moment (others using < 0.25 core); "
        "quiet: pairs quiet before and after, the only ones used when there are any; t1/t2: median pair ratio"
    )
    print(f"{'model':<22} {'batch':>5} {'MFLOP/step':>10} {'1 thread':>10} {'2 threads':>10} {'t1/t2':>6} quiet")
    for d, hidden, k, b in shapes:
        widths = [d, *hidden, k]
        layers: list[nn.Module] = []
        for a, c in zip(widths[:-1], widths[1:]):
            layers += [nn.Linear(a, c), nn.ReLU()]
        step = _train_step(nn.Sequential(*layers[:-1]), d, k, b)
        pairs = []  # (1-thread step s, 2-thread step s, quiet before and after)
        for r in range(args.repeats):
            quiet = wait_quiet(args.quiet_wait)
            t: dict[int, float] = {}
            for n in (1, 2) if r % 2 == 0 else (2, 1):
                torch.set_num_threads(n)
                for _ in range(3):
                    step()
                steps, t0 = 0, time.perf_counter()
                while time.perf_counter() - t0 < 0.1:
                    step()
                    steps += 1
                t[n] = (time.perf_counter() - t0) / steps
            pairs.append((t[1], t[2], quiet and busy_cores(0.1) < 0.25))
        use = [p for p in pairs if p[2]] or pairs  # the quiet pairs when there are any
        flops = 3 * 2 * b * sum(a * c for a, c in zip(widths[:-1], widths[1:]))
        t1, t2 = statistics.median(p[0] for p in use), statistics.median(p[1] for p in use)
        ratio = statistics.median(p[0] / p[1] for p in use)
        n_quiet = sum(p[2] for p in pairs)
        print(
            f"{'-'.join(map(str, widths)):<22} {b:>5} {flops / 1e6:>10.1f} {t1 * 1e3:>8.3f}ms {t2 * 1e3:>8.3f}ms "
            f"{ratio:>6.2f} {n_quiet:>3}/{args.repeats}",
            flush=True,
        )
    print(
        f"load average {os.getloadavg()[0]:.2f}; torchprac.threads uses 2 threads from "
        f"{2 * MIN_FLOPS_PER_THREAD / 1e6:.0f} MFLOP per step"
    )


def main(argv: list[str] | None = None) -> bool:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workloads", nargs="+", default=list(WORKLOADS), choices=list(WORKLOADS))
    p.add_argument("--repeats", type=int, default=3, help="runs per variant and condition (median reported)")
    p.add_argument("--calibrate", action="store_true", help="measure the 1-vs-2-thread crossover and exit")
    p.add_argument("--overrides", nargs="*", default=[], help="more config overrides for every run")
    p.add_argument("--quiet-wait", type=float, default=30.0, help="--calibrate: max s to wait for a quiet moment")
    args = p.parse_args(argv)
    if args.calibrate:
        calibrate(args)
        return True
    for name, (what, ov) in WORKLOADS.items():
        WORKLOADS[name] = (what, [*ov, *args.overrides])
    with tempfile.TemporaryDirectory(prefix="torchprac-threads-") as td:
        return table(args, Path(td))


if __name__ == "__main__":
    main()
