"""train.py and the `torchprac` console script as a user types them: the run dir, the summary,
no progress bar off a terminal, and a start-up that imports only what the run needs.
(Bad input on the command line: tests/e2e/test_bad_inputs.py.)"""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import run_cli


def test_train_py_runs_and_writes_run_dir(tmp_path):
    r = run_cli(["trainer.epochs=2", f"hydra.run.dir={tmp_path}"])
    assert r.returncode == 0, r.stderr
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert m["epochs_run"] == 2
    assert "dev   loss" in r.stderr + r.stdout and (tmp_path / "train.log").read_text().count("diagnosis: ") == 1
    assert list(tmp_path.glob("events.out.tfevents.*"))
    assert "step/s" not in r.stderr and "train:" not in r.stderr  # no progress bar off a terminal


def test_console_script_same_as_train_py(tmp_path):
    r = run_cli(["trainer.epochs=1", f"hydra.run.dir={tmp_path}", "data=moons"], script="torchprac/cli.py")
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "metrics.json").read_text())["epochs_run"] == 1


def test_the_default_path_imports_neither_torchvision_nor_tensorboard_up_front():
    code = (
        "import sys, torchprac.run; "
        "print(sorted(m for m in ('torchvision', 'torch.utils.tensorboard') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
