"""One run, top to bottom: read the config -> set up (device, seed, run dir) -> data -> model
-> optimisation -> (gradcheck) -> fit -> report. `run(cfg)` returns the dev objective for
sweepers. Each stage is a small function of plain objects (config.RunConfig's)."""

from __future__ import annotations

import logging
import random
import time
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig

from torchprac import distributed
from torchprac.config import RunConfig
from torchprac.errors import ConfigError

log = logging.getLogger("torchprac")


def run(cfg: DictConfig) -> float:
    """Train one configuration; returns the dev objective (worst value if the run diverged)."""
    return run_config(RunConfig.from_cfg(cfg))


def run_config(rc: RunConfig) -> float:
    if rc.mode in ("predict", "evaluate"):  # use a trained model (torchprac/predict.py)
        from torchprac.predict import run_use

        return run_use(rc)
    from torchprac.data import build_data
    from torchprac.report.results import report_run
    from torchprac.train import Precision, TBLogger
    from torchprac.train.resume import check_same_config, find_checkpoint, restore
    from torchprac.viz import painter

    t = rc.trainer
    t_start, threads_before = time.perf_counter(), torch.get_num_threads()
    if t.num_threads != "auto":  # the user's N from the first stage; auto needs the model's FLOPs
        torch.set_num_threads(t.num_threads)
    ddp = distributed.setup(resolve_device(t.device))  # torchrun: process group, rank's device
    logger = None
    try:
        device, run_dir = ddp.device, ddp.share_run_dir(rc.run_dir or Path("outputs/run"))
        # Before anything is written: a damaged or unsafe checkpoint leaves the run dir as it was.
        check_run_dir(run_dir, resume=t.resume == "auto", overwrite=t.overwrite)
        resume = find_checkpoint(run_dir, device) if t.resume == "auto" else None
        if resume is not None:
            check_same_config(*resume, rc.raw)
        if t.overwrite and ddp.is_main:
            clear_run(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        seed_everything(t.seed, t.deterministic)
        precision = Precision.of(t.precision, device)  # refuses 16-mixed without CUDA, early

        splits = build_data(rc.data, seed=t.seed, device=device)
        log_data(splits, device)
        model = build_model(rc, splits.input_shape, splits.num_classes, device)
        # What the data makes impossible is refused before the first write (TensorBoard below).
        build_loop(rc, len(splits.train), ddp.world_size, rc.model.batch_norm != "none", announce=False)
        rc.reg.transform(splits.input_shape)  # augmentation vs the image size
        threads = choose_threads(rc, model, splits, device)
        # In a sweep, events go to <job dir>/<overrides>/: TensorBoard names the run by what it chose.
        tb_dir = run_dir / rc.viz.run_name if rc.viz is not None and rc.viz.run_name else run_dir
        logger = ddp.logger(lambda: TBLogger(tb_dir))  # rank 0 alone writes
        transfer = rc.transfer.apply(model, logger)  # model.pretrained: reuse layers; the freeze callback
        logger.text("config", "```yaml\n" + rc.yaml + "\n```")

        gradcheck = None
        if rc.mode == "gradcheck" or t.gradcheck:  # raises GradcheckError on failure
            from torchprac.diagnose.gradcheck import run_gradcheck

            l1, l2 = rc.reg.penalty_strengths()
            gradcheck = run_gradcheck(
                model, splits.train, l1=l1, l2=l2, seed=t.seed, logger=logger, run_dir=run_dir if ddp.is_main else None
            )
            if rc.mode == "gradcheck":
                return float(gradcheck.worst.rel_diff)

        found = None
        if rc.mode == "lr_find" or t.lr_find:  # before build_trainer: optimizer and scheduler start at the found lr
            from torchprac.tune.runner import run_lr_find

            loop = build_loop(rc, len(splits.train), ddp.world_size, rc.model.batch_norm != "none")
            optim = build_optimization(rc, model, precision)  # the test's own; weights and RNGs are restored
            found = run_lr_find(rc, model, splits, optim, loop.batch_size, logger, ddp, run_dir, resume is not None)
            if rc.mode == "lr_find":
                return found.lr
            rc = found.apply(rc)

        if rc.viz is not None and ddp.is_main and painter.in_background(rc.viz):
            painter.start()  # the figure process imports while this job trains (viz.background)
        trainer, health = build_trainer(rc, model, splits, precision, logger, ddp, transfer, run_dir)
        if resume is not None:
            restore(*resume, trainer)
        t_fit = time.perf_counter()
        result = trainer.fit()
        fit_s = time.perf_counter() - t_fit

        extras = {"health": health, "gradcheck": gradcheck, "lr_find": found, "threads": threads, "fit_s": fit_s}
        out = report_run(rc, trainer, result, model, splits, precision, logger, run_dir, ddp.is_main, t_start, extras)
        return float(out["objective"]["value"])
    finally:
        if logger is not None:
            logger.close()
        ddp.close()
        torch.set_num_threads(threads_before)  # in-process callers (sweeps, tests) get theirs back


# -- setup ----------------------------------------------------------------------------------
RUN_OUTPUTS = ("metrics.json", "history.json", "gradcheck.json", "lr_find.json", "predictions.csv")


def check_run_dir(run_dir: Path, resume: bool, overwrite: bool) -> None:
    """The run dir must be (or become) a writable folder, and must not hold another run's
    results unless the user resumes it or asked to overwrite it: checked before any write."""
    import os

    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError("paths.run_dir", str(run_dir), "a folder (this path is a file)")
    parent = next((p for p in (run_dir, *run_dir.parents) if p.exists()), None)
    if parent is None or not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError("paths.run_dir", str(run_dir), "a folder that can be created and written")
    if resume or overwrite or not run_dir.is_dir():
        return
    finished = (run_dir / "metrics.json").is_file()
    if finished or (run_dir / "checkpoints").is_dir() or any(run_dir.glob("events.out.tfevents.*")):
        what = "a finished run (metrics.json)" if finished else "an interrupted run (checkpoints or events)"
        raise ConfigError(
            "paths.run_dir",
            str(run_dir),
            "a new folder, or trainer.resume=auto to continue the run there, or trainer.overwrite=true to replace it",
            f"It already holds {what}; nothing was written.",
        )


def clear_run(run_dir: Path) -> None:
    """trainer.overwrite=true: remove the earlier run's outputs (Hydra's .hydra/ and train.log
    are rewritten by Hydra itself)."""
    import shutil

    for name in RUN_OUTPUTS:
        (run_dir / name).unlink(missing_ok=True)
    for sub in ("checkpoints", "figures"):
        shutil.rmtree(run_dir / sub, ignore_errors=True)
    for f in run_dir.rglob("events.out.tfevents.*"):  # also a sweep job's <overrides>/ run folder
        f.unlink()


def choose_threads(rc: RunConfig, model: torch.nn.Module, splits, device: torch.device):
    """trainer.num_threads applied (auto: from the model's FLOPs per training step, the cores
    and the jobs running at once; torchprac/threads.py); returns the threads.ThreadChoice."""
    from torchprac import threads

    n = len(splits.train)
    batch = n if rc.optimizer.full_batch else min(rc.trainer.batch_size, n)
    choice = threads.resolve(rc.trainer.num_threads, model, splits.input_shape, batch, device)
    threads.apply(choice)
    return choice


def seed_everything(seed: int, deterministic: bool = False) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("trainer.device", name, "'auto' or 'cpu' on this machine (CUDA is not available)")
    return torch.device(name)


def log_data(splits, device: torch.device) -> None:
    log.info(
        "data %s: train %d, dev %d, test %s, input %s, %s, device %s",
        splits.name,
        len(splits.train),
        len(splits.dev),
        len(splits.test) if splits.test is not None else "none",
        splits.input_shape,
        f"{splits.num_classes} classes" if getattr(splits, "task", "classification") != "regression" else "regression",
        device,
    )


# -- the stages -----------------------------------------------------------------------------
def build_model(rc: RunConfig, input_shape: tuple[int, ...], num_classes: int, device: torch.device) -> torch.nn.Module:
    """The model, activation and init choices, with the dropout layers of reg."""
    drop = rc.reg.dropout
    model = rc.model.make(
        input_shape,
        num_classes,
        activation=rc.activation,
        init=rc.init,
        keep_probs=drop.keep_probs(len(rc.model.hidden), "reg.dropout.keep_prob") if drop else None,
        input_keep_prob=drop.input_keep_prob if drop else 1.0,
        alpha_dropout=bool(drop and drop.alpha),
    ).to(device)
    if device.type == "cuda" and rc.model.name == "cnn" and not rc.trainer.deterministic:
        torch.backends.cudnn.benchmark = True  # fixed input shapes: let cuDNN time its conv kernels once
    if rc.trainer.compile:
        model = torch.compile(model)
    return model


def build_loop(rc: RunConfig, n_train: int, world_size: int = 1, batch_norm: bool = False, announce: bool = True):
    """The loop settings; with batch norm, a last mini-batch of one example (whose batch
    statistics are undefined) is dropped, and what cannot work at all is refused."""
    from torchprac.train import Loop

    t = rc.trainer
    full = rc.optimizer.full_batch
    batch = n_train if full else min(t.batch_size, n_train)
    drop_last = t.drop_last
    if batch_norm:
        if batch * world_size < 2:
            raise ConfigError(
                "trainer.batch_size" if n_train > 1 else "data.train_subset",
                t.batch_size if n_train > 1 else n_train,
                "at least 2 examples per mini-batch with model.batch_norm (batch statistics need 2)",
                f"The training split has {n_train} example(s).",
            )
        if not drop_last and n_train % (batch * world_size) == 1:
            drop_last = True
            (log.info if announce else log.debug)(
                "batch norm: %d training examples in batches of %d leave a last batch of 1 example; "
                "it is dropped every epoch (trainer.drop_last=true)",
                n_train,
                batch,
            )
    return Loop(
        epochs=t.epochs,
        batch_size=batch,
        drop_last=drop_last,
        full_batch=full,
        log_every_n_steps=t.log_every_n_steps,
        eval_batch_size=t.eval_batch_size,
        progress=t.show_progress,
    )


def check_distributed(rc: RunConfig, model, ddp) -> None:
    """What DDP cannot do here is refused before training, not run silently wrong."""
    if rc.model.batch_norm != "none":
        if ddp.device.type != "cuda":  # SyncBatchNorm needs CUDA tensors
            raise ConfigError(
                "model.batch_norm",
                rc.model.batch_norm,
                "'none' under torchrun on CPU (per-rank batch statistics would differ; SyncBatchNorm needs CUDA)",
            )
        torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    if rc.transfer.freeze_epochs:
        raise ConfigError(
            "transfer.freeze_epochs",
            rc.transfer.freeze_epochs,
            "0 under torchrun (freezing changes which parameters DDP reduces mid-run)",
        )


def build_optimization(rc: RunConfig, model: torch.nn.Module, precision):
    from torchprac.train import Optimization

    base = model
    return Optimization(
        optimizer=rc.optimizer.make(base),
        penalty=rc.reg.penalty(base),
        clipper=rc.clip.make(list(base.parameters())),
        constraints=rc.reg.constraints(base),
        precision=precision,
    )


def build_trainer(rc: RunConfig, model, splits, precision, logger, ddp, transfer, run_dir: Path):
    """The Trainer with its callbacks, in the order they must see each epoch's end: the lr
    scheduler, early stopping, transfer unfreezing (may change lr), health, checkpoint (saves
    all of theirs), TensorBoard. Returns (trainer, health monitor or None)."""
    from torchprac.data.meta import DataMeta
    from torchprac.diagnose.health import HealthMonitor
    from torchprac.metrics import Metric
    from torchprac.train import (
        CheckpointCallback,
        EarlyStopping,
        LRSchedulerCallback,
        TensorBoardCallback,
        Trainer,
        steps_per_epoch,
    )
    from torchprac.train.task import task_of

    t = rc.trainer
    task = task_of(splits)  # the loss and metrics: classification or regression
    has_bn = rc.model.batch_norm != "none"
    if ddp.enabled:
        check_distributed(rc, model, ddp)
    loop = build_loop(rc, len(splits.train), ddp.world_size, has_bn)
    optim = build_optimization(rc, model, precision)
    per_epoch = steps_per_epoch(len(splits.train), loop.batch_size * ddp.world_size, loop.drop_last)
    total = per_epoch * t.epochs if rc.schedule.interval == "step" else t.epochs
    try:
        scheduler = rc.schedule.build(optim.optimizer, total, rc.optimizer.lr)
    except (ValueError, TypeError) as e:  # e.g. a schedule the optimizer cannot follow
        raise ConfigError(
            "scheduler", rc.schedule.name, f"a schedule that optimizer={rc.optimizer.name} supports", str(e)
        ) from None

    es = t.early_stopping
    task.metric(t.objective_metric)  # a metric the task has (checked before training, not after)
    monitor = task.metric(Metric.parse(es.monitor), "trainer.early_stopping.monitor")
    stopper = EarlyStopping(monitor, es.patience, es.min_delta, es.enabled, es.restore_best)
    callbacks = []
    if scheduler is not None:
        plateau = rc.schedule.monitor and task.metric(rc.schedule.monitor, "scheduler.monitor")
        callbacks.append(LRSchedulerCallback(scheduler, rc.schedule.interval, plateau or None))
    callbacks.append(stopper)
    if transfer is not None:
        callbacks.append(transfer)
    health = None
    if t.health.enabled:
        h = t.health
        health = HealthMonitor(model, logger, h.every_n_steps, h.vanishing_ratio, h.exploding_norm)
        callbacks.append(health)
    if t.checkpoint:
        extra = {"input_shape": list(splits.input_shape), "num_classes": splits.num_classes, "config": rc.yaml}
        extra["data"] = DataMeta.of(splits).to_dict()  # what predict/evaluate need: task, classes, mu, sigma
        callbacks.append(CheckpointCallback(run_dir / "checkpoints", extra=extra, best=stopper))
    callbacks.append(TensorBoardCallback(logger, histograms=t.histograms))
    if rc.viz is not None and rc.viz.enabled:  # boundary images, activation histograms, epoch lines
        from torchprac.viz.callback import VizCallback

        callbacks.append(VizCallback(rc.viz, model, logger))

    generator = torch.Generator(device=splits.train.x.device).manual_seed(t.seed)
    # Augmentation draws from the trainer's seeded generator: reproducible, checkpointed with it.
    augment = rc.reg.transform(splits.input_shape, generator)
    net = ddp.wrap(model, t.seed, find_unused_parameters=transfer is not None)
    trainer = Trainer(
        net,
        optim,
        splits.train,
        splits.dev,
        loop,
        callbacks=callbacks,
        augment=augment,
        generator=generator,
        dist=ddp,
        task=task,
    )
    return trainer, health


__all__ = ["run", "run_config", "build_model", "build_loop", "build_optimization", "build_trainer"]
