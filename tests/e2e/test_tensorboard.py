"""What a run writes to TensorBoard, read back with tensorboard's own EventAccumulator."""

from __future__ import annotations

import pytest
from conftest import HPARAM_KEYS, OTHER_CHOICES, events, run_cfg
from tensorboard.plugins.hparams import plugin_data_pb2

FAST_RUN = ["model.hidden=[32,16]", "trainer.epochs=2", "trainer.checkpoint.enabled=false"]


def _hparams(ea) -> tuple[dict, list[str]]:
    content = ea.PluginTagToContent("hparams")
    start = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"])
    exp = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/experiment"])
    return dict(start.session_start_info.hparams), [m.name.tag for m in exp.experiment.metric_infos]


def test_event_file_has_the_tags(tmp_path):
    run_cfg(["trainer.epochs=2", "trainer.histograms=true", "trainer.log_every_n_steps=5"], tmp_path)
    ea = events(tmp_path)
    tags = ea.Tags()
    for t in ("loss/train", "loss/dev", "metric/accuracy_train", "metric/accuracy_dev", "lr/weights", "lr/no_decay"):
        assert t in tags["scalars"], t
    assert "weights/layer1.linear.weight" in tags["histograms"]
    assert "grads/head.weight" in tags["histograms"]
    assert len(ea.Histograms("weights/head.weight")) == 2  # one per epoch end
    assert any(t.startswith("config") for t in tags["tensors"])  # add_text -> tensors
    assert len(ea.Scalars("loss/dev")) == 2
    assert abs(ea.Scalars("lr/weights")[0].value - 0.05) < 1e-7  # the nesterov default
    # everything in the run's own event file: no timestamped sub-run for hparams
    assert [p.parent for p in tmp_path.rglob("events.out.tfevents.*")] == [tmp_path]


def test_hparams_same_flat_keys_across_different_groups(tmp_path):
    run_cfg(["trainer.epochs=1"], tmp_path / "a")
    run_cfg(["trainer.epochs=1", *OTHER_CHOICES], tmp_path / "b")
    (ha, ma), (hb, mb) = _hparams(events(tmp_path / "a")), _hparams(events(tmp_path / "b"))
    assert set(ha) == set(hb) and ma == mb
    assert HPARAM_KEYS <= set(ha)
    assert ha["l2"].number_value == 0 and hb["l2"].number_value == 1e-3  # 0 when off
    assert ha["optimizer"].string_value == "nesterov" and hb["optimizer"].string_value == "adam"
    assert hb["keep_prob"].number_value == 0.8 and ha["keep_prob"].number_value == 1.0
    assert "hparam/dev_accuracy" in ma
    dev_acc = events(tmp_path / "a").Scalars("hparam/dev_accuracy")
    assert len(dev_acc) == 1 and 0 < dev_acc[0].value <= 1


@pytest.mark.parametrize("clip", ["none", "value", "norm"])
def test_preclip_norm_logged_for_every_clip_kind(tmp_path, clip):
    run_cfg([f"clip={clip}", "trainer.epochs=1", "trainer.log_every_n_steps=5", "data=moons"], tmp_path)
    ea = events(tmp_path)
    norms = [e.value for e in ea.Scalars("grad_norm/global_preclip")]
    assert norms and all(n > 0 for n in norms)
    assert ("clip/fired_fraction" in ea.Tags()["scalars"]) == (clip != "none")


def test_penalty_tags_in_tensorboard(tmp_path):
    lam = 1e-3
    run_cfg(["reg=[l2]", f"reg.l2.strength={lam}", "trainer.log_every_n_steps=5", *FAST_RUN], tmp_path)
    ea = events(tmp_path)
    tags = set(ea.Tags()["scalars"])
    assert {"loss/data", "loss/penalty", "loss/total", "loss/train"} <= tags
    data, pen, total, train = (
        [e.value for e in ea.Scalars(t)] for t in ("loss/data", "loss/penalty", "loss/total", "loss/train")
    )
    assert len(pen) >= 4 and all(p > 0 for p in pen)
    for d, p, t, tr in zip(data, pen, total, train):
        assert t == pytest.approx(d + p, rel=1e-6)
        assert tr == d  # loss/train stays the data loss
    # the penalty is (lambda/2) sum ||W||^2: for he_normal weights about lambda/2 * (sum of fan_out * 2)
    assert 0.1 * lam < pen[0] < 100 * lam


def test_no_penalty_tags_without_a_penalty(tmp_path):
    run_cfg(["reg=[dropout]", *FAST_RUN], tmp_path)
    assert "loss/penalty" not in events(tmp_path).Tags()["scalars"]
