"""torchprac's parallel sweep launcher: `hydra/launcher=joblib` (and its own name, `process_pool`).

    python train.py -m hydra/launcher=joblib hydra.launcher.n_jobs=2 optimizer=sgd,adam,nesterov

Why not Hydra's joblib launcher itself: a joblib (loky) worker that dies — SIGKILL, the
out-of-memory killer, a segfault in a native library — breaks joblib's whole executor, so the
sweep ends with no summary and its running siblings are killed. This launcher keeps what made
joblib fast — `n_jobs` worker processes, each importing torch once and running job after job
(Hydra's `run_job`, as joblib's launcher calls it) — but watches each worker on its own: when
one dies, only the job it was running is recorded as failed (its metrics.json says how it
ended), a fresh worker takes the next job, and the sweep summary is written as usual.

`conf/hydra/launcher/joblib.yaml` points Hydra's `joblib` choice here. `n_jobs` keeps joblib's
meaning (-1 = one worker per CPU, -2 = all but one, ...) and `timeout` (seconds) is per job:
a job past it is killed and recorded as failed. joblib's tuning keys (backend, prefer,
pre_dispatch, ...) have nothing to tune here; a value other than joblib's default is refused.
"""

# No `from __future__ import annotations`: Hydra scans this module with a loader under which
# a dataclass cannot resolve string annotations.
import atexit
import json
import logging
import math
import multiprocessing as mp
import os
import signal
import threading
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra.core.hydra_config import HydraConfig
from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, configure_log, filter_overrides, run_job, setup_globals
from hydra.plugins.launcher import Launcher
from omegaconf import OmegaConf, open_dict

log = logging.getLogger(__name__)
# In the worker processes too: see torchprac.preflight.SCHEMA_NOTE.
warnings.filterwarnings("ignore", message=r"(?s).*'hydra/launcher/joblib' is validated against ConfigStore schema")

# joblib's own defaults for the keys of Hydra's joblib launcher config: accepted, not used.
JOBLIB_DEFAULTS: dict[str, Any] = {
    "backend": None,
    "prefer": "processes",
    "require": None,
    "verbose": 0,
    "pre_dispatch": "2*n_jobs",
    "batch_size": "auto",
    "temp_folder": None,
    "max_nbytes": None,
    "mmap_mode": "r",
}


@dataclass
class ProcessPoolLauncherConf:
    _target_: str = "hydra_plugins.torchprac_launcher.process_pool.ProcessPoolLauncher"
    n_jobs: int = 2
    timeout: Any = None


ConfigStore.instance().store(group="hydra/launcher", name="process_pool", node=ProcessPoolLauncherConf)


ALLOWED = (
    "n_jobs (a count, or -1, -2, ... as in joblib: -1 = one worker per CPU) and timeout (seconds per job > 0, or null)"
)


def option_problem(key: str, value: Any) -> str | None:
    """Why `hydra.launcher.<key>=value` cannot be used (None when it can); shared by the
    launcher and torchprac.preflight, which checks the command line before Hydra starts."""
    if key == "n_jobs":
        ok = isinstance(value, int) and not isinstance(value, bool) and value != 0
    elif key == "timeout":
        ok = value is None or (isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0)
    elif key in JOBLIB_DEFAULTS:
        if JOBLIB_DEFAULTS[key] == value:
            return None
        return (
            f"hydra.launcher.{key}={value!r}: torchprac's joblib launcher runs each job in a worker process it "
            f"watches (so a killed job does not end the sweep) and has no use for joblib's {key}. Allowed: {ALLOWED}."
        )
    else:
        ok = False
    return None if ok else f"hydra.launcher.{key}={value!r}. Allowed: {ALLOWED}."


def n_workers(n_jobs: int, cpus: int | None = None) -> int:
    """joblib's meaning of n_jobs: N workers, or cpus + 1 + N for a negative N (-1 = all CPUs)."""
    cpus = cpus or os.cpu_count() or 1
    if n_jobs == 0:
        raise ValueError("hydra.launcher.n_jobs=0: allowed are a positive count or -1, -2, ... (as in joblib)")
    return max(1, n_jobs if n_jobs > 0 else cpus + 1 + n_jobs)


def _pickler():
    import cloudpickle  # plain pickle cannot send the task function: it lives in train.py's __main__

    return cloudpickle


def _serve(conn) -> None:
    """A worker process: run the jobs it is sent, one at a time, until it is sent None."""
    pickler = _pickler()
    conn.send_bytes(b"ready")  # a job's timeout counts from here, not from the process start
    while True:
        try:
            msg = conn.recv_bytes()
        except EOFError:  # the launcher went away
            return
        if not msg:
            return
        idx, hydra_context, sweep_config, task_function, singleton_state, env = pickler.loads(msg)
        os.environ.update(env)
        setup_globals()
        Singleton.set_state(singleton_state)
        with open_dict(sweep_config):
            sweep_config.hydra.job.id = f"{sweep_config.hydra.job.name}_{idx}"
            sweep_config.hydra.job.num = idx
        HydraConfig.instance().set_config(sweep_config)
        ret = run_job(
            hydra_context=hydra_context,
            config=sweep_config,
            task_function=task_function,
            job_dir_key="hydra.sweep.dir",
            job_subdir_key="hydra.sweep.subdir",
        )
        conn.send_bytes(pickler.dumps(ret))


class _Worker:
    """One worker process and its pipe; started on first use, replaced when it dies."""

    def __init__(self) -> None:
        self.proc: Any = None
        self.conn: Any = None

    def _start(self) -> None:
        parent, child = mp.get_context("spawn").Pipe()
        self.proc = mp.get_context("spawn").Process(target=_serve, args=(child,), name="torchprac-sweep-worker")
        self.proc.start()
        child.close()
        self.conn = parent
        if self.conn not in wait([self.conn, self.proc.sentinel]) or self.conn.recv_bytes() != b"ready":
            self.proc.join()
            code = self.proc.exitcode
            self._reset()
            raise RuntimeError(f"a worker process could not start (exit code {code})")

    def run(self, payload: bytes, timeout: float | None) -> tuple[JobReturn | None, str]:
        """The job's JobReturn, or None and how the worker ended."""
        if self.proc is None or not self.proc.is_alive():
            self._start()
        self.conn.send_bytes(payload)
        ready = wait([self.conn, self.proc.sentinel], timeout)
        if self.conn in ready:
            try:
                return _pickler().loads(self.conn.recv_bytes()), ""
            except (EOFError, OSError):
                pass  # died while answering
        if not ready:  # timed out: the job is still running
            self.proc.kill()
            self.proc.join()
            self._reset()
            return None, f"it ran past hydra.launcher.timeout={timeout:g} s and was killed"
        self.proc.join()
        code = self.proc.exitcode
        self._reset()
        if code is not None and code < 0:
            return None, f"its worker process was killed by {signal.Signals(-code).name}"
        return None, f"its worker process exited with code {code}"

    def _reset(self) -> None:
        self.conn.close()
        self.proc = self.conn = None

    def stop(self) -> None:
        if self.proc is not None and self.proc.is_alive():
            try:
                self.conn.send_bytes(b"")
            except OSError:
                pass
            self.proc.join(10)
            if self.proc.is_alive():
                self.proc.kill()
                self.proc.join()


class ProcessPoolLauncher(Launcher):
    def __init__(self, n_jobs: int = 2, timeout: float | None = None, **joblib_keys: Any) -> None:
        for key, value in {"n_jobs": n_jobs, "timeout": timeout, **joblib_keys}.items():
            problem = option_problem(key, value)
            if problem:
                raise ValueError(problem)
        self.n_jobs = n_workers(int(n_jobs))
        self.timeout = None if timeout is None else float(timeout)
        self.config = self.hydra_context = self.task_function = None
        self.workers: list[_Worker] = []
        atexit.register(self.close)  # workers live across launch() calls (Optuna asks in batches)

    def setup(self, *, hydra_context, task_function, config) -> None:
        self.config, self.hydra_context, self.task_function = config, hydra_context, task_function

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        setup_globals()
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
        n = min(self.n_jobs, len(job_overrides))
        log.info("Launching %d jobs, %d at a time, each in a watched worker process", len(job_overrides), n)
        for i, overrides in enumerate(job_overrides):
            log.info("\t#%d : %s", initial_job_idx + i, " ".join(filter_overrides(overrides)))
        while len(self.workers) < n:
            self.workers.append(_Worker())
        # The job processes divide the cores between them (trainer.num_threads=auto reads this).
        env = {"TORCHPRAC_PARALLEL_JOBS": str(n)}
        state = Singleton.get_state()
        todo = list(enumerate(job_overrides))
        results: dict[int, JobReturn] = {}
        lock = threading.Lock()

        def drain(worker: _Worker) -> None:
            while True:
                with lock:
                    if not todo:
                        return
                    i, overrides = todo.pop(0)
                idx = initial_job_idx + i
                try:
                    # Composed here, one job at a time: under the basic sweeper this hands out the
                    # config its validation composed (sweeper.py) instead of composing it again.
                    with lock:
                        sweep_config = self.hydra_context.config_loader.load_sweep_config(self.config, list(overrides))
                    args = (idx, self.hydra_context, sweep_config, self.task_function, state, env)
                    ret, how = worker.run(_pickler().dumps(args), self.timeout)
                except Exception as e:  # the launcher's own failure (pickling, a pipe): this job only
                    ret, how = None, f"the launcher could not run it: {type(e).__name__}: {e}"
                results[i] = ret if ret is not None else self._failed(idx, list(overrides), how)

        threads = [threading.Thread(target=drain, args=(w,), daemon=True) for w in self.workers[:n]]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return [results[i] for i in range(len(job_overrides))]

    def _failed(self, idx: int, overrides: list[str], how: str) -> JobReturn:
        """A job whose worker died: a metrics.json saying how, and the worst objective for the sweeper."""
        cfg = self.hydra_context.config_loader.load_sweep_config(self.config, overrides)
        with open_dict(cfg):
            cfg.hydra.job.id = cfg.hydra.job.num = idx
        job_dir = Path(str(cfg.hydra.sweep.dir)) / str(cfg.hydra.sweep.subdir)
        objective = str(OmegaConf.select(cfg, "trainer.objective", default="dev/accuracy"))
        mode = "min" if objective.endswith("loss") else "max"
        job_dir.mkdir(parents=True, exist_ok=True)
        record = {
            "status": "failed",
            "epochs_run": 0,
            "best_epoch": 0,
            "objective": {"name": objective, "value": None, "mode": mode},
            "metrics": {},
            "message": f"job {idx} failed: {how}",
        }
        (job_dir / "metrics.json").write_text(json.dumps(record, indent=2) + "\n")
        log.warning("job #%d failed: %s; the sweep goes on", idx, how)
        ret = JobReturn(overrides=overrides, cfg=cfg, hydra_cfg=cfg, working_dir=str(job_dir), task_name="train")
        ret.return_value, ret.status = (math.inf if mode == "min" else -math.inf), JobStatus.COMPLETED
        return ret

    def close(self) -> None:
        for w in self.workers:
            w.stop()
        self.workers = []
