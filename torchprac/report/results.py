"""The metrics.json body (DESIGN schema): final evaluation of every split with the weights the
run ends on, the objective, the bias/variance diagnosis; and the printed summary."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from torchprac.diagnose import diagnose
from torchprac.metrics import Metric, Status
from torchprac.train import evaluate
from torchprac.train.task import task_of

log = logging.getLogger("torchprac")


def objective_of(metric: Metric, metrics: dict, status: Status) -> dict[str, Any]:
    value = metrics.get(metric.split, {}).get(metric.name, float("nan"))
    if status in (Status.DIVERGED, Status.FAILED):
        value = metric.worst()  # ranks last in a sweep; written to metrics.json as null
    return {"name": str(metric), "value": value, "mode": metric.mode}


def results(rc, model, splits, result, autocast) -> dict[str, Any]:
    """`rc`: config.RunConfig; `result`: the Trainer's FitResult."""
    metrics: dict[str, dict[str, float]] = {}
    task = task_of(splits)  # classification: loss, accuracy; regression: loss (MSE), rmse, mae, r2
    if result.status != Status.DIVERGED:
        for name, split in splits.items():
            ev = evaluate(model, split, rc.trainer.eval_batch_size, autocast, task)
            metrics[name] = {k: float(ev[k]) for k in task.names}
    out: dict[str, Any] = {
        "status": str(result.status),
        "epochs_run": result.epochs_run,
        "best_epoch": result.best_epoch + 1,
        "objective": objective_of(task.metric(rc.trainer.objective_metric), metrics, result.status),
        "metrics": metrics,
    }
    if metrics:
        d = diagnose(  # regression: the errors are the train/dev losses (data.bayes_error in their units)
            task.error(metrics["train"]),
            task.error(metrics["dev"]),
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
        log.info("  %s", f"{s:<5} " + "  ".join(f"{k} {x:.4f}" for k, x in v.items()))
    if "diagnosis" in out:
        d = out["diagnosis"]
        log.info("diagnosis: %s (avoidable bias %.4f, variance %.4f)", d["verdict"], d["avoidable_bias"], d["variance"])
        for r in d["recommendations"]:
            log.info("  - %s", r)
    if run_dir is not None:
        log.info("run dir: %s  (tensorboard --logdir %s)", run_dir, run_dir)


def report_run(
    rc, trainer, result, model, splits, precision, logger, run_dir: Path, is_main: bool, t_start: float, extras
):
    """Everything a finished fit reports: the metrics.json body (+ health, gradcheck, lr_find,
    threads, timing, hparams), history.json, the run's figures, the HParams row and the printed
    summary. `extras`: health monitor, gradcheck report, lr_find result, thread choice, fit seconds."""
    import time

    from torchprac.files import write_json
    from torchprac.report.hparams import hparam_metrics, hparams_of
    from torchprac.report.sweep_hparams import log_run_hparams, run_hparams

    out = results(rc, model, splits, result, precision.autocast)
    logger.text("diagnosis", out.pop("_diagnosis_text", ""))
    health, gradcheck, found = extras["health"], extras["gradcheck"], extras["lr_find"]
    if health is not None:
        out["health"] = {"warnings": health.warnings}
    if gradcheck is not None:
        out["gradcheck"] = {k: v for k, v in gradcheck.to_dict().items() if k != "rows"}
    if found is not None:
        out["lr_find"] = found.record
    out["message"] = result.message
    out["threads"] = extras["threads"].to_dict()
    out["timing"] = {"fit_s": round(extras["fit_s"], 4), "total_s": round(time.perf_counter() - t_start, 4)}
    out["hparams"] = run_hparams(hparams_of(rc, trainer.batch_size), out["status"])
    if is_main:
        write_json(run_dir / "history.json", result.history)
        if rc.viz is not None and rc.viz.enabled:  # figures/ and per-class accuracy
            from torchprac.viz.callback import VizCallback
            from torchprac.viz.run_figures import write_run_figures

            viz = next((cb for cb in trainer.callbacks if isinstance(cb, VizCallback)), None)
            extra = write_run_figures(
                rc.viz, run_dir, model, splits, result, out, rc.data.bayes_error, precision.autocast, logger, viz
            )
            out.update(extra)
        out["timing"]["total_s"] = round(time.perf_counter() - t_start, 4)  # the figures included
        write_json(run_dir / "metrics.json", out)
    hp_metrics = hparam_metrics(out["metrics"], result.epochs_run, trainer.task.names)
    log_run_hparams(logger, out["hparams"], hp_metrics, in_sweep=rc.viz is not None and rc.viz.in_sweep)
    print_summary(out, run_dir)
    return out
