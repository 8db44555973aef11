"""The command-line entry (train.py, the `torchprac` script): user errors become one paragraph
on stderr and exit status 2, never a traceback; in a sweep, a failing job is recorded as
failed and ranks last instead of ending the sweep."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from torchprac.errors import TorchpracError
from torchprac.metrics import Metric, Status

log = logging.getLogger("torchprac")


def main(cfg: DictConfig) -> float:
    try:
        from torchprac.run import run  # torch's import is the slowest part of start-up: inside the try

        return run(cfg)
    except KeyboardInterrupt:
        _interrupted(cfg)
        sys.exit(130)
    except TorchpracError as e:
        _error_once(str(e))
        if _in_multirun():  # one bad job must not end the sweep: it ranks last as failed
            return _failed_job(cfg, e)
        sys.exit(2)
    except Exception as e:
        if not _in_multirun():
            raise  # a bug, not bad input: the traceback is what the developer needs
        # In a sweep one crashing job must not take the others (and the summary) down.
        log.exception("job failed: %s", e)
        return _failed_job(cfg, e)


def _interrupted(cfg: DictConfig) -> None:
    """Ctrl-C: one line saying where the last checkpoint is and the command that resumes."""
    run_dir = Path(str(OmegaConf.select(cfg, "paths.run_dir", default=".")))
    last = next((p for p in (run_dir / "checkpoints" / n for n in ("last.pt", "prev.pt")) if p.is_file()), None)
    if last is None:
        print(f"interrupted before the first checkpoint: nothing to resume in {run_dir}", file=sys.stderr)
        return
    print(
        f"interrupted: last checkpoint {last}; resume with "
        f"`python train.py trainer.resume=auto hydra.run.dir={run_dir}`",
        file=sys.stderr,
    )


def _in_multirun() -> bool:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def _objective(cfg: DictConfig) -> Metric:
    try:
        return Metric.parse(str(OmegaConf.select(cfg, "trainer.objective", default="dev/accuracy")))
    except TorchpracError:
        return Metric("dev", "accuracy")


def _failed_job(cfg: DictConfig, e: Exception) -> float:
    """metrics.json with status failed in the job's own Hydra dir (never in another run's dir,
    e.g. one named by paths.run_dir for a resume), and the worst objective for the sweeper."""
    from hydra.core.hydra_config import HydraConfig

    from torchprac.files import write_json

    metric = _objective(cfg)
    job_dir = Path(HydraConfig.get().runtime.output_dir)
    run_dir = Path(str(OmegaConf.select(cfg, "paths.run_dir", default=job_dir)))
    if run_dir.resolve() == job_dir.resolve():
        write_json(
            job_dir / "metrics.json",
            {
                "status": str(Status.FAILED),
                "epochs_run": 0,
                "best_epoch": 0,
                "objective": {"name": str(metric), "value": None, "mode": metric.mode},
                "metrics": {},
                "message": str(e),
            },
        )
    return metric.worst()


def _error_once(msg: str) -> None:
    """The paragraph once on stderr, and into train.log: not also through the console log
    handler (Hydra's writes to stdout), so a terminal shows it once."""
    print(f"error: {msg}", file=sys.stderr)
    record = log.makeRecord(log.name, logging.ERROR, __file__, 0, msg, None, None)
    for h in logging.getLogger().handlers:
        if isinstance(h, logging.FileHandler):
            h.handle(record)
