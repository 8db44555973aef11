"""Config validation, before anything runs. Each failure is a ConfigError: one paragraph that
names the key, the bad value and what is allowed. Unknown group choices are refused earlier by
Hydra itself, which lists the available options."""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from torchprac.data.splits import check_ratios
from torchprac.errors import ConfigError

REG_NAMES = ("l1", "l2", "elastic", "dropout", "alpha_dropout", "max_norm", "augment")
DATASETS = ("digits", "moons", "circles", "blobs", "mnist1d", "fashion_mnist", "mnist", "cifar10")
_MISSING = object()


def monitor_mode(monitor: str) -> str:
    """The improving direction of a dev metric: losses go down, accuracies go up."""
    return "min" if monitor.endswith("loss") else "max"


def _get(cfg: DictConfig, key: str) -> Any:
    return OmegaConf.select(cfg, key, default=_MISSING)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def number(
    cfg: DictConfig,
    key: str,
    lo: float | None = None,
    hi: float | None = None,
    *,
    lo_open: bool = False,
    hi_open: bool = False,
    integer: bool = False,
    optional: bool = False,
    value: Any = _MISSING,
) -> None:
    v = _get(cfg, key) if value is _MISSING else value
    if v is _MISSING or (v is None and optional):
        return
    lo_s = "" if lo is None else f"{'>' if lo_open else '>='} {lo:g}"
    hi_s = "" if hi is None else f"{'<' if hi_open else '<='} {hi:g}"
    rng = " and ".join(s for s in (lo_s, hi_s) if s)
    allowed = f"{'an integer' if integer else 'a number'}{' ' + rng if rng else ''}"
    if (integer and not _is_int(v)) or (not integer and not _is_num(v)):
        raise ConfigError(key, v, allowed, f"Got a {type(v).__name__}.")
    bad_lo = lo is not None and (v <= lo if lo_open else v < lo)
    bad_hi = hi is not None and (v >= hi if hi_open else v > hi)
    if bad_lo or bad_hi:
        raise ConfigError(key, v, allowed)


def choice(cfg: DictConfig, key: str, allowed: tuple, optional: bool = False) -> None:
    v = _get(cfg, key)
    if v is _MISSING or (v is None and optional):
        return
    if _is_int(v) and str(v) in allowed:  # trainer.precision=32 arrives as an int
        return
    if v not in allowed:
        raise ConfigError(key, v, "one of " + ", ".join(map(repr, allowed)))


def boolean(cfg: DictConfig, key: str) -> None:
    v = _get(cfg, key)
    if v is not _MISSING and not isinstance(v, bool):
        raise ConfigError(key, v, "true or false")


def int_list(cfg: DictConfig, key: str, allow_empty: bool = True) -> None:
    v = _get(cfg, key)
    if v is _MISSING:
        return
    ok = isinstance(v, (ListConfig, list)) and all(_is_int(h) and h >= 1 for h in v)
    if not ok or (not allow_empty and len(v) == 0):
        raise ConfigError(
            key,
            OmegaConf.to_object(v) if isinstance(v, ListConfig) else v,
            "a list of positive integers, e.g. [128, 64]" + ("" if allow_empty else " (non-empty)"),
        )


def validate(cfg: DictConfig) -> None:
    _paths(cfg)
    _trainer(cfg)
    _data(cfg)
    _model(cfg)
    _optimizer(cfg)
    _scheduler(cfg)
    _clip(cfg)
    _init(cfg)
    _activation(cfg)
    _reg(cfg)
    _diagnostics(cfg)


def _paths(cfg: DictConfig) -> None:
    """The run dir must be (or become) a writable folder: checked before anything is written."""
    try:
        run_dir = _get(cfg, "paths.run_dir")
    except Exception:  # ${hydra:...} outside a Hydra app: the caller sets it
        return
    if run_dir in (_MISSING, None):
        return
    path = Path(str(run_dir)).expanduser()
    if path.exists() and not path.is_dir():
        raise ConfigError("paths.run_dir", str(run_dir), "a folder (this path is a file)")
    parent = next((p for p in (path, *path.parents) if p.exists()), None)
    if parent is None or not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError("paths.run_dir", str(run_dir), "a folder that can be created and written")


def _trainer(cfg: DictConfig) -> None:
    number(cfg, "trainer.epochs", 1, integer=True)
    number(cfg, "trainer.batch_size", 1, integer=True)
    number(cfg, "trainer.eval_batch_size", 1, integer=True)
    number(cfg, "trainer.log_every_n_steps", 1, integer=True)
    number(cfg, "trainer.seed", 0, integer=True)
    for key in (
        "drop_last",
        "compile",
        "deterministic",
        "gradcheck",
        "histograms",
        "early_stopping.enabled",
        "early_stopping.restore_best",
        "checkpoint.enabled",
        "health.enabled",
    ):
        boolean(cfg, f"trainer.{key}")
    dev = _get(cfg, "trainer.device")
    if dev is not _MISSING and not (isinstance(dev, str) and re.fullmatch(r"auto|cpu|cuda(:\d+)?", dev)):
        raise ConfigError("trainer.device", dev, "'auto', 'cpu', 'cuda' or 'cuda:N'")
    choice(cfg, "trainer.precision", ("32", "bf16-mixed", "16-mixed"))
    choice(cfg, "trainer.objective", ("dev/accuracy", "dev/loss"))
    choice(cfg, "trainer.progress", ("auto", True, False))
    choice(cfg, "trainer.early_stopping.monitor", ("dev/loss", "dev/accuracy"))
    choice(cfg, "trainer.early_stopping.mode", ("min", "max"), optional=True)
    es_monitor, es_mode = _get(cfg, "trainer.early_stopping.monitor"), _get(cfg, "trainer.early_stopping.mode")
    if es_mode not in (_MISSING, None) and es_monitor is not _MISSING and es_mode != monitor_mode(str(es_monitor)):
        # the wrong direction would keep (and restore) the WORST epoch
        raise ConfigError(
            "trainer.early_stopping.mode",
            es_mode,
            f"{monitor_mode(str(es_monitor))!r} or null for monitor={es_monitor}",
        )
    number(cfg, "trainer.early_stopping.patience", 1, integer=True)
    number(cfg, "trainer.early_stopping.min_delta", 0)
    choice(cfg, "trainer.resume", ("auto",), optional=True)
    number(cfg, "trainer.health.every_n_steps", 1, integer=True)
    number(cfg, "trainer.health.vanishing_ratio", 1, lo_open=True)
    number(cfg, "trainer.health.exploding_norm", 0, lo_open=True)


def _data(cfg: DictConfig) -> None:
    choice(cfg, "data.name", DATASETS)
    split = _get(cfg, "data.split")
    if split is not _MISSING:
        check_ratios(OmegaConf.to_object(split) if isinstance(split, ListConfig) else split)
    boolean(cfg, "data.normalize")
    boolean(cfg, "data.download")
    number(cfg, "data.bayes_error", 0, 1, hi_open=True)
    number(cfg, "data.n_samples", 20, integer=True)
    number(cfg, "data.noise", 0)
    number(cfg, "data.train_subset", 1, integer=True, optional=True)
    cls = _get(cfg, "data.classes")
    if cls not in (_MISSING, None) and not (isinstance(cls, ListConfig) and all(_is_int(c) and c >= 0 for c in cls)):
        raise ConfigError("data.classes", cls, "null or a list of class labels (non-negative integers), e.g. [5, 6]")
    root = _get(cfg, "data.root")
    if root not in (_MISSING, None) and not isinstance(root, str):
        raise ConfigError("data.root", root, "a folder path (string) or null")


def _model(cfg: DictConfig) -> None:
    choice(cfg, "model.name", ("mlp", "cnn"))
    int_list(cfg, "model.hidden")
    int_list(cfg, "model.channels", allow_empty=False)
    choice(cfg, "model.batch_norm", ("none", "before", "after"))
    k = _get(cfg, "model.kernel_size")
    if k is not _MISSING and not (_is_int(k) and k >= 1 and k % 2 == 1):
        raise ConfigError("model.kernel_size", k, "an odd positive integer (1, 3, 5, ...)")


def _optimizer(cfg: DictConfig) -> None:
    number(cfg, "optimizer.lr", 0, lo_open=True)
    number(cfg, "optimizer.momentum", 0, 1, hi_open=True)
    number(cfg, "optimizer.weight_decay", 0)
    number(cfg, "optimizer.eps", 0, lo_open=True)
    number(cfg, "optimizer.alpha", 0, 1)
    number(cfg, "optimizer.rho", 0, 1)
    betas = _get(cfg, "optimizer.betas")
    if betas is not _MISSING:
        ok = isinstance(betas, ListConfig) and len(betas) == 2 and all(_is_num(b) and 0 <= b < 1 for b in betas)
        if not ok:
            raise ConfigError(
                "optimizer.betas",
                OmegaConf.to_object(betas) if isinstance(betas, ListConfig) else betas,
                "two numbers in [0, 1), e.g. [0.9, 0.999]",
            )
    if _get(cfg, "optimizer.nesterov") is True and not (_get(cfg, "optimizer.momentum") or 0) > 0:
        raise ConfigError(
            "optimizer.momentum", _get(cfg, "optimizer.momentum"), "a number in (0, 1) when nesterov=true"
        )


def _scheduler(cfg: DictConfig) -> None:
    choice(cfg, "scheduler.interval", ("step", "epoch"))
    choice(cfg, "scheduler.monitor", ("dev/loss", "dev/accuracy"))
    if _get(cfg, "scheduler.name") == "plateau":  # lr must drop when the monitor stops improving
        monitor = _get(cfg, "scheduler.monitor")
        expected = "min" if str(monitor).endswith("loss") else "max"
        if _get(cfg, "scheduler.mode") != expected:
            raise ConfigError(
                "scheduler.mode", _get(cfg, "scheduler.mode"), f"{expected!r} for scheduler.monitor={monitor}"
            )
    number(cfg, "scheduler.s", 0, lo_open=True)
    number(cfg, "scheduler.c", 0)
    number(cfg, "scheduler.factor", 0, 1, lo_open=True, hi_open=True)
    number(cfg, "scheduler.patience", 0, integer=True)
    number(cfg, "scheduler.pct_start", 0, 1, lo_open=True, hi_open=True)
    number(cfg, "scheduler.warmup_fraction", 0, 1, hi_open=True)
    number(cfg, "scheduler.max_lr", 0, lo_open=True, optional=True)
    number(cfg, "scheduler.start_factor", 0, 1, lo_open=True)
    number(cfg, "scheduler.eta_min", 0)
    number(cfg, "scheduler.T_max", 1, integer=True, optional=True)
    number(cfg, "scheduler.total_steps", 1, integer=True, optional=True)
    number(cfg, "scheduler.div_factor", 0, lo_open=True)
    number(cfg, "scheduler.final_div_factor", 0, lo_open=True)
    number(cfg, "scheduler.threshold", 0)
    number(cfg, "scheduler.min_lr", 0)
    b, v = _get(cfg, "scheduler.boundaries"), _get(cfg, "scheduler.values")
    if b is not _MISSING and v is not _MISSING:
        bl, vl = list(b), list(v)
        if not all(_is_int(x) and x >= 1 for x in bl) or bl != sorted(bl):
            raise ConfigError("scheduler.boundaries", bl, "increasing positive integers, e.g. [10, 20]")
        if len(vl) != len(bl) + 1 or not all(_is_num(x) and x > 0 for x in vl):
            raise ConfigError(
                "scheduler.values", vl, f"{len(bl) + 1} positive learning rates (one more than boundaries)"
            )


def _clip(cfg: DictConfig) -> None:
    choice(cfg, "clip.name", ("none", "norm", "value"))
    number(cfg, "clip.max_norm", 0, lo_open=True)
    number(cfg, "clip.clip_value", 0, lo_open=True)


def _activation(cfg: DictConfig) -> None:
    number(cfg, "activation.negative_slope", 0)
    number(cfg, "activation.alpha", 0, lo_open=True)
    number(cfg, "activation.beta", 0, lo_open=True)
    number(cfg, "activation.init", 0)
    number(cfg, "activation.num_parameters", 1, integer=True)


def _init(cfg: DictConfig) -> None:
    number(cfg, "init.mean")
    choice(cfg, "init.mode", ("fan_in", "fan_out"))
    choice(cfg, "init.nonlinearity", ("relu", "leaky_relu", "linear", "tanh", "sigmoid", "selu"))
    number(cfg, "init.std", 0, lo_open=True)
    number(cfg, "init.gain", 0, lo_open=True)


def _keep_prob(cfg: DictConfig, key: str, n_hidden: int | None, scalar_only: bool = False) -> None:
    v = _get(cfg, key)
    if v is _MISSING:
        return
    if isinstance(v, ListConfig) and scalar_only:
        raise ConfigError(
            key, list(v), "a single number in (0, 1] (one keep_prob for all inputs; per-layer lists go in keep_prob)"
        )
    if isinstance(v, ListConfig):
        if n_hidden is not None and len(v) != n_hidden:
            raise ConfigError(
                key,
                list(v),
                f"a scalar or a list with one keep_prob per hidden layer "
                f"({n_hidden} here: model.hidden={list(_get(cfg, 'model.hidden'))})",
            )
        for x in v:
            number(cfg, key, 0, 1, lo_open=True, value=x)
    else:
        number(cfg, key, 0, 1, lo_open=True)


def _reg(cfg: DictConfig) -> None:
    reg = _get(cfg, "reg")
    if reg in (_MISSING, None):
        return
    if not isinstance(reg, DictConfig):
        raise ConfigError("reg", reg, "a list of choices, e.g. reg=[l2,dropout] or reg=[]")
    for name in reg:
        if name not in REG_NAMES:
            value = OmegaConf.to_object(reg[name]) if isinstance(reg[name], DictConfig) else reg[name]
            raise ConfigError(f"reg.{name}", value, "regularizers " + ", ".join(REG_NAMES))
    if "dropout" in reg and "alpha_dropout" in reg:
        raise ConfigError("reg", list(reg), "at most one of dropout and alpha_dropout")
    hidden = _get(cfg, "model.hidden")
    n_hidden = len(hidden) if isinstance(hidden, ListConfig) else None
    number(cfg, "reg.l2.strength", 0)
    number(cfg, "reg.l1.strength", 0)
    number(cfg, "reg.elastic.l1", 0)
    number(cfg, "reg.elastic.l2", 0)
    _keep_prob(cfg, "reg.dropout.keep_prob", n_hidden)
    _keep_prob(cfg, "reg.dropout.input_keep_prob", None, scalar_only=True)
    _keep_prob(cfg, "reg.alpha_dropout.keep_prob", n_hidden)
    _keep_prob(cfg, "reg.alpha_dropout.input_keep_prob", None, scalar_only=True)
    number(cfg, "reg.max_norm.r", 0, lo_open=True)
    number(cfg, "reg.augment.shift", 0, integer=True)
    number(cfg, "reg.augment.noise", 0)
    boolean(cfg, "reg.augment.flip")


def _diagnostics(cfg: DictConfig) -> None:
    """mode, transfer learning (issue: diagnostics, presets, transfer learning)."""
    choice(cfg, "mode", ("train", "gradcheck"))
    number(cfg, "diagnosis.bias_threshold", 0, 1)
    number(cfg, "diagnosis.variance_threshold", 0, 1)
    pre = _get(cfg, "model.pretrained")
    if pre not in (_MISSING, None) and not (isinstance(pre, str) and pre):
        raise ConfigError("model.pretrained", pre, "null or the path of a run dir or checkpoint (.pt)")
    if isinstance(pre, str) and pre and not Path(pre).expanduser().exists():
        raise ConfigError(
            "model.pretrained", pre, "an existing run dir or checkpoint (.pt)", "That path does not exist."
        )
    number(cfg, "transfer.reuse_layers", 1, integer=True, optional=True)
    number(cfg, "transfer.freeze_epochs", 0, integer=True)
    number(cfg, "transfer.unfreeze_lr_factor", 0, lo_open=True)
