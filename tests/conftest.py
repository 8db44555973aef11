"""Shared test helpers: compose the real Hydra config tree and run it in-process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
SHARED_DATA = ROOT.parent / "shared" / "data"

# Fast defaults for tests: no progress bar, no histograms, few epochs.
FAST = ["trainer.progress=false", "trainer.histograms=false"]


def make_cfg(overrides: list[str] | None = None, run_dir: Path | str | None = None) -> DictConfig:
    ov = list(FAST) + list(overrides or [])
    if run_dir is not None:
        ov.append(f"paths.run_dir={run_dir}")
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name="config", overrides=ov)


def run_cfg(overrides: list[str] | None, run_dir: Path) -> tuple[float, dict]:
    """Run in-process; returns (objective, metrics.json)."""
    from torchprac.run import run

    value = run(make_cfg(overrides, run_dir))
    return value, json.loads((Path(run_dir) / "metrics.json").read_text())


def run_cli(
    args: list[str], cwd: Path | None = None, timeout: int = 300, script: str = "train.py", env: dict | None = None
) -> subprocess.CompletedProcess:
    """Run train.py as a user would, in a subprocess."""
    e = {**os.environ, "HYDRA_FULL_ERROR": "0", **(env or {})}
    return subprocess.run(
        [sys.executable, str(ROOT / script), *args],
        cwd=cwd or ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=e,
    )


def conf_choices(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not present")
    return SHARED_DATA
