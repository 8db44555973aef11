"""One run, top to bottom: validate -> seed/device -> data -> model -> optim -> (gradcheck)
-> fit -> evaluate -> diagnose -> write. `run(cfg)` returns the dev objective for sweepers."""

from __future__ import annotations

import json
import logging
import random
import sys
from contextlib import nullcontext
from functools import partial
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from torchprac import distributed
from torchprac.config import reg_cfg
from torchprac.errors import ConfigError, TorchpracError
from torchprac.validate import monitor_mode, validate

log = logging.getLogger("torchprac")


# -- setup ----------------------------------------------------------------------------------
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


def precision_context(precision: str, device: torch.device):
    """(autocast factory, GradScaler or None) for trainer.precision."""
    if precision == "32":
        return nullcontext, None
    if precision == "16-mixed" and device.type != "cuda":
        raise ConfigError("trainer.precision", precision, "'32' or 'bf16-mixed' on CPU ('16-mixed' needs CUDA)")
    dtype = torch.bfloat16 if precision == "bf16-mixed" else torch.float16
    scaler = torch.amp.GradScaler("cuda") if precision == "16-mixed" else None
    return partial(torch.autocast, device_type=device.type, dtype=dtype), scaler


def run_dir_of(cfg: DictConfig) -> Path:
    return Path(str(cfg.paths.run_dir))


# -- hparams & metrics ----------------------------------------------------------------------
def hparams_of(cfg: DictConfig) -> dict:
    """A FLAT, FIXED key set: every run logs the same keys (0 / 'none' for what is off), so
    the HParams tab compares runs that chose different groups."""
    reg = reg_cfg(cfg)
    drop = reg.get("dropout") or reg.get("alpha_dropout") or {}
    kp = drop.get("keep_prob", 1.0)
    kp = float(np.mean(kp)) if isinstance(kp, list) else float(kp)
    elastic = reg.get("elastic", {})
    clip = cfg.clip
    return {
        "data": str(cfg.data.name),
        "model": str(cfg.model.name),
        "hidden": str(list(cfg.model.hidden)),
        "batch_norm": str(cfg.model.get("batch_norm", "none")),
        "init": str(cfg.init.name),
        "activation": str(cfg.activation.name),
        "optimizer": str(cfg.optimizer.name),
        "lr": float(cfg.optimizer.lr),
        "momentum": float(cfg.optimizer.get("momentum", 0.0) or 0.0),
        "weight_decay": float(cfg.optimizer.get("weight_decay", 0.0) or 0.0),
        "batch_size": int(cfg.trainer.batch_size),
        "epochs": int(cfg.trainer.epochs),
        "scheduler": str(cfg.scheduler.name),
        "clip": str(clip.name),
        "clip_threshold": float(clip.get("max_norm", clip.get("clip_value", 0.0)) if clip.name != "none" else 0.0),
        "l1": float(reg.get("l1", {}).get("strength", 0.0)) + float(elastic.get("l1", 0.0)),
        "l2": float(reg.get("l2", {}).get("strength", 0.0)) + float(elastic.get("l2", 0.0)),
        "keep_prob": kp,
        "input_keep_prob": float(drop.get("input_keep_prob", 1.0)),
        "dropout": "alpha" if "alpha_dropout" in reg else ("inverted" if "dropout" in reg else "none"),
        "max_norm": float(reg.get("max_norm", {}).get("r", 0.0)),
        "augment": "augment" in reg,
        "seed": int(cfg.trainer.seed),
    }


def objective_of(cfg: DictConfig, metrics: dict) -> dict:
    name = str(cfg.trainer.objective)
    split, key = name.split("/")
    mode = "min" if key == "loss" else "max"
    value = metrics.get(split, {}).get(key, float("nan"))
    return {"name": name, "value": value, "mode": mode}


def worst(mode: str) -> float:
    return float("inf") if mode == "min" else float("-inf")


def write_json(path: Path, obj: dict) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(obj, indent=2, allow_nan=True) + "\n")
    tmp.replace(path)


# -- the run --------------------------------------------------------------------------------
def run(cfg: DictConfig) -> float:
    """Train one configuration; returns the dev objective (worst value if the run diverged)."""
    from torchprac.data import build_data
    from torchprac.nn.transfer import build_transfer
    from torchprac.train import TBLogger
    from torchprac.train.resume import check_same_config, find_checkpoint, restore_model, restore_trainer

    validate(cfg)
    t = cfg.trainer
    ddp = distributed.setup(resolve_device(str(t.device)))  # torchrun: process group, rank's device
    device, run_dir = ddp.device, ddp.share_run_dir(run_dir_of(cfg))
    # Before anything is written: a damaged or unsafe checkpoint leaves the run dir as it was.
    resume = find_checkpoint(run_dir, device) if t.resume == "auto" else None
    if resume is not None:
        check_same_config(*resume, cfg)
    run_dir.mkdir(parents=True, exist_ok=True)
    seed_everything(int(t.seed), bool(t.deterministic))
    precision = precision_context(str(t.precision), device)  # refuses 16-mixed without CUDA, early

    splits = build_data(cfg.data, seed=int(t.seed), device=device)
    _log_data(splits, device)
    model = build_model_on(cfg, splits, device)
    transfer = build_transfer(cfg, model)  # model.pretrained: reuse layers, freeze/unfreeze callback
    optim = build_optim_for(cfg, model, splits, ddp.world_size)
    if resume is not None:
        restore_model(*resume, model, optim)

    logger = ddp.logger(lambda: TBLogger(run_dir))  # rank 0 alone writes
    logger.text("config", "```yaml\n" + OmegaConf.to_yaml(cfg, resolve=True) + "\n```")
    gradcheck = None
    if cfg.get("mode", "train") == "gradcheck" or t.gradcheck:  # raises GradcheckError on failure
        from torchprac.diagnose.gradcheck import run_gradcheck

        gradcheck = run_gradcheck(cfg, model, splits.train, reg_cfg(cfg), logger, run_dir if ddp.is_main else None)
        if cfg.mode == "gradcheck":
            logger.close()
            ddp.close()
            return float(gradcheck.worst.rel_diff)

    trainer, health = build_trainer(cfg, model, optim, splits, logger, ddp, transfer, run_dir, precision)
    if resume is not None:
        restore_trainer(resume[0], trainer)
    result = trainer.fit()

    out = results(cfg, model, splits, result, trainer.autocast, logger)
    if health is not None:
        out["health"] = {"warnings": health.warnings}
    if gradcheck is not None:
        out["gradcheck"] = {k: v for k, v in gradcheck.to_dict().items() if k != "rows"}
    out["message"] = result.message
    if ddp.is_main:
        write_json(run_dir / "metrics.json", out)
    logger.hparams(hparams_of(cfg), hparam_metrics(out["metrics"], result.epochs_run))
    logger.close()
    ddp.close()
    _summary(out, run_dir)
    return float(out["objective"]["value"])


# -- the stages -----------------------------------------------------------------------------
def _log_data(splits, device: torch.device) -> None:
    log.info(
        "data %s: train %d, dev %d, test %s, input %s, %d classes, device %s",
        splits.name,
        len(splits.train),
        len(splits.dev),
        len(splits.test) if splits.test is not None else "none",
        splits.input_shape,
        splits.num_classes,
        device,
    )


def build_model_on(cfg: DictConfig, splits, device: torch.device) -> torch.nn.Module:
    from torchprac.nn import build_model

    model = build_model(cfg, splits.input_shape, splits.num_classes).to(device)
    if device.type == "cuda" and cfg.model.name == "cnn" and not cfg.trainer.deterministic:
        torch.backends.cudnn.benchmark = True  # fixed input shapes: let cuDNN time its conv kernels once
    if cfg.trainer.compile:
        model = torch.compile(model)
    return model


def build_optim_for(cfg: DictConfig, model: torch.nn.Module, splits, world_size: int):
    from torchprac.optim import build_optim
    from torchprac.train.trainer import steps_per_epoch

    t = cfg.trainer
    n = len(splits.train)
    batch = n if cfg.optimizer.get("full_batch", False) else int(t.batch_size) * world_size
    return build_optim(cfg, model, steps_per_epoch(n, batch, bool(t.drop_last)), int(t.epochs))


def build_trainer(cfg: DictConfig, model, optim, splits, logger, ddp, transfer, run_dir: Path, precision):
    """The Trainer with its callbacks (transfer, health, checkpoints) and augmentation.
    `precision` is precision_context()'s (autocast, scaler); `transfer` a callback or None."""
    from torchprac.data.augment import build_augment
    from torchprac.diagnose.health import HealthMonitor
    from torchprac.train import CheckpointCallback, EarlyStopping, Trainer

    t = cfg.trainer
    es_cfg = t.early_stopping
    es = EarlyStopping(
        monitor=es_cfg.monitor,
        mode=es_cfg.mode or monitor_mode(str(es_cfg.monitor)),
        patience=es_cfg.patience,
        min_delta=es_cfg.min_delta,
        enabled=es_cfg.enabled,
        restore_best=es_cfg.restore_best,
    )
    callbacks = [transfer] if transfer is not None else []  # before checkpointing: it may change lr
    health = None
    if t.health.enabled:
        health = HealthMonitor(
            model,
            logger,
            int(t.health.every_n_steps),
            float(t.health.get("vanishing_ratio", 1000.0)),
            float(t.health.get("exploding_norm", 1000.0)),
        )
        callbacks.append(health)
    if t.checkpoint.enabled:
        extra = {
            "input_shape": list(splits.input_shape),
            "num_classes": splits.num_classes,
            "config": OmegaConf.to_yaml(cfg, resolve=True),
        }
        callbacks.append(CheckpointCallback(run_dir / "checkpoints", extra=extra))
    autocast, scaler = precision
    augment = build_augment(reg_cfg(cfg), splits.input_shape)  # training batches only
    trainer = Trainer(
        ddp.wrap(model, int(t.seed), find_unused_parameters=transfer is not None),
        optim,
        splits.train,
        splits.dev,
        epochs=t.epochs,
        batch_size=t.batch_size,
        drop_last=t.drop_last,
        log_every_n_steps=t.log_every_n_steps,
        eval_batch_size=t.eval_batch_size,
        early_stopping=es,
        callbacks=callbacks,
        logger=logger,
        seed=int(t.seed),
        progress=None if t.progress == "auto" else bool(t.progress),
        histograms=bool(t.histograms),
        autocast=autocast,
        scaler=scaler,
        augment=augment,
        rank=ddp.rank,
        world_size=ddp.world_size,
    )
    if augment is not None:
        # Draw from the trainer's seeded generator: reproducible, and checkpointed with its RNG state.
        augment.generator = trainer.generator
    return trainer, health


def results(cfg: DictConfig, model, splits, result, autocast, logger) -> dict:
    """Final evaluation with the (restored best) weights, objective and diagnosis: the
    metrics.json body (without the closing message)."""
    from torchprac.diagnose import diagnose
    from torchprac.train import evaluate

    t = cfg.trainer
    metrics: dict[str, dict[str, float]] = {}
    if result.status != "diverged":
        for name, split in splits.items():
            ev = evaluate(model, split, int(t.eval_batch_size), autocast)
            metrics[name] = {"loss": float(ev["loss"]), "accuracy": float(ev["accuracy"])}
    objective = objective_of(cfg, metrics)
    if result.status == "diverged":
        objective["value"] = worst(objective["mode"])
    out: dict = {
        "status": result.status,
        "epochs_run": result.epochs_run,
        "best_epoch": result.best_epoch + 1,
        "objective": objective,
        "metrics": metrics,
    }
    if metrics:
        d = diagnose(
            1 - metrics["train"]["accuracy"],
            1 - metrics["dev"]["accuracy"],
            float(cfg.data.bayes_error),
            float(cfg.diagnosis.bias_threshold),
            float(cfg.diagnosis.variance_threshold),
            context={
                "hidden": list(cfg.model.hidden),
                "epochs": int(t.epochs),
                "optimizer": cfg.optimizer.name,
                "activation": cfg.activation.name,
                "batch_norm": cfg.model.get("batch_norm", "none"),
                "reg": reg_cfg(cfg),
                "early_stopping": bool(t.early_stopping.enabled),
                "early_stopped": result.status == "early_stopped",
                "weight_decay": float(cfg.optimizer.get("weight_decay", 0.0) or 0.0),
                "train_subset": cfg.data.get("train_subset"),
                "scheduler": cfg.scheduler.name,
            },
        )
        out["diagnosis"] = {k: v for k, v in d.to_dict().items() if k not in ("train_error", "dev_error")}
        logger.text("diagnosis", d.text())
    return out


def hparam_metrics(metrics: dict, epochs_run: int) -> dict[str, float]:
    """The fixed metric keys of the HParams tab (NaN for a split the run does not have)."""
    hp = {
        f"hparam/{s}_{k}": metrics.get(s, {}).get(k, float("nan"))
        for s in ("train", "dev", "test")
        for k in ("loss", "accuracy")
    }
    hp["hparam/epochs_run"] = float(epochs_run)
    return hp


def _summary(out: dict, run_dir: Path) -> None:
    m = out["metrics"]
    rows = [f"{s:<5} loss {v['loss']:.4f}  accuracy {v['accuracy']:.4f}" for s, v in m.items()]
    log.info("%s", out["message"])  # it starts with the status in words
    for r in rows:
        log.info("  %s", r)
    if "diagnosis" in out:
        d = out["diagnosis"]
        log.info("diagnosis: %s (avoidable bias %.4f, variance %.4f)", d["verdict"], d["avoidable_bias"], d["variance"])
        for r in d["recommendations"]:
            log.info("  - %s", r)
    log.info("run dir: %s  (tensorboard --logdir %s)", run_dir, run_dir)


def main(cfg: DictConfig) -> float:
    """Entry used by train.py and the `torchprac` script: user errors become one paragraph on
    stderr and exit status 2, never a traceback."""
    try:
        return run(cfg)
    except TorchpracError as e:
        _error_once(str(e))
        if _in_multirun():  # one bad job must not end the sweep: it ranks last as failed
            return _failed_job(cfg, e)
        sys.exit(2)
    except Exception as e:
        if not _in_multirun():
            raise  # a bug, not bad input: the traceback is what the developer needs
        # In a sweep one crashing job must not take the others (and the summary) down.
        log.exception("job failed: %s", e)
        return _failed_job(cfg, e)


def _in_multirun() -> bool:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def _failed_job(cfg: DictConfig, e: Exception) -> float:
    """metrics.json with status failed in the job's own Hydra dir (never in another run's dir,
    e.g. one named by paths.run_dir for a resume), and the worst objective for the sweeper."""
    from hydra.core.hydra_config import HydraConfig

    name = str(OmegaConf.select(cfg, "trainer.objective", default="dev/accuracy"))
    mode = "min" if name.endswith("loss") else "max"
    job_dir = Path(HydraConfig.get().runtime.output_dir)
    if run_dir_of(cfg).resolve() == job_dir.resolve():
        write_json(
            job_dir / "metrics.json",
            {
                "status": "failed",
                "epochs_run": 0,
                "best_epoch": 0,
                "objective": {"name": name, "value": worst(mode), "mode": mode},
                "metrics": {},
                "message": str(e),
            },
        )
    return worst(mode)


def _error_once(msg: str) -> None:
    """The paragraph once on stderr, and into train.log: not also through the console log
    handler (Hydra's writes to stdout), so a terminal shows it once."""
    print(f"error: {msg}", file=sys.stderr)
    record = log.makeRecord(log.name, logging.ERROR, __file__, 0, msg, None, None)
    for h in logging.getLogger().handlers:
        if isinstance(h, logging.FileHandler):
            h.handle(record)


__all__ = ["run", "main", "hparams_of"]
