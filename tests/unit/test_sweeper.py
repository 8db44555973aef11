"""The basic sweeper derives a job's config from an earlier job's when they differ only in values
(hydra_plugins/torchprac_launcher/sweeper.py): each derived config must equal the one Hydra
composes for the same overrides, and anything that is not a plain value is composed by Hydra."""

from __future__ import annotations

import pytest
from conftest import CONF
from hydra import initialize_config_dir
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper as HydraBasicSweeper
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.types import RunMode
from omegaconf import OmegaConf, open_dict

from hydra_plugins.torchprac_launcher.sweeper import ComposedOnce


@pytest.fixture
def loader():
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        yield GlobalHydra.instance().hydra.config_loader


def _jobs(loader, args: list[str]):
    """The master config of `python train.py -m *args` and its jobs' overrides, as Hydra's
    basic sweeper makes them."""
    master = loader.load_configuration("config", overrides=args, run_mode=RunMode.MULTIRUN)
    parsed = OverridesParser.create().parse_overrides([a for a in args if not a.startswith("hydra.")])
    return master, [list(job) for job in HydraBasicSweeper.split_arguments(parsed, None)[0]]


def _as_hydra_composes(loader, master, job):
    cfg = loader.load_sweep_config(master, job)
    return OmegaConf.to_container(cfg, resolve=False), OmegaConf.is_struct(cfg)


# (sweep, how many of its jobs are derived rather than composed)
SWEEPS = [
    (["trainer.seed=0,1,2"], 2),
    (["optimizer=adam", "trainer.seed=0,1", "optimizer.lr=0.1,0.01"], 3),  # a fixed choice
    (["optimizer=adam,sgd", "trainer.seed=0,1"], 2),  # one composition per choice
    (["reg=[l2]", "reg.l2.strength=0.1,0.001,null", "trainer.epochs=3"], 2),
    (["trainer.seed=0,1", "trainer.epochs=${trainer.seed}", "hydra.job.config.override_dirname.item_sep=+"], 1),
    (["trainer.seed=1,2", "model.hidden=[8],[16]"], 2),  # a list value: composed once per list
    (["+extra=1,2"], 0),  # appended keys: composed
    (["trainer.seed=1,2", "~predict.header"], 1),  # a fixed deletion of another key
    (["trainer.seed=1,2", "++trainer.seed=5"], 0),  # the same key set twice: composed
]


@pytest.mark.parametrize(("args", "derived"), SWEEPS, ids=[" ".join(a) for a, _ in SWEEPS])
def test_a_derived_config_equals_hydra_s_composition(loader, tmp_path, args, derived):
    master, jobs = _jobs(loader, [*args, f"hydra.sweep.dir={tmp_path}"])
    kept = ComposedOnce(loader)
    for job in jobs:
        kept.keep(master, job)
    assert kept.derived == derived
    for job in jobs:
        ours = kept.load_sweep_config(master, job)
        assert (OmegaConf.to_container(ours, resolve=False), OmegaConf.is_struct(ours)) == _as_hydra_composes(
            loader, master, job
        ), job
        assert list(ours.hydra.overrides.task) == job
        assert not kept.kept[(id(master), tuple(job))]  # each kept config is handed out once


def test_the_launcher_changing_a_job_s_config_leaves_the_others_as_composed(loader, tmp_path):
    master, jobs = _jobs(loader, ["trainer.seed=0,1,2", f"hydra.sweep.dir={tmp_path}"])
    kept = ComposedOnce(loader)
    for job in jobs:
        kept.keep(master, job)
    first = kept.load_sweep_config(master, jobs[0])
    with open_dict(first):  # as Hydra's launchers set hydra.job.num and id
        first.hydra.job.num = 99
        first.trainer.epochs = 1234
    for job in jobs[1:]:
        assert (
            OmegaConf.to_container(kept.load_sweep_config(master, job), resolve=False)
            == _as_hydra_composes(loader, master, job)[0]
        )
