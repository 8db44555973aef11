"""Sweep overhead: a 16-job digits multirun (`python train.py -m`, 20-epoch jobs), timed as a
user runs it, against the sum of the jobs' own fit times (metrics.json timing.fit_s).

    overhead = 1 - sum(fit_s) / (parallel jobs x wall time)

i.e. the share of the machine's job slots spent on anything but training: interpreter and
import start-up, Hydra composing and launching each job, data, model, writers, the final
evaluation and metrics.json, the sweep summary. `in-run` splits it: the part inside the jobs'
run (timing.total_s - fit_s) and the rest (start-up, Hydra, launcher). The start-up of
`python train.py --help` and of `import torchprac.run` (with `-X importtime`'s largest
imports) is printed first.

`floor s` is the same sweep of bench/sweep_floor.py: Hydra on the same config tree and launcher,
`import torch`, torch.optim's first step (which imports torch._dynamo), scikit-learn's digits and
split, once per process, and no training. No implementation of these jobs takes less wall time
than the floor plus the fit times, so `overhead >=` is the least overhead any could reach here.

    python bench/bench_sweep.py                        # basic launcher and joblib (2 jobs)
    python bench/bench_sweep.py --launchers basic --jobs 4 --epochs 5

OMP_NUM_THREADS is removed from the jobs' environment: they choose their threads as a user's
would (trainer.num_threads=auto by default).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAUNCHERS = {  # name -> (extra overrides, jobs running at once)
    "basic": ([], 1),
    # torchprac's watched worker pool (conf/hydra/launcher/joblib.yaml; also hydra/launcher=process_pool)
    "joblib": (["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"], 2),
    # Hydra's own joblib launcher (loky workers; a killed worker ends the sweep), for comparison
    "hydra_joblib": (
        [
            "hydra/launcher=joblib",
            "hydra.launcher._target_=hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher",
            "hydra.launcher.n_jobs=2",
        ],
        2,
    ),
}


def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    env["HYDRA_FULL_ERROR"] = "1"
    return env


def startup(repeats: int) -> list[str]:
    """Lines: median wall of `python train.py --help` and of `import torchprac.run`, and the
    largest cumulative imports of a 1-epoch run (python -X importtime)."""
    env, py = clean_env(), sys.executable
    walls, imps = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run([py, "train.py", "--help"], cwd=ROOT, env=env, capture_output=True, check=True)
        walls.append(time.perf_counter() - t0)
        code = "import time; t = time.perf_counter(); import torchprac.run; print(time.perf_counter() - t)"
        out = subprocess.run([py, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
        imps.append(float(out.stdout.strip()))
    with tempfile.TemporaryDirectory(prefix="torchprac-imp-") as td:
        r = subprocess.run(
            [py, "-X", "importtime", "train.py", "trainer.epochs=1", f"hydra.run.dir={td}/run"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
        )
    top: dict[str, float] = {}
    for line in r.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            _, cum, name = (p.strip() for p in line[len("import time:") :].split("|"))
            if cum.isdigit() and "." not in name.strip():  # top-level packages only
                top[name.strip()] = max(top.get(name.strip(), 0.0), int(cum) / 1e6)
    biggest = ", ".join(f"{k} {v:.2f}" for k, v in sorted(top.items(), key=lambda kv: -kv[1])[:6])
    return [
        f"start-up: python train.py --help {statistics.median(walls):.2f} s; "
        f"import torchprac.run {statistics.median(imps):.2f} s (medians of {repeats})",
        f"largest top-level imports of a run (s, cumulative, -X importtime): {biggest}",
    ]


def floor(name: str, jobs: int, tmp: Path) -> float:
    """Wall time of the sweep of bench/sweep_floor.py (no training, no sweep summary)."""
    extra, _ = LAUNCHERS[name]
    cmd = [
        sys.executable,
        "bench/sweep_floor.py",
        "-m",
        f"trainer.seed={','.join(str(s) for s in range(jobs))}",
        f"hydra.sweep.dir={tmp / (name + '-floor')}",
        "~hydra.callbacks.sweep_summary",
        *extra,
    ]
    t0 = time.perf_counter()
    r = subprocess.run(cmd, cwd=ROOT, env=clean_env(), capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"{name} floor sweep failed (exit {r.returncode}):\n{r.stderr[-3000:]}")
    return time.perf_counter() - t0


def sweep(name: str, jobs: int, epochs: int, tmp: Path, overrides: list[str]) -> dict:
    extra, parallel = LAUNCHERS[name]
    sweep_dir = tmp / name
    cmd = [
        sys.executable,
        "train.py",
        "-m",
        f"trainer.epochs={epochs}",
        f"trainer.seed={','.join(str(s) for s in range(jobs))}",
        "trainer.progress=false",
        f"hydra.sweep.dir={sweep_dir}",
        *extra,
        *overrides,
    ]
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    r = subprocess.run(cmd, cwd=ROOT, env=clean_env(), capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit(f"{name} sweep failed (exit {r.returncode}):\n{r.stderr[-3000:]}")
    metrics = [json.loads(p.read_text()) for p in sorted(sweep_dir.glob("*/metrics.json"))]
    if len(metrics) != jobs or any("timing" not in m for m in metrics):
        raise SystemExit(f"{name} sweep: {len(metrics)} of {jobs} jobs wrote metrics.json with timing")
    fit = sum(m["timing"]["fit_s"] for m in metrics)
    total = sum(m["timing"]["total_s"] for m in metrics)
    threads = sorted({m.get("threads", {}).get("num_threads") for m in metrics})
    return {
        "name": name,
        "parallel": parallel,
        "wall": wall,
        "fit": fit,
        "total": total,
        "threads": threads,
        "load": (load0, os.getloadavg()[0]),
    }


def main(argv: list[str] | None = None) -> bool:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--launchers", nargs="+", default=["basic", "joblib"], choices=list(LAUNCHERS))
    p.add_argument("--jobs", type=int, default=16)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--startup-repeats", type=int, default=3)
    p.add_argument("--goal", type=float, default=0.20, help="overhead goal (share of the wall time)")
    p.add_argument("--overrides", nargs="*", default=[], help="more config overrides for every job")
    p.add_argument("--no-startup", action="store_true", help="skip the start-up measurement")
    p.add_argument("--no-floor", action="store_true", help="skip the floor sweep (bench/sweep_floor.py)")
    args = p.parse_args(argv)
    if not args.no_startup:
        for line in startup(args.startup_repeats):
            print(line, flush=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="torchprac-sweep-") as td:
        for name in args.launchers:
            rows.append(sweep(name, args.jobs, args.epochs, Path(td), args.overrides))
            rows[-1]["floor"] = None if args.no_floor else floor(name, args.jobs, Path(td))
            print(f"  {name} sweep done", file=sys.stderr, flush=True)
    more = f"; overrides {' '.join(args.overrides)}" if args.overrides else ""
    print(f"{args.jobs}-job digits multirun, trainer.epochs={args.epochs}{more}; {os.cpu_count()} CPUs")
    print(
        f"{'launcher':<16} | {'wall s':>7} | {'sum fit s':>9} | {'sum run s':>9} | {'overhead':>8} | "
        f"{'in-run':>6} | {'floor s':>7} | {'overhead >=':>11} | {'threads':>7} | loadavg"
    )
    ok = True
    for r in rows:
        slots = r["parallel"] * r["wall"]
        overhead = 1 - r["fit"] / slots
        in_run = (r["total"] - r["fit"]) / slots
        ok &= overhead <= args.goal
        label = r["name"] + (f" ({r['parallel']} jobs)" if r["parallel"] > 1 else "")
        if r["floor"] is None:
            fl = least = "-"
        else:  # the least wall any implementation could reach: the floor, then the training
            fl, least = f"{r['floor']:.1f}", f"{1 - r['fit'] / (r['parallel'] * r['floor'] + r['fit']):.1%}"
        print(
            f"{label:<16} | {r['wall']:>7.1f} | {r['fit']:>9.1f} | {r['total']:>9.1f} | {overhead:>8.1%} | "
            f"{in_run:>6.1%} | {fl:>7} | {least:>11} | {'/'.join(map(str, r['threads'])):>7} | "
            f"{r['load'][0]:.2f} -> {r['load'][1]:.2f}"
        )
    print(f"goal overhead <= {args.goal:.0%}: {'met' if ok else 'NOT met'}")
    return ok


if __name__ == "__main__":
    main()
