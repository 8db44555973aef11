"""Transfer learning end to end: a run with model.pretrained reuses model A's layers, freezes
them for transfer.freeze_epochs and logs when they are unfrozen."""

from __future__ import annotations

from conftest import TRANSFER_NET, TRANSFER_QUIET, run_cfg, scalars

from torchprac.files import load_checkpoint


def test_run_with_pretrained_end_to_end(source_run, tmp_path):
    _, m = run_cfg(
        [
            "data.classes=[8,9]",
            *TRANSFER_NET,
            f"model.pretrained={source_run}",
            "transfer.freeze_epochs=1",
            "trainer.epochs=2",
            *TRANSFER_QUIET,
        ],
        tmp_path,
    )
    assert m["status"] == "completed"
    b = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    assert b["num_classes"] == 2 and b["model"]["head.weight"].shape == (2, 8)
    assert scalars(tmp_path, "transfer/frozen") == [1.0, 0.0]
