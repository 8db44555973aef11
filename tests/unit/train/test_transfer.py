"""Transfer learning, the training side: the transfer section's settings and the callback that
freezes the reused layers (parameters and batch-norm statistics), then unfreezes them with a
lower learning rate."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from conftest import CPU, TRANSFER_NET, make_model, make_optimization, make_rc, make_trainer
from torch import nn

from torchprac.data import build_data
from torchprac.errors import ConfigError
from torchprac.files import load_checkpoint
from torchprac.nn.transfer import load_pretrained
from torchprac.train import Callback
from torchprac.train.transfer import TransferCallback, TransferSettings


class _Snapshots(Callback):
    def __init__(self) -> None:
        self.states: list[dict[str, torch.Tensor]] = []
        self.lrs: list[float] = []

    def on_epoch_end(self, trainer, logs) -> None:
        self.states.append({k: v.detach().clone() for k, v in trainer.model.state_dict().items()})
        self.lrs.append(trainer.optim.optimizer.param_groups[0]["lr"])


def test_frozen_during_frozen_epochs_then_trained(source_run):
    ov = ["data.classes=[8,9]", *TRANSFER_NET, "optimizer=adam", f"model.pretrained={source_run}"]
    rc = make_rc(ov)
    splits = build_data(rc.data, 0, CPU)
    _, model = make_model(ov, splits.input_shape, splits.num_classes)
    reused = load_pretrained(model, source_run)
    a = load_checkpoint(source_run / "checkpoints" / "best.pt")["model"]
    head0 = model.head.weight.detach().clone()
    optim = make_optimization(rc, model)
    snaps = _Snapshots()
    cb = TransferCallback(model, reused, freeze_epochs=2, unfreeze_lr_factor=0.1)
    make_trainer(model, optim, splits.train, splits.dev, epochs=4, batch_size=32, callbacks=[cb, snaps]).fit()
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


def _stub_trainer(model: nn.Module, epoch: int) -> SimpleNamespace:
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    return SimpleNamespace(epoch=epoch, global_step=0, optim=SimpleNamespace(optimizer=opt), callbacks=[])


def test_bn_frozen_layers_in_eval_mode_only_while_frozen():
    model = nn.Sequential()
    model.add_module("layer1", nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4)))
    model.add_module("head", nn.Linear(4, 2))
    cb = TransferCallback(model, ["layer1"], freeze_epochs=1)
    cb.on_fit_start(_stub_trainer(model, epoch=0))  # freezes
    assert cb.frozen and not any(p.requires_grad for p in model.layer1.parameters())
    assert model.head.weight.requires_grad
    model.train()
    before = model.layer1[1].running_mean.clone()
    model(torch.randn(8, 3) + 5)
    assert torch.equal(model.layer1[1].running_mean, before)
    cb.on_epoch_end(_stub_trainer(model, epoch=1), {})  # freeze_epochs reached: unfreezes
    assert not cb.frozen and all(p.requires_grad for p in model.parameters())
    model.train()
    model(torch.randn(8, 3) + 5)
    assert not torch.equal(model.layer1[1].running_mean, before)


def test_a_resumed_run_past_the_frozen_phase_stays_unfrozen():
    model = nn.Sequential()
    model.add_module("layer1", nn.Linear(3, 4))
    model.add_module("head", nn.Linear(4, 2))
    cb = TransferCallback(model, ["layer1"], freeze_epochs=2)
    cb.on_fit_start(_stub_trainer(model, epoch=2))
    assert not cb.frozen and model.layer1.weight.requires_grad


def test_settings_refuse_what_would_be_ignored():
    with pytest.raises(ConfigError) as e:
        TransferSettings(freeze_epochs=2).check(epochs=5)
    assert e.value.key == "transfer.freeze_epochs" and "model.pretrained" in e.value.allowed
    with pytest.raises(ConfigError, match="at most trainer.epochs"):
        TransferSettings(pretrained="x", freeze_epochs=6).check(epochs=5)
    TransferSettings(pretrained="x", freeze_epochs=5).check(epochs=5)
    assert TransferSettings().apply(nn.Linear(2, 2)) is None  # nothing to reuse: no callback
