"""Bad input found by the audit: each is a clear message (exit 2), never a traceback."""

from __future__ import annotations

import os

import pytest
import torch
from conftest import make_cfg

from torchprac.errors import CheckpointError
from torchprac.optim.constraints import MaxNorm
from torchprac.run import main
from torchprac.train.checkpoint import load_checkpoint, save_atomic
from torchprac.validate import validate


def test_precision_32_typed_as_a_number_is_accepted(tmp_path):
    validate(make_cfg(["trainer.precision=32"], tmp_path))


@pytest.mark.parametrize(
    "overrides,key",
    [
        (["model=cnn", "data=moons"], "model"),
        (["model=cnn", "model.channels=[8,8,8,8,8]"], "model.channels"),
        (["scheduler=plateau", "scheduler.mode=max"], "scheduler.mode"),
        (["scheduler=plateau", "scheduler.monitor=dev/f1"], "scheduler.monitor"),
        (["diagnosis.bias_threshold=abc"], "diagnosis.bias_threshold"),
    ],
)
def test_clear_message_no_traceback(overrides, key, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(make_cfg(overrides + ["trainer.epochs=1"], tmp_path))
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert key in err and "Traceback" not in err
    assert not (tmp_path / "metrics.json").exists()


def test_run_dir_that_is_a_file(tmp_path, capsys):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(SystemExit):
        main(make_cfg([], f))
    assert "paths.run_dir" in capsys.readouterr().err and f.read_text() == "x"


@pytest.mark.parametrize("content", [b"just some text\n", os.urandom(4096)])
def test_non_torch_files_are_called_corrupt_not_code(tmp_path, content):
    path = tmp_path / "x.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match="corrupt") as e:
        load_checkpoint(path)
    assert "code" not in str(e.value)


def test_pickled_callable_is_still_refused(tmp_path):
    path = tmp_path / "evil.pt"
    save_atomic({"model": {}, "hook": os.system}, path)
    with pytest.raises(CheckpointError, match="refused"):
        load_checkpoint(path)


def test_max_norm_leaves_frozen_weights_alone():
    frozen, live = torch.full((3, 4), 5.0), torch.full((3, 4), 5.0, requires_grad=True)
    frozen.requires_grad_(False)
    MaxNorm([frozen, live], r=1.0)()
    assert torch.equal(frozen, torch.full((3, 4), 5.0))
    assert torch.allclose(live.detach().norm(dim=1), torch.ones(3), atol=1e-5)


@pytest.mark.parametrize(
    "overrides,key",
    [
        (["activation=leaky_relu", "activation.negative_slope=abc"], "activation.negative_slope"),
        (["activation=elu", "activation.alpha=abc"], "activation.alpha"),
        (["scheduler=warmup_cosine", "scheduler.start_factor=0"], "scheduler.start_factor"),
        (["scheduler=cosine", "scheduler.T_max=abc"], "scheduler.T_max"),
        (["init.nonlinearity=foo"], "init.nonlinearity"),
        (["trainer.early_stopping.monitor=dev/accuracy", "trainer.early_stopping.mode=min"], "early_stopping.mode"),
    ],
)
def test_group_parameters_are_validated(overrides, key, tmp_path):
    from torchprac.errors import ConfigError

    with pytest.raises(ConfigError, match=key):
        validate(make_cfg(overrides, tmp_path))
