"""The training loop: epochs of mini-batches sliced from a per-epoch permutation of on-device
tensors. Losses and accuracies accumulate on the device and are read on the host only every
`log_every_n_steps` steps and at epoch ends (dev evaluation, early stopping)."""

from __future__ import annotations

import math
from contextlib import nullcontext
from dataclasses import dataclass, field

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from torchprac.data.splits import Split
from torchprac.optim import OptimBundle
from torchprac.train.callbacks import Callback, overriding
from torchprac.train.early_stopping import EarlyStopping


class Diverged(Exception):
    """The training loss became non-finite."""


@dataclass
class FitResult:
    status: str  # completed | early_stopped | diverged
    epochs_run: int
    best_epoch: int
    message: str
    history: list[dict[str, float]] = field(default_factory=list)


@torch.no_grad()
def evaluate(model: nn.Module, split: Split, batch_size: int = 4096, autocast=nullcontext) -> dict[str, torch.Tensor]:
    """Mean cross-entropy and accuracy over a split, in eval mode, as device tensors."""
    was_training = model.training
    model.eval()
    loss_sum = split.x.new_zeros((), dtype=torch.float32)
    correct = torch.zeros((), dtype=torch.int64, device=split.x.device)
    n = len(split)
    for i in range(0, n, batch_size):
        xb, yb = split.x[i : i + batch_size], split.y[i : i + batch_size]
        with autocast():
            logits = model(xb)
        loss_sum += F.cross_entropy(logits.float(), yb, reduction="sum")
        correct += (logits.argmax(1) == yb).sum()
    model.train(was_training)
    return {"loss": loss_sum / n, "accuracy": correct.float() / n}


class Trainer:
    def __init__(
        self,
        model: nn.Module,
        optim: OptimBundle,
        train: Split,
        dev: Split,
        *,
        epochs: int,
        batch_size: int,
        drop_last: bool = False,
        log_every_n_steps: int = 25,
        eval_batch_size: int = 4096,
        early_stopping: EarlyStopping | None = None,
        callbacks: list[Callback] | None = None,
        logger=None,
        augment=None,
        seed: int = 0,
        progress: bool | None = None,
        histograms: bool = True,
        autocast=nullcontext,
        scaler=None,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        # DDP: train through the wrapper (it all-reduces gradients); evaluate, checkpoint and
        # restore the plain module, so state dicts carry no "module." prefix.
        self.net = model
        self.model = model.module if isinstance(model, DistributedDataParallel) else model
        self.optim, self.train_split, self.dev_split = optim, train, dev
        self.epochs, self.drop_last = int(epochs), bool(drop_last)
        self.rank, self.world_size = rank, world_size
        n = len(train)
        # gd: the batch is the whole training split, one step per epoch.
        self.batch_size = n if optim.full_batch else min(int(batch_size), n)
        self.log_every = max(1, int(log_every_n_steps))
        self.eval_batch_size = int(eval_batch_size)
        self.es = early_stopping or EarlyStopping(enabled=False)
        self.callbacks = list(callbacks or [])
        self.logger, self.augment, self.histograms = logger, augment, histograms
        self.autocast, self.scaler = autocast, scaler
        self.progress = progress
        self.device = train.x.device
        self.generator = torch.Generator(device=self.device).manual_seed(int(seed))
        self.global_step = 0
        self.epoch = 0  # epochs completed
        self.history: list[dict[str, float]] = []
        self.last_finite_loss, self.last_finite_step = float("nan"), 0
        self._hooks = {
            h: overriding(self.callbacks, h)
            for h in ("on_fit_start", "on_before_step", "on_after_step", "on_log", "on_epoch_end", "on_fit_end")
        }

    # -- sizes ------------------------------------------------------------------------------
    @property
    def global_batch(self) -> int:
        return self.batch_size * self.world_size

    @property
    def steps_per_epoch(self) -> int:
        return steps_per_epoch(len(self.train_split), self.global_batch, self.drop_last)

    # -- one step ---------------------------------------------------------------------------
    def _step(self, idx: torch.Tensor, acc: dict[str, torch.Tensor], scale: float | None = None) -> None:
        """scale (DDP only): len(shard) * world_size / len(global batch), so that the gradient
        DDP averages over ranks is the mean over the global batch even when shards differ."""
        model, opt = self.net, self.optim
        # index_select: the same gather as x[idx], at half the cost for batches of images
        # (one row memcpy per example instead of the generic advanced-indexing kernel).
        xb, yb = self.train_split.x.index_select(0, idx), self.train_split.y.index_select(0, idx)
        if self.augment is not None:
            xb = self.augment(xb)
        with self.autocast():
            logits = model(xb)
            data_loss = F.cross_entropy(logits.float(), yb)
        loss = data_loss if scale is None else data_loss * scale
        if opt.penalty is not None:
            penalty = opt.penalty()
            loss = loss + penalty
            acc["penalty"] += penalty.detach()
        opt.optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(opt.optimizer)
        else:
            loss.backward()
        for hook in self._hooks["on_before_step"]:
            hook(self)
        norm = opt.clipper(want_norm=(self.global_step + 1) % self.log_every == 0)
        if norm is not None:
            acc["grad_norm"] += norm
            acc["norm_samples"] += 1
        if self.scaler is not None:
            self.scaler.step(opt.optimizer)
            self.scaler.update()
        else:
            opt.optimizer.step()
        for constrain in opt.constraints:
            constrain()
        if opt.scheduler is not None and opt.interval == "step":
            opt.scheduler.step()
        acc["loss"].add_(data_loss.detach(), alpha=len(idx))  # one op: no temporary
        acc["correct"] += (logits.detach().argmax(1) == yb).sum()
        acc["n"] += len(idx)
        self.global_step += 1
        for hook in self._hooks["on_after_step"]:
            hook(self)

    def _new_acc(self) -> dict:
        z = torch.zeros((), device=self.device)
        return {
            "loss": z.clone(),
            "correct": z.clone().long(),
            "penalty": z.clone(),
            "grad_norm": z.clone(),
            "norm_samples": 0,
            "n": 0,
        }

    def _flush(self, acc: dict, steps: int) -> dict[str, float]:
        """The only per-interval host sync: read the running sums, check they are finite."""
        if self.world_size > 1:  # each rank summed its own shards
            sums = torch.stack(
                [
                    acc["loss"].double(),
                    acc["correct"].double(),
                    torch.tensor(float(acc["n"]), dtype=torch.float64, device=self.device),
                ]
            )
            dist.all_reduce(sums)
            acc = {**acc, "loss": sums[0], "correct": sums[1], "n": int(sums[2])}
        n = max(acc["n"], 1)
        loss = float(acc["loss"]) / n
        if not math.isfinite(loss):
            raise Diverged(loss)
        self.last_finite_loss, self.last_finite_step = loss, self.global_step
        logs = {"loss/train": loss, "metric/accuracy_train": float(acc["correct"]) / n}
        if self.optim.penalty is not None:
            pen = float(acc["penalty"]) / max(steps, 1)
            logs.update({"loss/penalty": pen, "loss/data": loss, "loss/total": loss + pen})
        if acc["norm_samples"]:  # clip=norm: mean over the steps; otherwise the logging step's norm
            logs["grad_norm/global_preclip"] = float(acc["grad_norm"]) / acc["norm_samples"]
        if self.optim.clipper.kind != "none":
            logs["clip/fired_fraction"] = self.optim.clipper.fired_fraction()
        for g in self.optim.optimizer.param_groups:
            logs[f"lr/{g.get('name', 'group')}"] = float(g["lr"])
        return logs

    # -- the loop ---------------------------------------------------------------------------
    def fit(self) -> FitResult:
        model, n = self.net, len(self.train_split)
        gb, ws = self.global_batch, self.world_size
        spe = self.steps_per_epoch
        bar = _progress(self.progress, total=spe * (self.epochs - self.epoch), desc="train")
        for hook in self._hooks["on_fit_start"]:
            hook(self)
        status, message = "completed", ""
        try:
            while self.epoch < self.epochs:
                model.train()
                perm = torch.randperm(n, device=self.device, generator=self.generator)
                if ws > 1:  # augmentation may draw unequally from the generator on each rank
                    dist.broadcast(perm, 0)
                acc, since = self._new_acc(), 0
                for i in range(spe):
                    chunk = perm[i * gb : (i + 1) * gb]
                    if ws == 1:
                        self._step(chunk, acc)
                    elif len(chunk) >= ws:
                        # DDP: each rank takes its own contiguous shard of the global batch.
                        idx = chunk.tensor_split(ws)[self.rank]
                        self._step(idx, acc, len(idx) * ws / len(chunk))
                    else:  # a last batch smaller than the world would leave a rank empty
                        continue
                    since += 1
                    if self.global_step % self.log_every == 0:
                        logs = self._flush(acc, since)
                        self._log(logs)
                        for hook in self._hooks["on_log"]:
                            hook(self, logs)
                        if bar is not None:
                            bar.update(since)
                            bar.set_postfix(loss=f"{logs['loss/train']:.4f}", epoch=self.epoch + 1)
                        acc, since = self._new_acc(), 0
                if bar is not None and since:
                    bar.update(since)
                stop = self._end_epoch(acc, since)
                if stop:
                    status = "early_stopped"
                    message = (
                        f"early stopping: {self.es.monitor} did not improve for "
                        f"{self.es.patience} epochs (best {self.es.best:.4f} at epoch {self.es.best_epoch + 1})"
                    )
                    break
        except Diverged:
            status = "diverged"
            last = (
                f"last finite loss {self.last_finite_loss:.4g} at step {self.last_finite_step}"
                if self.last_finite_step
                else "no finite loss logged before it"
            )
            message = (
                f"diverged: the training loss was non-finite at step {self.global_step} "
                f"(epoch {self.epoch + 1}; checked every trainer.log_every_n_steps steps and at "
                f"epoch ends); {last}. Try a lower optimizer.lr, clip=norm, or a smaller init scale."
            )
        finally:
            if bar is not None:
                bar.close()
        restored = status != "diverged" and self.es.restore(self.model)
        if status == "completed":
            message = f"completed {self.epoch} epochs" + (
                f"; best {self.es.monitor} {self.es.best:.4f} at epoch {self.es.best_epoch + 1}" if restored else ""
            )
        result = FitResult(status, self.epoch, self.es.best_epoch, message, self.history)
        for hook in self._hooks["on_fit_end"]:
            hook(self, result)
        return result

    def _end_epoch(self, acc: dict, since: int) -> bool:
        logs = self._flush(acc, since) if since else {}
        dev = evaluate(self.model, self.dev_split, self.eval_batch_size, self.autocast)
        if self.world_size > 1:  # rank 0's numbers decide early stopping and plateau on every rank
            both = torch.stack([dev["loss"], dev["accuracy"]])
            dist.broadcast(both, 0)
            dev = {"loss": both[0], "accuracy": both[1]}
        logs.update(
            {"loss/dev": float(dev["loss"]), "metric/accuracy_dev": float(dev["accuracy"]), "epoch": self.epoch + 1}
        )
        if not math.isfinite(logs["loss/dev"]):
            raise Diverged(logs["loss/dev"])
        self.epoch += 1
        sched = self.optim.scheduler
        if sched is not None and self.optim.interval == "epoch":
            if isinstance(sched, torch.optim.lr_scheduler.ReduceLROnPlateau):
                sched.step(logs[_tag(self.optim.monitor or "dev/loss")])
            else:
                sched.step()
        self.history.append(logs)
        self._log(logs)
        if self.logger is not None and self.histograms:
            self.logger.histograms(self.model, self.global_step)
        stop = self.es.update(self.epoch - 1, logs[_tag(self.es.monitor)], self.model)
        for hook in self._hooks["on_epoch_end"]:
            hook(self, logs)
        return stop

    def _log(self, logs: dict[str, float]) -> None:
        if self.logger is not None:
            self.logger.scalars({k: v for k, v in logs.items() if k != "epoch"}, self.global_step)


def _tag(monitor: str) -> str:
    """dev/loss -> loss/dev, dev/accuracy -> metric/accuracy_dev (TensorBoard tag names)."""
    split, name = monitor.split("/")
    return f"loss/{split}" if name == "loss" else f"metric/{name}_{split}"


def steps_per_epoch(n: int, batch: int, drop_last: bool) -> int:
    return max(1, n // batch) if drop_last else math.ceil(n / batch)


def _progress(enabled: bool | None, total: int, desc: str):
    """tqdm bar; enabled=None shows it only when stderr is a terminal."""
    if enabled is False:
        return None
    from tqdm.auto import tqdm

    return tqdm(
        total=total,
        desc=desc,
        disable=None if enabled is None else not enabled,
        unit="step",
        leave=False,
        dynamic_ncols=True,
    )
