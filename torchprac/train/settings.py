"""The trainer group (conf/trainer/default.yaml): its keys' rules and the plain settings
object the run builds the Trainer and its callbacks from."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from torchprac.metrics import Metric
from torchprac.registry import Param, flag, integer, num, one_of, register, section
from torchprac.threads import check_setting

# dev/rmse, dev/mae, dev/r2: regression data (data.task); dev/accuracy there means dev/r2 (train/task.py)
MONITORS = ("dev/loss", "dev/accuracy", "dev/rmse", "dev/mae", "dev/r2")


def _device_rule(v: Any) -> str | None:
    ok = isinstance(v, str) and re.fullmatch(r"auto|cpu|cuda(:\d+)?", v)
    return None if ok else "'auto', 'cpu', 'cuda' or 'cuda:N'"


@dataclass
class EarlyStoppingSettings:
    enabled: bool = True
    monitor: str = "dev/loss"
    mode: str | None = None
    patience: int = 10
    min_delta: float = 0.0
    restore_best: bool = True

    def __post_init__(self) -> None:
        from torchprac.errors import ConfigError

        expected = Metric.parse(self.monitor, "trainer.early_stopping.monitor").mode
        if self.mode not in (None, expected):  # the wrong direction would keep the WORST epoch
            raise ConfigError(
                "trainer.early_stopping.mode", self.mode, f"{expected!r} or null for monitor={self.monitor}"
            )
        self.mode = expected


@dataclass
class HealthSettings:
    enabled: bool = True
    every_n_steps: int = 100
    vanishing_ratio: float = 1000.0
    exploding_norm: float = 1000.0


@dataclass
class TrainerSettings:
    epochs: int = 30
    batch_size: int = 64
    drop_last: bool = False
    device: str = "auto"
    precision: str = "32"
    compile: bool = False
    num_threads: int | str = "auto"
    seed: int = 42
    deterministic: bool = False
    log_every_n_steps: int = 25
    eval_batch_size: int = 4096
    objective: str = "dev/accuracy"
    histograms: bool = True
    progress: Any = "auto"
    gradcheck: bool = False
    early_stopping: EarlyStoppingSettings = field(default_factory=EarlyStoppingSettings)
    checkpoint: bool = True
    resume: str | None = None
    overwrite: bool = False
    health: HealthSettings = field(default_factory=HealthSettings)
    lr_find: bool = False  # run the lr range test first and train with its recommended lr

    @property
    def objective_metric(self) -> Metric:
        return Metric.parse(self.objective, "trainer.objective")

    @property
    def show_progress(self) -> bool | None:
        return None if self.progress == "auto" else bool(self.progress)


@register(
    "trainer",
    "default",
    epochs=integer(1),
    batch_size=integer(1),
    drop_last=flag(),
    device=Param("any", check_fn=_device_rule),
    precision=one_of("32", "bf16-mixed", "16-mixed"),
    compile=flag(),
    num_threads=Param("any", check_fn=check_setting),
    seed=integer(0, 2**32 - 1),  # numpy's seed range
    deterministic=flag(),
    log_every_n_steps=integer(1),
    eval_batch_size=integer(1),
    objective=one_of(*MONITORS),
    histograms=flag(),
    progress=one_of("auto", True, False),
    gradcheck=flag(),
    early_stopping=section(
        enabled=flag(),
        monitor=one_of(*MONITORS),
        mode=one_of("min", "max", optional=True),
        patience=integer(1),
        min_delta=num(0),
        restore_best=flag(),
    ),
    checkpoint=section(enabled=flag()),
    resume=one_of("auto", optional=True),
    overwrite=flag(),
    health=section(
        enabled=flag(),
        every_n_steps=integer(1),
        vanishing_ratio=num(1, lo_open=True),
        exploding_norm=num(0, lo_open=True),
    ),
    lr_find=flag(),
)
def trainer_settings(
    early_stopping: dict | None = None,
    checkpoint: dict | None = None,
    health: dict | None = None,
    **kwargs: Any,
) -> TrainerSettings:
    return TrainerSettings(
        **kwargs,
        early_stopping=EarlyStoppingSettings(**(early_stopping or {})),
        checkpoint=bool((checkpoint or {}).get("enabled", True)),
        health=HealthSettings(**(health or {})),
    )
