"""Transfer learning: reuse all but the head, freeze then unfreeze, clear checkpoint errors."""

from __future__ import annotations

import pytest
import torch
from conftest import make_cfg, run_cfg
from torch import nn

from torchprac.data import build_data
from torchprac.errors import CheckpointError, ConfigError
from torchprac.nn import build_model
from torchprac.nn.transfer import TransferCallback, load_pretrained
from torchprac.optim import build_optim
from torchprac.train import Callback, Trainer
from torchprac.train.checkpoint import load_checkpoint

QUIET = ["trainer.histograms=false", "trainer.health.enabled=false"]
NET = ["model.hidden=[16,8]", "model.batch_norm=before"]  # BN: its running stats must stay frozen too


@pytest.fixture(scope="module")
def source_run(tmp_path_factory):
    """Model A: digits 0-7, two epochs, checkpoints on."""
    d = tmp_path_factory.mktemp("run_a")
    run_cfg(["data.classes=[0,1,2,3,4,5,6,7]", "trainer.epochs=2", *NET, *QUIET], d)
    return d


class _Snapshots(Callback):
    def __init__(self) -> None:
        self.states: list[dict[str, torch.Tensor]] = []
        self.lrs: list[float] = []

    def on_epoch_end(self, trainer, logs) -> None:
        self.states.append({k: v.detach().clone() for k, v in trainer.model.state_dict().items()})
        self.lrs.append(trainer.optim.optimizer.param_groups[0]["lr"])


def test_frozen_during_frozen_epochs_then_trained(source_run):
    cfg = make_cfg(["data.classes=[8,9]", *NET, "optimizer=adam", f"model.pretrained={source_run}"])
    splits = build_data(cfg.data, 0, torch.device("cpu"))
    model = build_model(cfg, splits.input_shape, splits.num_classes)
    reused = load_pretrained(model, source_run)
    assert reused == ["layer1", "layer2"]
    assert model.head.out_features == 2  # the new head has B's class count
    a = load_checkpoint(source_run / "checkpoints" / "best.pt")["model"]
    assert a["head.weight"].shape[0] == 8
    for k, v in model.state_dict().items():  # reused layers (BN statistics included) came from A
        if k.startswith(("layer1.", "layer2.")):
            assert torch.equal(v, a[k]), k
    head0 = model.head.weight.detach().clone()
    optim = build_optim(cfg, model, 10, 4)
    snaps = _Snapshots()
    cb = TransferCallback(model, reused, freeze_epochs=2, unfreeze_lr_factor=0.1)
    Trainer(
        model,
        optim,
        splits.train,
        splits.dev,
        epochs=4,
        batch_size=32,
        callbacks=[cb, snaps],
        progress=False,
        histograms=False,
    ).fit()
    reused_keys = [k for k in a if k.startswith(("layer1.", "layer2.")) and "num_batches" not in k]
    for epoch in (0, 1):  # frozen: parameters and BN running statistics untouched
        for k in reused_keys:
            assert torch.equal(snaps.states[epoch][k], a[k]), (epoch, k)
    assert not torch.equal(snaps.states[0]["head.weight"], head0)  # the new head learns meanwhile
    changed = [k for k in reused_keys if not torch.equal(snaps.states[3][k], a[k])]
    assert "layer1.linear.weight" in changed and "layer2.linear.weight" in changed
    # x0.1 from the unfreeze at the end of epoch 2 on
    assert snaps.lrs == pytest.approx([1e-3, 1e-4, 1e-4, 1e-4])
    assert all(p.requires_grad for p in model.parameters())


def test_run_with_pretrained_end_to_end(source_run, tmp_path):
    _, m = run_cfg(
        [
            "data.classes=[8,9]",
            *NET,
            f"model.pretrained={source_run}",
            "transfer.freeze_epochs=1",
            "trainer.epochs=2",
            *QUIET,
        ],
        tmp_path,
    )
    assert m["status"] == "completed"
    b = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    assert b["num_classes"] == 2 and b["model"]["head.weight"].shape == (2, 8)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    ea = EventAccumulator(str(tmp_path))
    ea.Reload()
    assert [e.value for e in ea.Scalars("transfer/frozen")] == [1.0, 0.0]


def test_reuse_layers_keeps_later_layers_fresh(source_run):
    cfg = make_cfg(["data.classes=[8,9]", *NET])
    torch.manual_seed(123)
    model = build_model(cfg, (1, 8, 8), 2)
    fresh = model.layer2.linear.weight.detach().clone()
    assert load_pretrained(model, source_run, reuse_layers=1) == ["layer1"]
    assert torch.equal(model.layer2.linear.weight, fresh)
    with pytest.raises(ConfigError, match=r"transfer.reuse_layers"):
        load_pretrained(model, source_run, reuse_layers=3)


def test_missing_checkpoint_is_a_clear_error(tmp_path):
    model = build_model(make_cfg(NET), (1, 8, 8), 2)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_pretrained(model, tmp_path / "nope")
    with pytest.raises(CheckpointError, match="directory without a checkpoint"):
        load_pretrained(model, tmp_path)


def test_missing_checkpoint_exits_2_through_main(tmp_path, capsys):
    from torchprac.run import main

    with pytest.raises(SystemExit) as e:
        main(make_cfg([f"model.pretrained={tmp_path / 'nope'}", *QUIET], tmp_path / "run"))
    assert e.value.code == 2
    assert "model.pretrained=" in capsys.readouterr().err


def test_incompatible_checkpoint_names_the_tensor(source_run):
    model = build_model(make_cfg(["model.hidden=[32,8]", "model.batch_norm=before"]), (1, 8, 8), 2)
    with pytest.raises(CheckpointError, match=r"layer1\.linear\.weight.*\(16, 64\).*\(32, 64\)"):
        load_pretrained(model, source_run)
    other = build_model(make_cfg(["model.hidden=[16,8]"]), (1, 8, 8), 2)  # no batch norm
    with pytest.raises(CheckpointError):
        # A has no bias in layer1 (BN before the activation makes it redundant): a mismatch
        load_pretrained(other, source_run)


class _Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_unsafe_checkpoint_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"model": {"x": torch.zeros(1)}, "extra": _Evil()}, path)
    model = build_model(make_cfg(NET), (1, 8, 8), 2)
    with pytest.raises(CheckpointError, match="weights_only"):
        load_pretrained(model, path)


def test_transfer_config_is_validated(tmp_path):
    from torchprac.validate import validate

    for bad, key in (
        ("transfer.freeze_epochs=-1", "transfer.freeze_epochs"),
        ("transfer.unfreeze_lr_factor=0", "transfer.unfreeze_lr_factor"),
        ("transfer.reuse_layers=0", "transfer.reuse_layers"),
        ("mode=bogus", "mode"),
    ):
        with pytest.raises(ConfigError, match=key):
            validate(make_cfg([bad]))


def test_bn_frozen_layers_in_eval_mode_only_while_frozen():
    model = nn.Sequential()
    model.add_module("layer1", nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4)))
    model.add_module("head", nn.Linear(4, 2))
    cb = TransferCallback(model, ["layer1"], freeze_epochs=1)
    cb._set_frozen(True)
    model.train()
    before = model.layer1[1].running_mean.clone()
    model(torch.randn(8, 3) + 5)
    assert torch.equal(model.layer1[1].running_mean, before)
    cb._set_frozen(False)
    model.train()
    model(torch.randn(8, 3) + 5)
    assert not torch.equal(model.layer1[1].running_mean, before)
