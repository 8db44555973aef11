"""torchprac/threads.py: trainer.num_threads=auto picks threads from the model's FLOPs per
step, the cores, the jobs running at once and the cores other processes keep busy."""

from __future__ import annotations

import pytest
import torch
from conftest import make_rc, run_cfg
from torch import nn

from torchprac import threads
from torchprac.errors import ConfigError
from torchprac.threads import MIN_FLOPS_PER_THREAD as PER_THREAD
from torchprac.threads import choose_threads


def _never() -> float:
    raise AssertionError("the load was sampled although it could not change the answer")


# -- the choice --------------------------------------------------------------------------------
def test_small_models_get_one_thread_without_sampling_the_load():
    for flops in (0.0, 1e6, 2 * PER_THREAD - 1):
        assert choose_threads(flops, cores=16, busy=_never) == 1


def test_one_thread_per_min_flops_up_to_the_cores():
    assert choose_threads(2 * PER_THREAD, cores=16) == 2
    assert choose_threads(5.5 * PER_THREAD, cores=16) == 5
    assert choose_threads(1000 * PER_THREAD, cores=16) == 16
    assert choose_threads(1000 * PER_THREAD, cores=2) == 2


def test_concurrent_jobs_divide_the_cores():
    big = 1000 * PER_THREAD
    assert choose_threads(big, cores=16, jobs=4) == 4
    assert choose_threads(big, cores=16, jobs=3) == 5  # floor(16 / 3)
    assert choose_threads(big, cores=2, jobs=2, busy=_never) == 1
    assert choose_threads(big, cores=2, jobs=8) == 1  # never zero


@pytest.mark.parametrize(
    ("busy", "expected"),
    [(0.0, 2), (0.2, 2), (0.3, 1), (1.0, 1), (1.9, 1), (2.0, 1)],
)
def test_cores_other_processes_use_are_not_counted(busy, expected):
    """A core is free when others use under BUSY_SHARE (0.25) of it."""
    assert choose_threads(1000 * PER_THREAD, cores=2, busy=busy) == expected


def test_busy_cores_lower_a_large_share():
    assert choose_threads(1000 * PER_THREAD, cores=16, busy=3.0) == 13
    assert choose_threads(1000 * PER_THREAD, cores=16, jobs=2, busy=lambda: 10.0) == 6
    assert choose_threads(3 * PER_THREAD, cores=16, busy=lambda: 10.0) == 3  # the work is the smaller cap


def test_setting_rule():
    assert threads.check_setting("auto") is None and threads.check_setting(3) is None
    for bad in (0, -1, True, 1.5, "all", None):
        assert threads.check_setting(bad) is not None
    assert make_rc(["trainer.num_threads=4"]).trainer.num_threads == 4
    assert make_rc([]).trainer.num_threads == "auto"
    with pytest.raises(ConfigError, match=r"trainer\.num_threads"):
        make_rc(["trainer.num_threads=0"])
    with pytest.raises(ConfigError, match="'auto' or a whole number"):
        make_rc(["trainer.num_threads=many"])


# -- what the machine offers --------------------------------------------------------------------
def test_omp_num_threads_caps_the_cores(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    uncapped = threads.cpu_cores()
    assert uncapped >= 1
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert threads.cpu_cores() == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "")  # empty / unparsable: no cap
    assert threads.cpu_cores() == uncapped


def test_torchrun_local_ranks_count_as_jobs(monkeypatch):
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    monkeypatch.delenv("TORCHPRAC_PARALLEL_JOBS", raising=False)
    assert threads.concurrent_jobs() == 1
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")
    assert threads.concurrent_jobs() == 4


def test_process_pool_launcher_jobs_count(monkeypatch):
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    monkeypatch.setenv("TORCHPRAC_PARALLEL_JOBS", "3")
    assert threads.concurrent_jobs() == 3


@pytest.mark.parametrize(("n_jobs", "expected"), [(2, 2), (-1, "cpus"), (-2, "cpus-1")])
def test_joblib_sweep_jobs_count(monkeypatch, n_jobs, expected):
    """hydra.launcher.n_jobs of the joblib launcher, read from Hydra's config in the job;
    negative values follow joblib (n_cpus + 1 + n_jobs)."""
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf

    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    monkeypatch.delenv("TORCHPRAC_PARALLEL_JOBS", raising=False)
    monkeypatch.setattr(threads.os, "cpu_count", lambda: 8)
    launcher = {"_target_": "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher", "n_jobs": n_jobs}
    monkeypatch.setattr(HydraConfig, "initialized", staticmethod(lambda: True))
    monkeypatch.setattr(HydraConfig, "get", staticmethod(lambda: OmegaConf.create({"launcher": launcher})))
    assert threads.concurrent_jobs() == {"cpus": 8, "cpus-1": 7}.get(expected, expected)
    basic = {"_target_": "hydra._internal.core_plugins.basic_launcher.BasicLauncher"}
    monkeypatch.setattr(HydraConfig, "get", staticmethod(lambda: OmegaConf.create({"launcher": basic})))
    assert threads.concurrent_jobs() == 1  # the basic launcher runs one job at a time


def test_busy_cores_excludes_this_process(monkeypatch):
    """Machine-wide busy time minus this process's own CPU time over the sample."""
    samples = iter([(100.0, 1000.0), (100.0 + 150.0, 1000.0 + 200.0)])  # 75% of 2 CPUs busy
    monkeypatch.setattr(threads, "_cpu_times", lambda: next(samples))
    monkeypatch.setattr(threads.os, "cpu_count", lambda: 2)
    clock = iter([0.0, 1.0])
    own = iter([0.0, 0.5])  # this process used half a core
    monkeypatch.setattr(threads.time, "perf_counter", lambda: next(clock))
    monkeypatch.setattr(threads.time, "process_time", lambda: next(own))
    monkeypatch.setattr(threads.time, "sleep", lambda s: None)
    assert threads.busy_cores(1.0) == pytest.approx(1.5 - 0.5)


def test_busy_cores_without_proc_stat(monkeypatch):
    monkeypatch.setattr(threads, "_cpu_times", lambda: None)
    assert threads.busy_cores(0.0) == 0.0


# -- the work of a step --------------------------------------------------------------------------
def test_train_flops_per_batch_is_three_forwards():
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10))
    macs = 64 * 128 + 128 * 64 + 64 * 10
    assert threads.train_flops_per_batch(mlp, (1, 8, 8), 64) == 3 * 2 * macs * 64
    cnn = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.Flatten(), nn.Linear(4 * 8 * 8, 10))
    assert threads.train_flops_per_batch(cnn, (1, 8, 8), 1) == 3 * 2 * (8 * 8 * 4 * 9 + 256 * 10)
    mlp.train()
    threads.train_flops_per_batch(mlp, (1, 8, 8), 2)
    assert mlp.training  # mode restored


def test_resolve_fixed_and_auto(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "16")
    monkeypatch.setattr(threads.os, "sched_getaffinity", lambda pid: set(range(16)), raising=False)
    monkeypatch.setattr(threads, "concurrent_jobs", lambda: 1)
    monkeypatch.setattr(threads, "busy_cores", lambda **kw: 0.0)
    cpu = torch.device("cpu")
    small = nn.Linear(8, 2)
    assert threads.resolve(3, small, (8,), 32, cpu).num_threads == 3
    c = threads.resolve("auto", small, (8,), 32, cpu)
    assert c.num_threads == 1 and c.flops_per_batch == 3 * 2 * 8 * 2 * 32 and "MFLOP" in c.reason
    wide = nn.Linear(1000, 1000)  # 6 GFLOP per step at batch 1000
    c = threads.resolve("auto", wide, (1000,), 1000, cpu)
    assert c.num_threads == 16 and c.to_dict()["cores"] == 16 and c.to_dict()["busy_cores"] == 0.0


def test_run_records_the_choice_and_restores_threads(tmp_path):
    before = torch.get_num_threads()
    _, m = run_cfg(["trainer.epochs=1", "trainer.num_threads=1", "trainer.checkpoint=false"], tmp_path / "r")
    assert m["threads"] == {"num_threads": 1, "setting": "1", "reason": "set by trainer.num_threads"}
    assert 0 < m["timing"]["fit_s"] <= m["timing"]["total_s"]
    assert torch.get_num_threads() == before
