"""config.RunConfig.from_cfg: the one reader of the Hydra tree, giving the plain objects the
stages use; the defaults of conf/ come through as the YAML says."""

from __future__ import annotations

import torch
from conftest import make_cfg, make_rc

from torchprac.config import RunConfig
from torchprac.reg import Regularizers


def test_trainer_default_keys():
    rc = make_rc([])
    assert rc.trainer.device == "auto" and rc.trainer.early_stopping.restore_best is True
    assert rc.init.func is torch.nn.init.kaiming_normal_  # init=he_normal


def test_defaults_become_plain_objects():
    rc = make_rc([], run_dir="/tmp/some_run")
    assert rc.mode == "train" and str(rc.run_dir) == "/tmp/some_run"
    assert rc.choices == {
        "data": "digits",
        "model": "mlp",
        "init": "he_normal",
        "activation": "relu",
        "optimizer": "nesterov",
        "scheduler": "none",
        "clip": "none",
    }
    assert (rc.model.name, rc.model.hidden, rc.model.batch_norm) == ("mlp", [128, 64], "none")
    assert rc.optimizer.cls is torch.optim.SGD and rc.optimizer.kwargs["nesterov"] is True
    assert rc.optimizer.lr == 0.05 and rc.optimizer.momentum == 0.9
    assert isinstance(rc.activation(), torch.nn.ReLU)
    assert rc.schedule.name == "none" and rc.schedule.build(None, 10, 0.05) is None
    assert rc.clip.kind == "none" and rc.clip.threshold == 0.0
    assert isinstance(rc.reg, Regularizers) and rc.reg.names == []
    assert rc.trainer.objective_metric.tag == "metric/accuracy_dev"
    assert (rc.diagnosis.bias_threshold, rc.diagnosis.variance_threshold) == (0.05, 0.05)
    assert rc.transfer.pretrained is None and rc.transfer.freeze_epochs == 0
    assert rc.raw["trainer"]["epochs"] == 30 and "optimizer:" in rc.yaml


def test_precision_32_typed_as_a_number_is_accepted():
    assert RunConfig.from_cfg(make_cfg(["trainer.precision=32"], "/tmp/unused")).trainer.precision == "32"


def test_reg_list_becomes_regularizers_by_name():
    rc = make_rc(["reg=[l2,dropout]", "reg.l2.strength=0.01"])
    assert rc.reg.names == ["l2", "dropout"] and "l2" in rc.reg
    assert rc.reg.penalty_strengths() == (0.0, 0.01) and rc.reg.dropout.keep_prob == 0.8


def test_early_stopping_mode_follows_the_monitor():
    assert make_rc(["trainer.early_stopping.monitor=dev/accuracy"]).trainer.early_stopping.mode == "max"
    assert make_rc([]).trainer.early_stopping.mode == "min"


def test_a_sweep_s_overrides_are_read_once_and_again_when_the_file_changes(tmp_path, monkeypatch):
    from omegaconf import OmegaConf

    from torchprac import config

    path = tmp_path / "multirun.yaml"
    OmegaConf.save(OmegaConf.create({"hydra": {"overrides": {"task": ["trainer.seed=0,1"]}}}), path)
    loads, real = [], OmegaConf.load
    monkeypatch.setattr(OmegaConf, "load", lambda p: loads.append(p) or real(p))
    first = config._sweep_overrides(str(path), config._stamp(path))
    assert config._sweep_overrides(str(path), config._stamp(path)) == first == ("trainer.seed=0,1",)
    assert len(loads) == 1  # the other jobs of the sweep reuse it
    OmegaConf.save(OmegaConf.create({"hydra": {"overrides": {"task": ["trainer.seed=0,1,2"]}}}), path)
    assert config._sweep_overrides(str(path), config._stamp(path)) == ("trainer.seed=0,1,2",)
    assert len(loads) == 2
