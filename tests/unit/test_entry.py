"""The CLI's error handling: a user error is one paragraph and exit status 2; a bug keeps its
traceback (outside a sweep)."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

import torchprac.run
from torchprac.entry import main
from torchprac.errors import ConfigError, DataError


def _raising(exc: Exception):
    def run(cfg):
        raise exc

    return run


@pytest.mark.parametrize("exc", [ConfigError("optimizer.lr", -1, "a number > 0"), DataError("data=x: broken.")])
def test_user_errors_are_one_paragraph_and_exit_2(exc, monkeypatch, capsys):
    monkeypatch.setattr(torchprac.run, "run", _raising(exc))
    with pytest.raises(SystemExit) as e:
        main(OmegaConf.create({}))
    assert e.value.code == 2
    assert capsys.readouterr().err == f"error: {exc}\n"


def test_a_bug_keeps_its_traceback(monkeypatch):
    monkeypatch.setattr(torchprac.run, "run", _raising(RuntimeError("a bug")))
    with pytest.raises(RuntimeError, match="a bug"):
        main(OmegaConf.create({}))


def test_the_objective_is_returned(monkeypatch):
    monkeypatch.setattr(torchprac.run, "run", lambda cfg: 0.75)
    assert main(OmegaConf.create({})) == 0.75
