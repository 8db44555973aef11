"""train.py as a user types it: the summary, the return value, and bad input."""

from __future__ import annotations

import json

import pytest
from conftest import ROOT, make_cfg, run_cli

from torchprac.run import main


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


BAD = [
    ("optimizer.lr=0", "optimizer.lr"),
    ("optimizer.lr=-1", "optimizer.lr"),
    ("optimizer.lr=fast", "optimizer.lr"),
    ("trainer.epochs=0", "trainer.epochs"),
    ("trainer.epochs=2.5", "trainer.epochs"),
    ("trainer.batch_size=0", "trainer.batch_size"),
    ("data.split=[0.5,0.2,0.2]", "data.split"),
    ("model.batch_norm=middle", "model.batch_norm"),
]


@pytest.mark.parametrize("override,key", BAD)
def test_bad_input_in_process(override, key, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(make_cfg([override], tmp_path))
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert key in err and "Allowed" in err and "Traceback" not in err
    assert not (tmp_path / "metrics.json").exists()


def test_bad_input_cli_one_paragraph_no_traceback(tmp_path):
    r = run_cli(["optimizer.lr=-0.1", f"hydra.run.dir={tmp_path}"])
    assert r.returncode == 2
    assert "optimizer.lr=-0.1" in r.stderr and "a number > 0" in r.stderr
    assert "Traceback" not in r.stderr
    assert (r.stdout + r.stderr).count("Invalid config") == 1  # once on a terminal
    assert "Invalid config: optimizer.lr" in (tmp_path / "train.log").read_text()  # and kept in the log


def test_unknown_group_choice_lists_allowed(tmp_path):
    r = run_cli(["optimizer=adamm", f"hydra.run.dir={tmp_path}"])
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert "optimizer/adamm" in r.stderr and "adam" in r.stderr and "nesterov" in r.stderr
    assert ROOT.exists()
