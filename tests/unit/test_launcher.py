"""The sweep launcher behind `hydra/launcher=joblib|process_pool` (the killed-worker case is
an end-to-end test: tests/e2e/test_reliability.py)."""

import pytest
from conftest import ROOT
from omegaconf import OmegaConf

from hydra_plugins.torchprac_launcher.process_pool import (
    JOBLIB_DEFAULTS,
    ProcessPoolLauncher,
    n_workers,
    option_problem,
)


@pytest.mark.parametrize(("n_jobs", "cpus", "expected"), [(2, 8, 2), (-1, 8, 8), (-2, 8, 7), (-20, 8, 1), (1, 1, 1)])
def test_n_jobs_follows_joblib(n_jobs, cpus, expected):
    assert n_workers(n_jobs, cpus) == expected


def test_zero_jobs_is_refused_with_the_allowed_values():
    with pytest.raises(ValueError, match="n_jobs=0.*-1"):
        n_workers(0, 4)


@pytest.mark.parametrize(
    ("key", "value", "ok"),
    [
        ("n_jobs", 2, True),
        ("n_jobs", -1, True),
        ("n_jobs", 0, False),
        ("n_jobs", 1.5, False),
        ("n_jobs", True, False),
        ("timeout", None, True),
        ("timeout", 2.5, True),
        ("timeout", 0, False),
        ("timeout", "abc", False),
        ("prefer", "processes", True),  # joblib's default: accepted, unused
        ("prefer", "threads", False),
        ("nope", 1, False),
    ],
)
def test_option_problem_names_the_key_the_value_and_the_allowed_keys(key, value, ok):
    problem = option_problem(key, value)
    assert (problem is None) == ok
    if not ok:
        assert problem.startswith(f"hydra.launcher.{key}={value!r}") and "n_jobs" in problem and "timeout" in problem


def test_joblib_defaults_are_accepted_and_a_changed_joblib_key_is_refused():
    launcher = ProcessPoolLauncher(n_jobs=2, timeout=None, **JOBLIB_DEFAULTS)
    assert (launcher.n_jobs, launcher.timeout) == (2, None)
    with pytest.raises(ValueError, match=r"hydra\.launcher\.backend='threading'.*n_jobs.*timeout"):
        ProcessPoolLauncher(n_jobs=2, **{**JOBLIB_DEFAULTS, "backend": "threading"})


def test_the_joblib_choice_points_at_this_launcher():
    cfg = OmegaConf.load(ROOT / "conf" / "hydra" / "launcher" / "joblib.yaml")
    assert cfg._target_ == "hydra_plugins.torchprac_launcher.process_pool.ProcessPoolLauncher"
    assert cfg.n_jobs == -1  # joblib's default: one worker per CPU
