"""torchrun DDP on CPU (gloo): 2 ranks x batch b train exactly like 1 process x batch 2b, in one
run dir, with one train.log and one TensorBoard event file written by rank 0 alone.
(Unit parts: tests/unit/test_distributed.py, and the DDP-wrapped model in
tests/unit/train/test_trainer.py.)"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter

import pytest
import torch.distributed as dist
from conftest import FAST, ROOT, run_cfg

from torchprac.files import load_checkpoint

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
