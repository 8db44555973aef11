"""trainer.num_threads: how many CPU threads torch's ops use in this run (`auto` or N).

torch's default of one thread per core makes small models slower: every op of a tiny matmul
pays OpenMP's fork/join, and when another process holds one of the cores, each parallel region
waits for the descheduled thread (a 1000-step circles run: 6 s with one thread, 123 s with two
on a busy 2-core machine). `auto` therefore gives a run

    min(its share of the cores, the cores other processes leave idle, FLOPs per batch / MIN_FLOPS_PER_THREAD)

threads, at least one: its share divides the cores between the jobs that run at once (a joblib
sweep's n_jobs, torchrun's local ranks); a thread is added only for each MIN_FLOPS_PER_THREAD
of work per training step (the measured crossover below), and only on a core that is idle now.
The other processes' load is sampled (/proc/stat, 0.2 s) only when it could change the answer.
The choice is made once, when the run starts; a load that starts later is not followed."""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch
    from torch import nn

log = logging.getLogger("torchprac")

# Half the training work per step (3 x forward FLOPs x batch) from which a second thread pays
# for itself: 2 threads from 40 MFLOP per step, one more per further 20 MFLOP. Measured on the
# 2-core Intel Xeon VM (torch 2.14, `bench_threads.py --calibrate`, MLP steps timed in quiet moments
# only; bench/README.md "Threads"): 1 vs 2 threads at parity from 13 to 32 MFLOP per step
# (t1/t2 0.92-0.99), 2 threads 1.2x faster from 51 MFLOP, 1.4x at 400-1600 MFLOP. On a loaded
# machine the busy-core check decides.
MIN_FLOPS_PER_THREAD = 20e6
# A core counts as free when other processes used less than this share of it during the sample.
BUSY_SHARE = 0.25
SAMPLE_S = 0.2


def check_setting(v: Any) -> str | None:
    """The schema rule of trainer.num_threads: None when valid, else what is allowed."""
    ok = v == "auto" or (isinstance(v, int) and not isinstance(v, bool) and v >= 1)
    return None if ok else "'auto' or a whole number of threads >= 1"


# -- what the machine offers ------------------------------------------------------------------
def cpu_cores() -> int:
    """CPUs this process may run on (affinity / cgroup cpusets), capped by OMP_NUM_THREADS when
    the environment sets it: the user's own ceiling on the process's threads."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    env = os.environ.get("OMP_NUM_THREADS", "")
    if env.isdigit() and int(env) >= 1:
        n = min(n, int(env))
    return max(1, n)


def concurrent_jobs(cores: int | None = None) -> int:
    """How many runs share this machine's cores: torchrun's local ranks (LOCAL_WORLD_SIZE) times
    the jobs a sweep runs at once: TORCHPRAC_PARALLEL_JOBS (set by the process_pool launcher for
    its job processes), else a Hydra joblib sweep's hydra.launcher.n_jobs (-1 = one per CPU,
    joblib's negative convention)."""
    jobs = max(1, _env_int("LOCAL_WORLD_SIZE"))
    n_jobs = _env_int("TORCHPRAC_PARALLEL_JOBS") or _joblib_n_jobs()
    if n_jobs is not None:
        cpus = os.cpu_count() or 1
        jobs *= max(1, n_jobs if n_jobs > 0 else cpus + 1 + n_jobs)
    return jobs


def _env_int(name: str) -> int:
    v = os.environ.get(name, "")
    return int(v) if v.isdigit() else 0


def _joblib_n_jobs() -> int | None:
    try:
        from hydra.core.hydra_config import HydraConfig

        if not HydraConfig.initialized():
            return None
        launcher = HydraConfig.get().launcher
        target = str(launcher.get("_target_", ""))
        n = launcher.get("n_jobs") if "joblib" in target.lower() else None
        return int(n) if n is not None else None
    except Exception:  # no Hydra, or a launcher config without these keys: one job
        return None


def _cpu_times() -> tuple[float, float] | None:
    """(busy, total) jiffies of all CPUs from /proc/stat; None where it does not exist."""
    try:
        with open("/proc/stat") as f:
            fields = [float(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)  # idle + iowait
    total = sum(fields[:8])  # guest time is already counted in user
    return total - idle, total


def busy_cores(seconds: float = SAMPLE_S, cores: int | None = None) -> float:
    """Cores that OTHER processes keep busy, sampled over `seconds`: the machine's busy CPU
    time minus this process's own (its idle OpenMP threads may still spin). 0.0 where
    /proc/stat is missing (not Linux): nothing is assumed busy then."""
    a = _cpu_times()
    if a is None:
        return 0.0
    own0, t0 = time.process_time(), time.perf_counter()
    time.sleep(seconds)
    b = _cpu_times()
    own, wall = time.process_time() - own0, time.perf_counter() - t0
    if b is None or b[1] <= a[1]:
        return 0.0
    n_cpus = os.cpu_count() or 1
    machine = (b[0] - a[0]) / (b[1] - a[1]) * n_cpus  # busy cores, this process included
    return min(max(0.0, machine - own / wall), float(cores or n_cpus))


# -- the work of one step --------------------------------------------------------------------
def train_flops_per_batch(model: nn.Module, input_shape: tuple[int, ...], batch: int) -> float:
    """Training FLOPs of one step: 3 x the forward FLOPs (matmuls and convolutions, counted by
    torch.utils.flop_counter on a 2-example forward in eval mode) x the batch size. The
    backward pass costs two matmuls per forward matmul."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from torchprac.utils import unwrap

    net = unwrap(model)  # never count through torch.compile: that would compile the model now
    param = next(net.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    was_training = net.training
    net.eval()
    try:
        x = torch.zeros(2, *input_shape, device=device)
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            net(x)
    finally:
        net.train(was_training)
    return 3.0 * counter.get_total_flops() / 2 * batch


# -- the choice ------------------------------------------------------------------------------
def choose_threads(
    flops_per_batch: float,
    cores: int,
    jobs: int = 1,
    busy: float | Callable[[], float] = 0.0,
    min_flops_per_thread: float = MIN_FLOPS_PER_THREAD,
) -> int:
    """The `auto` thread count. `busy`: cores other processes use (or a function measuring it,
    called only when it could lower the answer)."""
    share = max(1, cores // max(1, jobs))
    by_work = max(1, int(flops_per_batch // min_flops_per_thread)) if math.isfinite(flops_per_batch) else share
    n = min(share, by_work)
    if n > 1:
        used = busy() if callable(busy) else busy
        # A core counts as free when others use less than BUSY_SHARE of it: with more taken,
        # every parallel region would wait for the thread that shares it.
        taken = max(0, math.ceil(used - BUSY_SHARE))
        n = min(n, max(1, cores - taken))
    return n


@dataclass
class ThreadChoice:
    """What the run uses and why (logged, and written to metrics.json under "threads")."""

    num_threads: int
    setting: str  # "auto" or the number the config set
    reason: str
    flops_per_batch: float | None = None
    cores: int | None = None
    jobs: int | None = None
    busy_cores: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


def resolve(
    setting: int | str, model: nn.Module, input_shape: tuple[int, ...], batch: int, device: torch.device
) -> ThreadChoice:
    """The thread count for `setting` (trainer.num_threads) and this model and batch size."""
    if setting != "auto":
        return ThreadChoice(int(setting), str(setting), "set by trainer.num_threads")
    cores, jobs = cpu_cores(), concurrent_jobs()
    if device.type != "cpu":  # the model runs on the accelerator: the CPU threads only feed it
        n = max(1, cores // jobs)
        return ThreadChoice(n, "auto", f"{device.type} run: the job's share of {cores} cores", cores=cores, jobs=jobs)
    flops = train_flops_per_batch(model, input_shape, batch)
    measured: list[float] = []

    def busy() -> float:
        measured.append(busy_cores(cores=cores))
        return measured[-1]

    n = choose_threads(flops, cores, jobs, busy)
    mflops, per_thread = flops / 1e6, MIN_FLOPS_PER_THREAD / 1e6
    if flops < 2 * MIN_FLOPS_PER_THREAD:
        reason = f"{mflops:.3g} MFLOP per step: under the {2 * per_thread:.3g} MFLOP at which 2 threads pay"
    elif measured and n < min(int(flops // MIN_FLOPS_PER_THREAD), cores // jobs):
        reason = f"other processes keep {measured[-1]:.1f} of {cores} cores busy"
    elif n == max(1, cores // jobs):
        reason = f"{mflops:.3g} MFLOP per step; the job's share of {cores} cores ({jobs} job(s) at once)"
    else:
        reason = f"{mflops:.3g} MFLOP per step: one thread per {per_thread:.3g} MFLOP"
    return ThreadChoice(n, "auto", reason, flops, cores, jobs, round(measured[-1], 2) if measured else None)


def apply(choice: ThreadChoice) -> int:
    """torch.set_num_threads(choice); returns the previous count (to restore when the run ends)."""
    import torch

    before = torch.get_num_threads()
    if choice.num_threads != before:
        torch.set_num_threads(choice.num_threads)
    log.info("threads: %d (%s: %s)", choice.num_threads, choice.setting, choice.reason)
    return before
