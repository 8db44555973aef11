"""torchrun DDP on CPU (gloo): 2 ranks x batch b train exactly like 1 process x batch 2b, in one
run dir, with one train.log and one TensorBoard event file written by rank 0 alone."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter

import pytest
import torch
import torch.distributed as dist
from conftest import FAST, ROOT, run_cfg

from torchprac.distributed import quiet_rank_overrides
from torchprac.train.checkpoint import load_checkpoint

# No dropout and no batch norm: the only difference left is how the gradient mean is summed.
# 1079 training examples / global batch 32: the last batch of each epoch (23) is split 12 / 11,
# which checks the shard weighting too.
COMMON = [
    "data=digits",
    "optimizer=momentum",
    "model.hidden=[32]",
    "trainer.epochs=2",
    "trainer.log_every_n_steps=10",
    "trainer.health.enabled=false",
    "trainer.early_stopping.enabled=false",
    "trainer.device=cpu",  # gloo; nccl would need one GPU per rank
]
B = 16


@pytest.mark.slow
@pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(), reason="needs torch.distributed with gloo")
def test_two_ranks_batch_b_equal_one_process_batch_2b(tmp_path):
    env = {**os.environ, "HYDRA_FULL_ERROR": "0", "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        str(ROOT / "train.py"),
        *FAST,
        *COMMON,
        f"trainer.batch_size={B}",
    ]
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]

    run_dirs = [p for p in (tmp_path / "outputs").glob("*/*") if p.is_dir()]
    assert len(run_dirs) == 1, run_dirs  # both ranks in rank 0's dir
    run = run_dirs[0]
    assert len(list(run.glob("events.out.tfevents.*"))) == 1
    log = (run / "train.log").read_text().splitlines()
    dupes = [line for line, n in Counter(log).items() if n > 1]
    assert not dupes and sum("data digits:" in line for line in log) == 1, log

    _, single = run_cfg(COMMON + [f"trainer.batch_size={2 * B}"], tmp_path / "single")
    a = load_checkpoint(run / "checkpoints" / "last.pt")
    b = load_checkpoint(tmp_path / "single" / "checkpoints" / "last.pt")
    assert a["global_step"] == b["global_step"] == 2 * 34  # ceil(1079 / 32) steps per epoch
    assert not any(k.startswith("module.") for k in a["model"])  # checkpoints hold the plain module
    diff = max((a["model"][k] - b["model"][k]).abs().max().item() for k in a["model"])
    print(f"DDP 2x{B} vs 1x{2 * B}: max abs param diff after {a['global_step']} steps = {diff:.3g}")
    assert diff < 1e-5
    # Training loss/accuracy are all-reduced over ranks before they are logged.
    assert a["history"][-1]["loss/train"] == pytest.approx(b["history"][-1]["loss/train"], abs=1e-5)


def test_quiet_overrides_only_for_nonzero_ranks(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    assert quiet_rank_overrides() == []
    monkeypatch.setenv("RANK", "1")
    assert "hydra/job_logging=none" in quiet_rank_overrides()
    monkeypatch.delenv("WORLD_SIZE")
    assert quiet_rank_overrides() == []


def test_ddp_wrapped_model_is_unwrapped_for_eval_and_checkpoints(tmp_path, monkeypatch):
    """A 1-process gloo group: the Trainer trains through DDP but keeps the plain module."""
    if not dist.is_available() or not dist.is_gloo_available():
        pytest.skip("needs torch.distributed with gloo")
    from torch.nn.parallel import DistributedDataParallel

    from torchprac.train import Trainer

    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", "29531")
    dist.init_process_group("gloo", rank=0, world_size=1)
    try:
        net = torch.nn.Linear(3, 2)
        from torchprac.data.splits import Split
        from torchprac.optim import OptimBundle
        from torchprac.optim.clip import Clipper

        opt = OptimBundle(torch.optim.SGD(net.parameters(), lr=0.1), None, "step", None, None, Clipper([]))
        split = Split(torch.randn(8, 3), torch.randint(0, 2, (8,)))
        tr = Trainer(DistributedDataParallel(net), opt, split, split, epochs=1, batch_size=4, progress=False)
        assert tr.model is net and isinstance(tr.net, DistributedDataParallel)
        assert tr.fit().status == "completed"
    finally:
        dist.destroy_process_group()
