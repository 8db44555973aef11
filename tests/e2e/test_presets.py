"""Every preset under conf/experiment runs for one epoch; the Fashion-MNIST transfer presets
only where ../shared/data is present (on a subset)."""

from __future__ import annotations

import pytest
from conftest import CONF, make_cfg, make_rc, run_cfg

TRANSFER = ("transfer_a", "transfer_b_on_a", "transfer_b_scratch")
SHARED_ONLY = ("gallery_schedules",)  # Fashion-MNIST: run by tests/e2e/test_gallery.py where ../shared/data has it
PRESETS = sorted(p.stem for p in (CONF / "experiment").glob("*.yaml") if p.stem not in TRANSFER + SHARED_ONLY)
ONE_EPOCH = ["trainer.epochs=1", "trainer.checkpoint.enabled=false"]


@pytest.mark.parametrize("preset", PRESETS)
def test_preset_runs_one_epoch(preset, tmp_path):
    _, m = run_cfg([f"experiment={preset}", *ONE_EPOCH], tmp_path)
    assert m["status"] in ("completed", "early_stopped")
    assert m["epochs_run"] == 1 and "diagnosis" in m
    warnings = " ".join(m.get("health", {}).get("warnings", []))
    if preset == "vanishing_sigmoid":
        assert "vanishing gradients" in warnings
    if preset == "init_zeros":
        assert "no gradient" in warnings  # symmetric zero weights: nothing but biases learns
    if preset in ("init_he", "default_dnn", "self_normalizing"):
        assert warnings == ""


def test_preset_contents():
    """The presets choose what their names promise (composed, not run)."""
    c = make_cfg(["experiment=default_dnn"])
    assert (c.init.name, c.activation.name, c.scheduler.name, c.trainer.early_stopping.enabled) == (
        "he_normal",
        "elu",
        "onecycle",
        True,
    ) and c.optimizer.name in ("nesterov", "adam")
    c = make_cfg(["experiment=self_normalizing"])
    assert (c.activation.name, c.init.name, c.model.batch_norm, c.data.normalize, list(c.reg)) == (
        "selu",
        "lecun_normal",
        "none",
        True,
        ["alpha_dropout"],
    )
    c = make_cfg(["experiment=vanishing_sigmoid"])
    assert c.activation.name == "sigmoid" and c.init.name == "normal" and c.init.std <= 0.01
    assert len(c.model.hidden) >= 6
    for name, init in (("init_zeros", "zeros"), ("init_he", "he_normal")):
        c = make_cfg([f"experiment={name}"])
        assert (c.data.name, c.init.name) == ("circles", init)
    a, b, s = (make_cfg([f"experiment={n}"]) for n in TRANSFER)
    assert list(a.data.classes) == [0, 1, 2, 3, 4, 7, 8, 9]
    assert list(b.data.classes) == [5, 6] and b.data.train_subset == 200 and b.model.pretrained
    assert list(s.data.classes) == [5, 6] and s.data.train_subset == 200 and s.model.pretrained is None
    assert list(a.model.hidden) == list(b.model.hidden) == list(s.model.hidden)


@pytest.mark.parametrize("preset", PRESETS + ["transfer_a", "transfer_b_scratch", *SHARED_ONLY])
def test_every_preset_passes_the_config_checks(preset):
    """What a user types: `python train.py experiment=<preset>` is a valid config (transfer_b_on_a
    needs model A's run dir, so it is checked by the run below)."""
    rc = make_rc([f"experiment={preset}"])
    assert rc.mode == "train"


@pytest.mark.slow
def test_transfer_presets_run_on_fashion_mnist(shared_data, tmp_path):
    root = f"data.root={shared_data}"
    a_dir = tmp_path / "a"
    _, a = run_cfg(
        ["experiment=transfer_a", root, "data.train_subset=2000", "trainer.epochs=1", "trainer.histograms=false"], a_dir
    )
    assert a["status"] == "completed" and (a_dir / "checkpoints" / "best.pt").is_file()
    # one epoch: the preset's 4 frozen epochs would outlast the run (refused), so 1 here
    b_on_a = [f"model.pretrained={a_dir}", "transfer.freeze_epochs=1"]
    for preset, extra in (("transfer_b_on_a", b_on_a), ("transfer_b_scratch", [])):
        _, b = run_cfg([f"experiment={preset}", root, *extra, *ONE_EPOCH], tmp_path / preset)
        assert b["status"] == "completed" and b["epochs_run"] == 1
        assert set(b["metrics"]) == {"train", "dev", "test"}
