"""Shared test helpers: compose the real Hydra config tree, build its objects through the
package's own stages (config.RunConfig -> run.build_*), and run it in-process or as a user would.

Layout: tests/unit/<subpackage>/test_<module>.py mirror torchprac/; tests/e2e/ hold whole runs
and the command line; tests/bench/ the benchmark script's logic."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
SHARED_DATA = ROOT.parent / "shared" / "data"
CPU = torch.device("cpu")

# A choice other than the default in six groups (the HParams row must keep the same keys).
OTHER_CHOICES = [
    "optimizer=adam",
    "reg=[l2,dropout]",
    "scheduler=cosine",
    "clip=norm",
    "activation=tanh",
    "init=xavier_normal",
]
HPARAM_KEYS = {"optimizer", "lr", "batch_size", "init", "activation", "l2", "l1", "keep_prob", "scheduler", "clip"}

# Fast defaults for tests: no progress bar, no histograms, few epochs.
FAST = ["trainer.progress=false", "trainer.histograms=false"]


def make_cfg(overrides: list[str] | None = None, run_dir: Path | str | None = None) -> DictConfig:
    ov = list(FAST) + list(overrides or [])
    if run_dir is not None:
        ov.append(f"paths.run_dir={run_dir}")
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name="config", overrides=ov)


def make_rc(overrides: list[str] | None = None, run_dir: Path | str | None = "/tmp/unused"):
    """The checked, built config (config.RunConfig) of the overrides."""
    from torchprac.config import RunConfig

    return RunConfig.from_cfg(make_cfg(overrides, run_dir))


def make_model(overrides: list[str] | None, input_shape: tuple[int, ...], num_classes: int):
    """(RunConfig, model) built by run.build_model on the CPU: model, activation, init, dropout."""
    from torchprac.run import build_model

    rc = make_rc(overrides)
    return rc, build_model(rc, input_shape, num_classes, CPU)


def make_optimization(rc, model):
    """run.build_optimization: optimizer, penalty, clipper and constraints of the config."""
    from torchprac.run import build_optimization
    from torchprac.train import Precision

    return build_optimization(rc, model, Precision())


def make_schedule(rc, optim, steps_per_epoch: int, epochs: int):
    """The scheduler of the config (None for scheduler=none), for a run of that length."""
    total = steps_per_epoch * epochs if rc.schedule.interval == "step" else epochs
    return rc.schedule.build(optim.optimizer, total, rc.optimizer.lr)


def make_trainer(model, optim, train, dev, epochs: int, batch_size: int, seed: int = 0, callbacks=None, **loop):
    """A Trainer with no logging callbacks (no progress bar); `loop`: more Loop fields."""
    from torchprac.train import Loop, Trainer

    loop = Loop(epochs=epochs, batch_size=batch_size, progress=False, **loop)
    gen = torch.Generator().manual_seed(seed)
    return Trainer(model, optim, train, dev, loop, callbacks=callbacks or [], generator=gen)


class _DoubleWeightGrad(torch.autograd.Function):
    """y = x W^T + b whose backward returns 2x the true dL/dW (input and bias grads are right)."""

    @staticmethod
    def forward(ctx, x, w, b):
        ctx.save_for_backward(x, w)
        return x @ w.T + b

    @staticmethod
    def backward(ctx, g):
        x, w = ctx.saved_tensors
        return g @ w, 2.0 * g.T @ x, g.sum(0)


class BadLinear(torch.nn.Linear):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _DoubleWeightGrad.apply(x, self.weight, self.bias)


def wrong_backward_model(n_in: int = 5, n_out: int = 3) -> torch.nn.Sequential:
    """A model of the project's layout whose layer2.linear.weight gets twice its true gradient."""
    from collections import OrderedDict

    from torch import nn

    torch.manual_seed(0)
    return nn.Sequential(
        OrderedDict(
            flatten=nn.Flatten(),
            layer1=nn.Sequential(OrderedDict(linear=nn.Linear(n_in, 8), act=nn.Tanh())),
            layer2=nn.Sequential(OrderedDict(linear=BadLinear(8, 6), act=nn.Tanh())),
            head=nn.Linear(6, n_out),
        )
    )


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


def events(run_dir: Path):
    """The run's TensorBoard events, read back with tensorboard's own EventAccumulator."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    return EventAccumulator(str(run_dir), size_guidance={"scalars": 0, "histograms": 0, "tensors": 0}).Reload()


def scalars(run_dir: Path, tag: str) -> list[float]:
    return [e.value for e in events(run_dir).Scalars(tag)]


def conf_choices(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


# Transfer learning: model A's net (BN before the activation: its running stats must stay frozen too).
TRANSFER_NET = ["model.hidden=[16,8]", "model.batch_norm=before"]
TRANSFER_QUIET = ["trainer.histograms=false", "trainer.health.enabled=false"]


@pytest.fixture(scope="session")
def source_run(tmp_path_factory) -> Path:
    """Model A for transfer learning: digits 0-7, two epochs, checkpoints on."""
    d = tmp_path_factory.mktemp("run_a")
    run_cfg(["data.classes=[0,1,2,3,4,5,6,7]", "trainer.epochs=2", *TRANSFER_NET, *TRANSFER_QUIET], d)
    return d


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not present")
    return SHARED_DATA


_KILLED_CHILD = """
import os, signal, sys
sys.path.insert(0, {tests!r})
from conftest import make_cfg
from torchprac.train.step import Optimization

real_step, done = Optimization.step, [0]
def killing_step(self, *args, **kwargs):
    out = real_step(self, *args, **kwargs)
    done[0] += 1
    if done[0] == {kill_at}:
        os.kill(os.getpid(), signal.SIGKILL)
    return out
Optimization.step = killing_step

from torchprac.run import run
run(make_cfg({overrides!r}, {run_dir!r}))
"""


def run_killed_at(step: int, overrides: list[str], run_dir: Path) -> subprocess.CompletedProcess:
    """A run in a child process that SIGKILLs itself right after its `step`-th optimizer step
    (counted through the public Optimization.step): no cleanup, no atexit, as hard as a kill gets."""
    code = _KILLED_CHILD.format(tests=str(ROOT / "tests"), kill_at=step, overrides=overrides, run_dir=str(run_dir))
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
