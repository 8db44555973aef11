"""The basic sweeper composes each job's config once, and jobs that differ only in values not at
all (hydra_plugins/torchprac_launcher/sweeper.py), for Hydra's basic launcher and torchprac's
process pool, and still refuses a sweep with a bad value before any job runs."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import FAST, ROOT, run_cli
from omegaconf import OmegaConf

TINY = [*FAST, "model.hidden=[8]", "trainer.epochs=1", "trainer.checkpoint.enabled=false", "viz.enabled=false"]

# train.py as a user runs it, counting Hydra's compositions (ConfigLoaderImpl.load_configuration).
_COUNTING = """
import runpy, sys
from hydra._internal.config_loader_impl import ConfigLoaderImpl
real, n = ConfigLoaderImpl.load_configuration, [0]
def counting(self, *a, **k):
    n[0] += 1
    return real(self, *a, **k)
ConfigLoaderImpl.load_configuration = counting
sys.argv = [{script!r}, *{args!r}]
try:
    runpy.run_path({script!r}, run_name="__main__")
finally:
    print("COMPOSITIONS", n[0])
"""


def _count(args: list[str], cwd) -> tuple[int, subprocess.CompletedProcess]:
    code = _COUNTING.format(script=str(ROOT / "train.py"), args=args)
    p = subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=300)
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("COMPOSITIONS")]
    assert lines, p.stderr[-3000:]
    return int(lines[-1].split()[1]), p


@pytest.mark.parametrize("launcher", [[], ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]], ids=["basic", "pool"])
def test_each_config_choice_is_composed_once(tmp_path, launcher):
    one, p1 = _count(["-m", "trainer.seed=0", *TINY, *launcher, f"hydra.sweep.dir={tmp_path / 'one'}"], tmp_path)
    sweep = tmp_path / "three"
    three, p3 = _count(["-m", "trainer.seed=0,1,2", *TINY, *launcher, f"hydra.sweep.dir={sweep}"], tmp_path)
    choices = tmp_path / "choices"
    four, p4 = _count(
        ["-m", "trainer.seed=0,1", "activation=relu,tanh", *TINY, *launcher, f"hydra.sweep.dir={choices}"], tmp_path
    )
    assert p1.returncode == 0 and p3.returncode == 0 and p4.returncode == 0, (p1.stderr + p3.stderr)[-3000:]
    # two more jobs that change a value: no more compositions (Hydra's own basic sweeper: four,
    # validation + launch); a second activation: one more
    assert three - one == 0
    assert four - one == 1
    for i in range(3):  # each job ran its own overrides
        cfg = (sweep / str(i) / ".hydra" / "config.yaml").read_text()
        assert f"seed: {i}\n" in cfg
        assert (sweep / str(i) / ".hydra" / "overrides.yaml").read_text().startswith(f"- trainer.seed={i}\n")
        assert json.loads((sweep / str(i) / "metrics.json").read_text())["status"] == "completed"
    for i, (seed, act) in enumerate([(0, "relu"), (0, "tanh"), (1, "relu"), (1, "tanh")]):
        cfg = OmegaConf.load(choices / str(i) / ".hydra" / "config.yaml")
        assert (cfg.trainer.seed, cfg.activation.name) == (seed, act)


def test_a_bad_value_still_stops_the_sweep_before_any_job_runs(tmp_path):
    sweep = tmp_path / "sweep"
    p = run_cli(["-m", "optimizer=adam,no_such_optimizer", *TINY, f"hydra.sweep.dir={sweep}"], cwd=tmp_path)
    assert p.returncode != 0
    assert "no_such_optimizer" in p.stderr
    assert not (sweep / "0").exists()  # validated as a batch, before job 0


@pytest.mark.parametrize("background", ["auto", "false"])
def test_a_basic_sweep_draws_every_job_s_figures(tmp_path, background):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    sweep = tmp_path / "sweep"
    pictures = [*TINY[:-1], "viz.enabled=true", f"viz.background={background}", "trainer.num_threads=1"]
    p = run_cli(["-m", "trainer.seed=0,1", *pictures, f"hydra.sweep.dir={sweep}"], cwd=tmp_path)
    assert p.returncode == 0, p.stderr[-3000:]
    log0 = (sweep / "0" / "train.log").read_text()
    in_background = "drawn in a background process" in log0
    assert in_background == (background == "auto")  # auto: basic launcher, one thread of two cores
    if in_background:  # started as the first job starts, so that its imports overlap the training
        assert log0.index("drawn in a background process") < log0.index("completed ")
    names = ["activations", "confusion_dev", "confusion_test", "learning_curves"]
    for job in ("0", "1"):
        run = sweep / job
        assert sorted(f.stem for f in (run / "figures").glob("*.png")) == names
        tb = {f.parent for f in run.rglob("events.out.tfevents.*")}
        assert len(tb) == 1  # one TensorBoard run (named for the job's overrides)
        ea = EventAccumulator(str(tb.pop()), size_guidance={"images": 0}).Reload()
        assert sorted(ea.Tags()["images"]) == [f"figures/{n}" for n in names]
        assert any(f.name.endswith(".figures") for f in run.rglob("events.*")) == in_background
