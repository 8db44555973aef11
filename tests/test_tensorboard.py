"""What lands in TensorBoard, read back with tensorboard's own EventAccumulator."""

from __future__ import annotations

from conftest import run_cfg
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2


def _events(run_dir):
    return EventAccumulator(str(run_dir), size_guidance={"scalars": 0, "histograms": 0, "tensors": 0}).Reload()


def _hparams(ea) -> tuple[dict, list[str]]:
    content = ea.PluginTagToContent("hparams")
    start = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"])
    exp = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/experiment"])
    return dict(start.session_start_info.hparams), [m.name.tag for m in exp.experiment.metric_infos]


def test_event_file_has_the_tags(tmp_path):
    run_cfg(["trainer.epochs=2", "trainer.histograms=true", "trainer.log_every_n_steps=5"], tmp_path)
    ea = _events(tmp_path)
    tags = ea.Tags()
    for t in ("loss/train", "loss/dev", "metric/accuracy_train", "metric/accuracy_dev", "lr/weights", "lr/no_decay"):
        assert t in tags["scalars"], t
    assert "weights/layer1.linear.weight" in tags["histograms"]
    assert "grads/head.weight" in tags["histograms"]
    assert len(ea.Histograms("weights/head.weight")) == 2  # one per epoch end
    assert any(t.startswith("config") for t in tags["tensors"])  # add_text -> tensors
    assert len(ea.Scalars("loss/dev")) == 2
    assert abs(ea.Scalars("lr/weights")[0].value - 0.05) < 1e-7  # the nesterov default
    # everything in the run's own event dir: no timestamped sub-run for hparams
    assert [p.name for p in tmp_path.iterdir() if p.is_dir()] == ["checkpoints"]


def test_hparams_same_flat_keys_across_different_groups(tmp_path):
    run_cfg(["trainer.epochs=1"], tmp_path / "a")
    run_cfg(
        [
            "trainer.epochs=1",
            "optimizer=adam",
            "reg=[l2,dropout]",
            "scheduler=cosine",
            "clip=norm",
            "activation=tanh",
            "init=xavier_normal",
        ],
        tmp_path / "b",
    )
    (ha, ma), (hb, mb) = _hparams(_events(tmp_path / "a")), _hparams(_events(tmp_path / "b"))
    assert set(ha) == set(hb) and ma == mb
    assert {"optimizer", "lr", "batch_size", "init", "activation", "l2", "l1", "keep_prob", "scheduler", "clip"} <= set(
        ha
    )
    assert ha["l2"].number_value == 0 and hb["l2"].number_value == 1e-3  # 0 when off
    assert ha["optimizer"].string_value == "nesterov" and hb["optimizer"].string_value == "adam"
    assert hb["keep_prob"].number_value == 0.8 and ha["keep_prob"].number_value == 1.0
    assert "hparam/dev_accuracy" in ma
    dev_acc = _events(tmp_path / "a").Scalars("hparam/dev_accuracy")
    assert len(dev_acc) == 1 and 0 < dev_acc[0].value <= 1
