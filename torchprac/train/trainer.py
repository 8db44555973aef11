"""The training loop: epochs of mini-batches sliced from a per-epoch permutation of on-device
tensors. Losses and accuracies accumulate on the device and are read on the host only every
`log_every_n_steps` steps and at epoch ends. Everything else — lr scheduling, early stopping,
checkpoints, TensorBoard, gradient health, transfer unfreezing — is a callback."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from torchprac.data.splits import Split
from torchprac.distributed import DistContext
from torchprac.metrics import Status
from torchprac.train.callbacks import Callback, overriding
from torchprac.train.step import Optimization
from torchprac.train.task import CLASSIFICATION, Task, evaluate


class Diverged(Exception):
    """The training loss became non-finite."""


@dataclass
class Loop:
    """How long and in which pieces: the trainer group's loop settings."""

    epochs: int
    batch_size: int
    drop_last: bool = False
    full_batch: bool = False  # gd: one step per epoch on the whole training split
    log_every_n_steps: int = 25
    eval_batch_size: int = 4096
    progress: bool | None = None  # None: only on a terminal


@dataclass
class FitResult:
    status: Status
    epochs_run: int
    best_epoch: int  # 0-based epoch whose weights the model holds now
    message: str
    history: list[dict[str, float]] = field(default_factory=list)


def steps_per_epoch(n: int, batch: int, drop_last: bool) -> int:
    return max(1, n // batch) if drop_last else math.ceil(n / batch)


class Trainer:
    def __init__(
        self,
        model: nn.Module,
        optim: Optimization,
        train: Split,
        dev: Split,
        loop: Loop,
        *,
        callbacks: list[Callback] | None = None,
        augment=None,
        generator: torch.Generator | None = None,
        dist: DistContext | None = None,
        task: Task | None = None,
    ) -> None:
        # DDP: train through the wrapper (it all-reduces gradients); evaluate, checkpoint and
        # restore the plain module, so state dicts carry no "module." prefix.
        self.net = model
        self.model = model.module if isinstance(model, DistributedDataParallel) else model
        self.optim, self.train_split, self.dev_split, self.loop = optim, train, dev, loop
        self.dist = dist or DistContext()
        self.task = task or CLASSIFICATION  # the loss and metrics (train/task.py)
        self.device = train.x.device
        n = len(train)
        self.batch_size = n if loop.full_batch else min(int(loop.batch_size), n)
        self.augment = augment
        self.generator = generator or torch.Generator(device=self.device).manual_seed(0)
        self.callbacks = list(callbacks or [])
        self.hooks = {
            h: overriding(self.callbacks, h)
            for h in ("on_fit_start", "on_before_step", "on_after_step", "on_log", "on_epoch_end", "on_fit_end")
        }
        self._before_step = [lambda h=h: h(self) for h in self.hooks["on_before_step"]]
        self.global_step, self.epoch = 0, 0  # epoch: epochs completed
        self.history: list[dict[str, float]] = []
        self.last_finite_loss, self.last_finite_step = float("nan"), 0
        self._stop: str | None = None
        self._last_read: dict[str, float] = {}  # the latest interval's train logs of this epoch

    @property
    def global_batch(self) -> int:
        return self.batch_size * self.dist.world_size

    @property
    def steps_per_epoch(self) -> int:
        return steps_per_epoch(len(self.train_split), self.global_batch, self.loop.drop_last)

    def stop(self, reason: str) -> None:
        """Ask the loop to stop after this epoch (early stopping)."""
        self._stop = reason

    # -- the loop ---------------------------------------------------------------------------
    def fit(self) -> FitResult:
        bar = _progress(self.loop.progress, total=self.steps_per_epoch * (self.loop.epochs - self.epoch))
        status, message = Status.COMPLETED, ""
        self._call("on_fit_start")
        try:
            while self.epoch < self.loop.epochs and self._stop is None:
                self.net.train()
                self._last_read: dict[str, float] = {}
                acc = _Sums(self.device, self.task)
                for idx, scale in self._batches():
                    self._train_step(idx, acc, scale)
                    if self.global_step % self.loop.log_every_n_steps == 0:
                        logs = self._read(acc)
                        self._call("on_log", logs)
                        _advance(bar, acc.steps, logs, self.epoch)
                        acc = _Sums(self.device, self.task)
                _advance(bar, acc.steps, None, self.epoch)
                self._end_epoch(acc)
            if self._stop is not None:
                status, message = Status.EARLY_STOPPED, self._stop
            else:
                message = f"completed {self.epoch} epochs"
        except Diverged:
            status, message = Status.DIVERGED, self._diverged_message()
        finally:
            if bar is not None:
                bar.close()
        result = FitResult(status, self.epoch, self.epoch - 1, message, self.history)
        self._call("on_fit_end", result)
        return result

    def _batches(self):
        """(indices, DDP loss scale) per step of one epoch; each rank takes its shard."""
        n, gb, ws = len(self.train_split), self.global_batch, self.dist.world_size
        perm = torch.randperm(n, device=self.device, generator=self.generator)
        self.dist.broadcast_(perm)  # augmentation may draw unequally from the generator on each rank
        plan = []
        for i in range(self.steps_per_epoch):
            chunk = perm[i * gb : (i + 1) * gb]
            if ws == 1:
                plan.append((chunk, None))
            elif len(chunk) >= ws:  # a last batch smaller than the world would leave a rank empty
                idx = chunk.tensor_split(ws)[self.dist.rank]
                # the gradient DDP averages over ranks is then the mean over the global batch
                plan.append((idx, len(idx) * ws / len(chunk)))
        self.train_split.start_epoch([idx for idx, _ in plan])  # a streaming split's loader gets this order
        yield from plan

    def _train_step(self, idx: torch.Tensor, acc: _Sums, scale: float | None) -> None:
        xb, yb = self.train_split.take(idx)  # in memory: index_select; streaming: the loader's next batch
        if self.augment is not None:
            xb = self.augment(xb)
        with self.optim.precision.autocast():
            logits = self.net(xb)
            data_loss = self.task.loss(logits, yb)
        loss = data_loss if scale is None else data_loss * scale
        want_norm = (self.global_step + 1) % self.loop.log_every_n_steps == 0
        penalty, norm = self.optim.step(loss, self._before_step, want_norm)
        acc.add(data_loss.detach(), logits.detach(), yb, penalty, norm)
        self.global_step += 1
        for hook in self.hooks["on_after_step"]:
            hook(self)

    def _end_epoch(self, acc: _Sums) -> None:
        # When the epoch's last step was a logging step, its interval was read already: the epoch
        # keeps those train values (not a blank), as every epoch of the history has train metrics.
        logs = self._read(acc) if acc.steps else dict(self._last_read)
        names = self.task.names
        dev = evaluate(self.model, self.dev_split, self.loop.eval_batch_size, self.optim.precision.autocast, self.task)
        both = self.dist.broadcast_(torch.stack([dev[k].double() for k in names]))  # rank 0 decides
        logs["loss/dev"] = float(both[0])
        logs.update({f"metric/{k}_dev": float(v) for k, v in zip(names[1:], both[1:])})
        logs["epoch"] = self.epoch + 1
        if not math.isfinite(logs["loss/dev"]):
            raise Diverged(logs["loss/dev"])
        self.epoch += 1
        self.history.append(logs)
        self._call("on_epoch_end", logs)

    # -- reading the device sums (the only host syncs) ----------------------------------------
    def _read(self, acc: _Sums) -> dict[str, float]:
        loss_sum, sums, n = self.dist.sum_(acc.loss, acc.correct, acc.n)
        loss = loss_sum / max(n, 1)
        if not math.isfinite(loss):
            raise Diverged(loss)
        self.last_finite_loss, self.last_finite_step = loss, self.global_step
        logs = {"loss/train": loss}
        logs.update({f"metric/{k}_train": v for k, v in self.task.metrics(loss, sums, n).items()})
        if acc.penalty is not None:
            pen = float(acc.penalty) / max(acc.steps, 1)
            logs.update({"loss/penalty": pen, "loss/data": loss, "loss/total": loss + pen})
        if acc.norm_samples:  # clip=norm: mean over the steps; otherwise the logging step's norm
            logs["grad_norm/global_preclip"] = float(acc.grad_norm) / acc.norm_samples
        clipper = self.optim.clipper
        if clipper is not None and clipper.kind != "none":
            logs["clip/fired_fraction"] = clipper.fired_fraction()
        for g in self.optim.optimizer.param_groups:
            logs[f"lr/{g.get('name', 'group')}"] = float(g["lr"])
        self._last_read = logs
        return logs

    def _diverged_message(self) -> str:
        last = (
            f"last finite loss {self.last_finite_loss:.4g} at step {self.last_finite_step}"
            if self.last_finite_step
            else "no finite loss logged before it"
        )
        return (
            f"diverged: the training loss was non-finite at step {self.global_step} "
            f"(epoch {self.epoch + 1}; checked every trainer.log_every_n_steps steps and at "
            f"epoch ends); {last}. Try a lower optimizer.lr, clip=norm, or a smaller init scale."
        )

    def _call(self, hook: str, *args: Any) -> None:
        for h in self.hooks[hook]:
            h(self, *args)

    # -- state (checkpoints, resume) -----------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            **self.optim.state_dict(),
            "epoch": self.epoch,
            "global_step": self.global_step,
            "history": self.history,
            "callbacks": {type(cb).__name__: cb.state_dict() for cb in self.callbacks},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Everything but the RNG states (the caller restores those last)."""
        self.model.load_state_dict(state["model"])
        self.optim.load_state_dict(state)
        self.epoch, self.global_step = int(state["epoch"]), int(state["global_step"])
        self.history = list(state["history"])
        saved = state.get("callbacks") or {}
        for cb in self.callbacks:
            if type(cb).__name__ in saved:
                cb.load_state_dict(saved[type(cb).__name__])


class _Sums:
    """Running sums of one logging interval, kept on the device (`correct`: the task's sums,
    the correct count for classification)."""

    def __init__(self, device: torch.device, task: Task | None = None) -> None:
        self.task = task or CLASSIFICATION
        z = torch.zeros((), device=device)
        self.loss, self.correct = z.clone(), self.task.zeros(device)
        self.penalty: torch.Tensor | None = None
        self.grad_norm, self.norm_samples = z.clone(), 0
        self.n = self.steps = 0

    def add(self, data_loss, logits, y, penalty, norm) -> None:
        self.loss.add_(data_loss, alpha=len(y))  # one op: no temporary
        self.correct += self.task.batch_sums(logits, y)
        if penalty is not None:
            self.penalty = penalty if self.penalty is None else self.penalty + penalty
        if norm is not None:
            self.grad_norm += norm
            self.norm_samples += 1
        self.n += len(y)
        self.steps += 1


def _advance(bar, steps: int, logs: dict[str, float] | None, epoch: int) -> None:
    if bar is None or not steps:
        return
    bar.update(steps)
    if logs is not None:
        bar.set_postfix(loss=f"{logs['loss/train']:.4f}", epoch=epoch + 1)


def _progress(enabled: bool | None, total: int):
    """tqdm bar; enabled=None shows it only when stderr is a terminal."""
    if enabled is False:
        return None
    from tqdm.auto import tqdm

    disable = None if enabled is None else not enabled
    return tqdm(total=total, desc="train", disable=disable, unit="step", leave=False, dynamic_ncols=True)
