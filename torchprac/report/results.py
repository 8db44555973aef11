"""The metrics.json body (DESIGN schema): final evaluation of every split with the weights the
run ends on, the objective, the bias/variance diagnosis; and the printed summary."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from torchprac.diagnose import diagnose
from torchprac.metrics import Metric, Status
from torchprac.train import evaluate

log = logging.getLogger("torchprac")


def objective_of(metric: Metric, metrics: dict, status: Status) -> dict[str, Any]:
    value = metrics.get(metric.split, {}).get(metric.name, float("nan"))
    if status in (Status.DIVERGED, Status.FAILED):
        value = metric.worst()  # ranks last in a sweep; written to metrics.json as null
    return {"name": str(metric), "value": value, "mode": metric.mode}


def results(rc, model, splits, result, autocast) -> dict[str, Any]:
    """`rc`: config.RunConfig; `result`: the Trainer's FitResult."""
    metrics: dict[str, dict[str, float]] = {}
    if result.status != Status.DIVERGED:
        for name, split in splits.items():
            ev = evaluate(model, split, rc.trainer.eval_batch_size, autocast)
            metrics[name] = {"loss": float(ev["loss"]), "accuracy": float(ev["accuracy"])}
    out: dict[str, Any] = {
        "status": str(result.status),
        "epochs_run": result.epochs_run,
        "best_epoch": result.best_epoch + 1,
        "objective": objective_of(rc.trainer.objective_metric, metrics, result.status),
        "metrics": metrics,
    }
    if metrics:
        d = diagnose(
            1 - metrics["train"]["accuracy"],
            1 - metrics["dev"]["accuracy"],
            rc.data.bayes_error,
            rc.diagnosis.bias_threshold,
            rc.diagnosis.variance_threshold,
            context=diagnosis_context(rc, result),
        )
        out["diagnosis"] = {k: v for k, v in d.to_dict().items() if k not in ("train_error", "dev_error")}
        out["_diagnosis_text"] = d.text()
    return out


def diagnosis_context(rc, result) -> dict[str, Any]:
    """What the run already uses, so the recipe never suggests what is on as if it were off."""
    t = rc.trainer
    return {
        "hidden": list(rc.model.hidden),
        "epochs": t.epochs,
        "optimizer": rc.optimizer.name,
        "activation": rc.choices.get("activation"),
        "batch_norm": rc.model.batch_norm,
        "reg": dict(rc.raw.get("reg") or {}),
        "early_stopping": t.early_stopping.enabled,
        "early_stopped": result.status == Status.EARLY_STOPPED,
        "weight_decay": rc.optimizer.weight_decay,
        "train_subset": rc.data.train_subset,
        "scheduler": rc.schedule.name,
    }


def print_summary(out: dict, run_dir: Path | None) -> None:
    log.info("%s", out["message"])  # it starts with the status in words
    for s, v in out["metrics"].items():
        log.info("  %s", f"{s:<5} loss {v['loss']:.4f}  accuracy {v['accuracy']:.4f}")
    if "diagnosis" in out:
        d = out["diagnosis"]
        log.info("diagnosis: %s (avoidable bias %.4f, variance %.4f)", d["verdict"], d["avoidable_bias"], d["variance"])
        for r in d["recommendations"]:
            log.info("  - %s", r)
    if run_dir is not None:
        log.info("run dir: %s  (tensorboard --logdir %s)", run_dir, run_dir)
