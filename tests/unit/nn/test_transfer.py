"""Transfer learning, the model side: load_pretrained reuses all but the head (or the first N
stages) of a torchprac checkpoint, and refuses missing, incompatible or unsafe ones clearly."""

from __future__ import annotations

import pytest
import torch
from conftest import CPU, TRANSFER_NET, make_model, make_rc

from torchprac.data import build_data
from torchprac.errors import CheckpointError, ConfigError
from torchprac.files import load_checkpoint
from torchprac.nn.transfer import load_pretrained, resolve_checkpoint, stages


def test_reuses_every_stage_but_the_head_with_bn_statistics(source_run):
    rc = make_rc(["data.classes=[8,9]", *TRANSFER_NET])
    splits = build_data(rc.data, 0, CPU)
    _, model = make_model(["data.classes=[8,9]", *TRANSFER_NET], splits.input_shape, splits.num_classes)
    assert stages(model) == ["layer1", "layer2", "head"]
    reused = load_pretrained(model, source_run)
    assert reused == ["layer1", "layer2"]
    assert model.head.out_features == 2  # the new head has B's class count
    a = load_checkpoint(source_run / "checkpoints" / "best.pt")["model"]
    assert a["head.weight"].shape[0] == 8
    for k, v in model.state_dict().items():  # reused layers (BN statistics included) came from A
        if k.startswith(("layer1.", "layer2.")):
            assert torch.equal(v, a[k]), k
    assert resolve_checkpoint(source_run) == source_run / "checkpoints" / "best.pt"


def test_reuse_layers_keeps_later_layers_fresh(source_run):
    torch.manual_seed(123)
    _, model = make_model(["data.classes=[8,9]", *TRANSFER_NET], (1, 8, 8), 2)
    fresh = model.layer2.linear.weight.detach().clone()
    assert load_pretrained(model, source_run, reuse_layers=1) == ["layer1"]
    assert torch.equal(model.layer2.linear.weight, fresh)
    with pytest.raises(ConfigError, match=r"transfer.reuse_layers"):
        load_pretrained(model, source_run, reuse_layers=3)


def test_missing_checkpoint_is_a_clear_error(tmp_path):
    _, model = make_model(TRANSFER_NET, (1, 8, 8), 2)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_pretrained(model, tmp_path / "nope")
    with pytest.raises(CheckpointError, match="directory without a checkpoint"):
        load_pretrained(model, tmp_path)


def test_incompatible_checkpoint_names_the_tensor(source_run):
    _, model = make_model(["model.hidden=[32,8]", "model.batch_norm=before"], (1, 8, 8), 2)
    with pytest.raises(CheckpointError, match=r"layer1\.linear\.weight.*\(16, 64\).*\(32, 64\)"):
        load_pretrained(model, source_run)
    _, other = make_model(["model.hidden=[16,8]"], (1, 8, 8), 2)  # no batch norm
    with pytest.raises(CheckpointError):
        # A has no bias in layer1 (BN before the activation makes it redundant): a mismatch
        load_pretrained(other, source_run)


class _Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_unsafe_checkpoint_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"model": {"x": torch.zeros(1)}, "extra": _Evil()}, path)
    _, model = make_model(TRANSFER_NET, (1, 8, 8), 2)
    with pytest.raises(CheckpointError, match="weights_only"):
        load_pretrained(model, path)
