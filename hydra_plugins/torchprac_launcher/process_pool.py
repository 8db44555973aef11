"""`hydra/launcher=process_pool`: each sweep job in its own Python process, `n_jobs` at a time.

Why not joblib: a joblib (loky) worker that dies — killed by the OOM killer, SIGKILL, a
segfault in a native library — breaks the whole executor, so the sweep ends with no summary
and its running siblings killed. Here a job is a child process of this launcher: when one
dies, only that job is recorded as failed (its metrics.json says how it ended) and the others
go on; the sweep summary and report are written as usual.

    python train.py -m hydra/launcher=process_pool hydra.launcher.n_jobs=2 optimizer=sgd,adam
"""

import json
import logging
import math
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from hydra.core.config_store import ConfigStore
from hydra.core.utils import JobReturn, JobStatus, filter_overrides
from hydra.plugins.launcher import Launcher
from omegaconf import OmegaConf, open_dict

log = logging.getLogger(__name__)


@dataclass
class ProcessPoolLauncherConf:
    _target_: str = "hydra_plugins.torchprac_launcher.process_pool.ProcessPoolLauncher"
    n_jobs: int = 2


ConfigStore.instance().store(group="hydra/launcher", name="process_pool", node=ProcessPoolLauncherConf)


def _program() -> list[str]:
    """The command that started this sweep (train.py or the torchprac script)."""
    prog = sys.argv[0]
    return [sys.executable, prog] if prog.endswith(".py") else [prog]


class ProcessPoolLauncher(Launcher):
    def __init__(self, n_jobs: int = 2) -> None:
        self.n_jobs = max(1, int(n_jobs))
        self.config = self.hydra_context = None

    def setup(self, *, hydra_context, task_function, config) -> None:
        self.config, self.hydra_context = config, hydra_context

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
        log.info("Launching %d jobs, %d at a time, one process each", len(job_overrides), self.n_jobs)
        jobs = []
        for i, overrides in enumerate(job_overrides):
            idx = initial_job_idx + i
            cfg = self.hydra_context.config_loader.load_sweep_config(self.config, list(overrides))
            with open_dict(cfg):
                cfg.hydra.job.id = cfg.hydra.job.num = idx
            job_dir = Path(str(cfg.hydra.sweep.dir)) / str(cfg.hydra.sweep.subdir)
            log.info("\t#%d : %s", idx, " ".join(filter_overrides(overrides)))
            jobs.append((idx, list(overrides), cfg, job_dir))
        env = {**os.environ, "TORCHPRAC_PARALLEL_JOBS": str(min(self.n_jobs, len(jobs)))}
        with ThreadPoolExecutor(self.n_jobs) as pool:
            return list(pool.map(lambda job: self._run(*job, env), jobs))

    def _run(self, idx: int, overrides: "list[str]", cfg, job_dir: Path, env: dict) -> JobReturn:
        cmd = [*_program(), *overrides, f"hydra.run.dir={job_dir}", f"hydra.job.num={idx}"]
        proc = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        objective = str(OmegaConf.select(cfg, "trainer.objective", default="dev/accuracy"))
        mode = "min" if objective.endswith("loss") else "max"
        worst = math.inf if mode == "min" else -math.inf
        value = worst
        metrics = job_dir / "metrics.json"
        if metrics.is_file():
            v = json.loads(metrics.read_text()).get("objective", {}).get("value")
            value = worst if v is None else float(v)
        else:  # killed, crashed or refused before writing anything: record how it ended
            if proc.returncode < 0:
                how = f"its process was killed by {signal.Signals(-proc.returncode).name}"
            else:
                last = (proc.stderr or "").strip().splitlines()[-1:] or [""]
                how = f"its process exited with code {proc.returncode}: {last[0][:300]}"
            job_dir.mkdir(parents=True, exist_ok=True)
            record = {
                "status": "failed",
                "epochs_run": 0,
                "best_epoch": 0,
                "objective": {"name": objective, "value": None, "mode": mode},
                "metrics": {},
                "message": f"job {idx} failed: {how}",
            }
            metrics.write_text(json.dumps(record, indent=2) + "\n")
            log.warning("job #%d failed: %s", idx, how)
        ret = JobReturn(overrides=overrides, cfg=cfg, hydra_cfg=cfg, working_dir=str(job_dir), task_name="train")
        ret.return_value, ret.status = value, JobStatus.COMPLETED
        return ret
