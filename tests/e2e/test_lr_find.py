"""mode=lr_find and trainer.lr_find=true as a user runs them: the outputs, training from the
same initial weights with the recommended lr, bad input, and DDP (rank 0 decides)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.distributed as dist
from conftest import FAST, ROOT, events, make_cfg, run_cfg, run_cli
from tensorboard.plugins.hparams import plugin_data_pb2

from torchprac.entry import main
from torchprac.train.checkpoint import load_checkpoint
from torchprac.tune.lr_find import lr_schedule, smooth

# digits, a small MLP: a test of ~30 steps takes a second.
SMALL = ["model.hidden=[32]", "trainer.health.enabled=false", "lr_find.steps=40", "lr_find.min_lr=1e-4"]


def test_mode_lr_find_writes_the_curve_the_figure_and_the_suggestions(tmp_path):
    r = run_cli([*FAST, *SMALL, "mode=lr_find", f"hydra.run.dir={tmp_path}"])
    assert r.returncode == 0, r.stderr[-3000:]
    found = json.loads((tmp_path / "lr_find.json").read_text())
    curve = found["curve"]
    n = found["steps_run"]
    assert len(curve) == n and 10 < n <= 40
    lrs = np.array([p["lr"] for p in curve])
    assert lrs == pytest.approx(lr_schedule(1e-4, 10.0, 40)[:n], rel=1e-12)  # every (lr, loss, smoothed loss)
    smoothed = smooth([p["loss"] for p in curve], found["settings"]["beta"])
    assert [p["smoothed_loss"] for p in curve] == pytest.approx(smoothed.tolist(), rel=1e-12)
    assert set(found["suggestions"]) == {"steepest", "valley", "minimum/10"}
    rec = found["suggestions"][found["recommended"]]
    assert found["lr"] == rec["lr"] and found["reason"]
    if found["stop"] == "diverged":  # stopped at the first step whose smoothed loss passed 4x its minimum
        assert smoothed[-1] > 4 * smoothed.min() and np.all(smoothed[:-1] <= 4 * np.minimum.accumulate(smoothed[:-1]))
    # the printed summary says the same
    out = r.stdout + r.stderr
    assert f"recommended: {found['recommended']} lr {found['lr']:.3g}" in out
    png = (tmp_path / "figures" / "lr_find.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    ea = events(tmp_path)
    assert [e.value for e in ea.Scalars("lr_find/lr")] == pytest.approx(lrs.tolist(), rel=1e-6)
    assert len(ea.Scalars("lr_find/smoothed_loss")) == n and "lr_find" in ea.Tags()["images"]
    assert not (tmp_path / "metrics.json").exists() and not (tmp_path / "checkpoints").exists()  # no training


def _hparam_lr(run_dir) -> float:
    content = events(run_dir).PluginTagToContent("hparams")
    start = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"])
    return start.session_start_info.hparams["lr"].number_value


def test_trainer_lr_find_trains_from_the_same_weights_with_the_recommended_lr(tmp_path):
    """The test runs first and leaves weights, batch-norm statistics and every random state as
    they were: the run is then bit for bit the run without it at the recommended lr."""
    common = [
        *SMALL,
        "model.batch_norm=before",
        "reg=[dropout]",  # draws from the global RNG: it must be restored too
        "trainer.epochs=2",
        "trainer.early_stopping.enabled=false",
        "trainer.device=cpu",
    ]
    _, with_test = run_cfg([*common, "trainer.lr_find=true"], tmp_path / "a")
    found = json.loads((tmp_path / "a" / "lr_find.json").read_text())
    lr = found["lr"]
    assert lr is not None and with_test["lr_find"]["lr"] == lr and with_test["lr_find"]["recommended"]
    assert with_test["lr_find"]["configured_lr"] == 0.05 != lr
    state = load_checkpoint(tmp_path / "a" / "checkpoints" / "last.pt")
    assert [g["lr"] for g in state["optimizer"]["param_groups"]] == [lr, lr]  # read back from the optimizer
    assert _hparam_lr(tmp_path / "a") == pytest.approx(lr, rel=1e-12)  # the HParams row: the lr used

    _, plain = run_cfg([*common, f"optimizer.lr={lr!r}"], tmp_path / "b")
    assert with_test["metrics"] == plain["metrics"]  # bit-identical training
    b = load_checkpoint(tmp_path / "b" / "checkpoints" / "last.pt")
    assert all(torch.equal(state["model"][k], b["model"][k]) for k in b["model"])


BAD = [
    (["mode=lr_find", "lr_find.min_lr=0"], "lr_find.min_lr", "a number > 0"),
    (["mode=lr_find", "lr_find.max_lr=-1"], "lr_find.max_lr", "a number > 0"),
    (["mode=lr_find", "lr_find.min_lr=1", "lr_find.max_lr=0.1"], "lr_find.max_lr", "> lr_find.min_lr=1"),
    (["mode=lr_find", "lr_find.min_lr=0.1", "lr_find.max_lr=0.1"], "lr_find.max_lr", "> lr_find.min_lr"),
    (["mode=lr_find", "lr_find.steps=5"], "lr_find.steps", "an integer >= 10"),
    (["mode=lr_find", "lr_find.diverge_factor=1"], "lr_find.diverge_factor", "a number > 1"),
    (["mode=lr_find", "lr_find.beta=1"], "lr_find.beta", "< 1"),
    (["mode=lr_find", "lr_find.eval=test"], "lr_find.eval", "'dev'"),
    (["mode=lr_find", "optimizer=gd"], "optimizer", "one full-batch step per epoch"),
    (["trainer.lr_find=true", "optimizer=gd"], "optimizer", "optimizer=sgd"),
    (["mode=find_lr"], "mode", "'lr_find'"),
]


@pytest.mark.parametrize("overrides,key,says", BAD, ids=[" ".join(b[0]) for b in BAD])
def test_bad_input_is_one_paragraph(overrides, key, says, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(make_cfg(overrides, tmp_path))
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: Invalid config: {key}=") and says in err, err
    assert "Traceback" not in err and err.count("\n") == 1, err
    assert not list(tmp_path.iterdir())  # refused before anything was written


@pytest.mark.slow
@pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(), reason="needs torch.distributed with gloo")
def test_ddp_two_ranks_find_and_use_the_lr_of_one_process_with_the_global_batch(tmp_path):
    """2 ranks x batch 16 see the global batches of 1 process x batch 32: the same curve (up to
    the order of the gradient sums), the same lr on every rank (or their weights would part and
    the results differ)."""
    common = [*FAST, *SMALL, "optimizer=momentum", "trainer.epochs=1", "trainer.device=cpu", "lr_find.min_lr=1e-3"]
    env = {**os.environ, "HYDRA_FULL_ERROR": "0", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(ROOT / "train.py")]
    ddp_dir = tmp_path / "ddp"
    proc = subprocess.run(
        [*cmd, *common, "trainer.lr_find=true", "trainer.batch_size=16", f"hydra.run.dir={ddp_dir}"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    _, one = run_cfg([*common, "trainer.lr_find=true", "trainer.batch_size=32"], tmp_path / "one")
    a = json.loads((ddp_dir / "lr_find.json").read_text())
    b = json.loads((tmp_path / "one" / "lr_find.json").read_text())
    assert len(a["curve"]) == len(b["curve"])
    assert [p["loss"] for p in a["curve"]] == pytest.approx([p["loss"] for p in b["curve"]], rel=1e-4)
    assert a["lr"] == pytest.approx(b["lr"], rel=1e-12)
    m = json.loads((ddp_dir / "metrics.json").read_text())
    assert m["lr_find"]["lr"] == a["lr"]
    for split in ("train", "dev"):
        assert m["metrics"][split]["loss"] == pytest.approx(one["metrics"][split]["loss"], rel=1e-3)


def test_a_resumed_run_reuses_its_lr_find_json(tmp_path, caplog):
    """Resuming must not test again from the checkpoint's trained weights: the run's own
    lr_find.json gives the lr (the optimizer state in the checkpoint holds it already)."""
    common = [*SMALL, "trainer.epochs=3", "trainer.lr_find=true", "trainer.early_stopping.enabled=false"]
    _, first = run_cfg(common, tmp_path)
    (tmp_path / "metrics.json").unlink()  # as if killed during epoch 3
    (tmp_path / "checkpoints" / "prev.pt").replace(tmp_path / "checkpoints" / "last.pt")
    with caplog.at_level("INFO", logger="torchprac"):
        _, resumed = run_cfg([*common, "trainer.resume=auto"], tmp_path)
    assert "reusing" in caplog.text and "lr range test: 40 steps" not in caplog.text
    assert resumed["lr_find"] == first["lr_find"] and resumed["metrics"] == first["metrics"]
