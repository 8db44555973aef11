"""Multi-process data parallel under torchrun:

    torchrun --standalone --nproc_per_node=2 train.py trainer.batch_size=32 ...

Each rank trains on its shard of every global batch (trainer.batch_size per rank; the Trainer
slices the shards), DistributedDataParallel averages the gradients (gloo on CPU, nccl on CUDA),
and rank 0 alone writes: TensorBoard, checkpoints, metrics.json and train.log. Without torchrun
(WORLD_SIZE unset or 1) everything here is a no-op."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # torch is imported lazily: train.py calls quiet_rank_overrides before Hydra starts
    import torch
    from torch import nn


def world_size_from_env() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def quiet_rank_overrides() -> list[str]:
    """Hydra overrides for ranks > 0, appended to argv before Hydra starts: no .hydra/ and no
    log file of their own, so the shared run dir has one train.log without duplicated lines.
    Warnings and errors still reach stderr through Python's last-resort handler."""
    if world_size_from_env() <= 1 or int(os.environ.get("RANK", "0")) == 0:
        return []
    return ["hydra.output_subdir=null", "hydra/job_logging=none", "hydra/hydra_logging=none"]


class _Silent:
    """Stands in for the TensorBoard logger on ranks > 0: every method is a no-op."""

    def __getattr__(self, name: str):
        return lambda *args, **kwargs: None


@dataclass
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device | None = None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    def logger(self, factory):
        """factory() on rank 0 (e.g. TBLogger(run_dir)), a no-op logger elsewhere."""
        return factory() if self.is_main else _Silent()

    def share_run_dir(self, run_dir: Path) -> Path:
        """Rank 0's run dir for every rank. Hydra resolves ${now:...} per process, so ranks that
        started in different seconds got different dirs; a rank's own dir, empty because of
        quiet_rank_overrides, is removed again."""
        if not self.enabled:
            return run_dir
        import torch.distributed as dist

        box = [str(run_dir)]
        dist.broadcast_object_list(box, src=0)
        shared = Path(box[0])
        if not self.is_main and run_dir.resolve() != shared.resolve():
            for d in (run_dir, run_dir.parent):  # the leaf and a date folder made just for it
                try:
                    d.rmdir()
                except OSError:
                    break  # not empty: someone else's, keep it
        return shared

    def wrap(self, model: nn.Module, seed: int, find_unused_parameters: bool = False) -> nn.Module:
        """DDP around the model (rank 0's initial weights are broadcast to all ranks).
        find_unused_parameters: some parameters get no gradient in some steps (layers frozen
        for transfer learning), which DDP's reducer must be told about."""
        if not self.enabled:
            return model
        import torch
        from torch.nn.parallel import DistributedDataParallel

        ids = [self.local_rank] if self.device is not None and self.device.type == "cuda" else None
        wrapped = DistributedDataParallel(model, device_ids=ids, find_unused_parameters=find_unused_parameters)
        # Same permutation on every rank (the Trainer's own generator), but independent dropout /
        # augmentation noise per rank from the global generator.
        torch.manual_seed(seed + self.rank)
        return wrapped

    def broadcast_(self, t: torch.Tensor) -> torch.Tensor:
        """Rank 0's values of `t` on every rank (in place); a no-op without torchrun."""
        if self.enabled:
            import torch.distributed as dist

            dist.broadcast(t, 0)
        return t

    def sum_(self, loss: torch.Tensor, correct: torch.Tensor, n: int) -> tuple[float, Any, int]:
        """Host values of running sums, added up over the ranks (each rank summed its shards).
        `correct`: a scalar (a float comes back) or a vector of sums (a list of floats)."""
        if not self.enabled:
            return float(loss), float(correct) if correct.ndim == 0 else correct.tolist(), n
        import torch
        import torch.distributed as dist

        sums = torch.cat(
            [
                loss.double().reshape(1),
                correct.double().reshape(-1),
                torch.tensor([float(n)], dtype=torch.float64, device=loss.device),
            ]
        )
        dist.all_reduce(sums)
        values = sums.tolist()
        return values[0], values[1] if correct.ndim == 0 else values[1:-1], int(values[-1])

    def close(self) -> None:
        import torch.distributed as dist

        if self.enabled and dist.is_initialized():
            dist.destroy_process_group()


def setup(device: torch.device) -> DistContext:
    """Join the torchrun process group (gloo on CPU, nccl on CUDA) and pick this rank's device."""
    world = world_size_from_env()
    if world <= 1:
        return DistContext(device=device)
    import torch
    import torch.distributed as dist

    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return DistContext(rank=rank, world_size=world, local_rank=local, device=device)
