"""The viz group (conf/viz/default.yaml): which pictures a run draws and how often, and the
run's TensorBoard name inside a sweep (set by config.py from Hydra's job overrides)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from torchprac.registry import flag, integer, one_of, register, section

# every_n_epochs null: about this many decision-boundary images per run.
AUTO_IMAGES = 10
# every_n_steps null: at most one sampled step in this many. A sample costs ~0.6 of a training
# step of the bench model at batch 64 (bench/bench_viz.py), so this bounds the cost at ~4% of an
# epoch even when a short run's `samples` would fall in one epoch.
AUTO_MIN_EVERY = 16


@dataclass
class ActivationSettings:
    enabled: bool = True
    every_n_steps: int | None = None  # None: about `samples` sampled steps over the run, at most 1 in 16
    samples: int = 100
    bins: int = 50

    def every(self, total_steps: int) -> int:
        if self.every_n_steps is not None:
            return self.every_n_steps
        return max(AUTO_MIN_EVERY, math.ceil(total_steps / max(self.samples, 1)))


@dataclass
class VizSettings:
    enabled: bool = True
    every_n_epochs: int | None = None  # decision-boundary images; None: about AUTO_IMAGES per run
    decision_boundary: bool = True  # 2-feature data only
    grid: int = 200
    activations: ActivationSettings = field(default_factory=ActivationSettings)
    confusion: bool = True
    learning_curves: bool = True
    layout: bool = True  # TensorBoard custom-scalars layout: train and dev on one chart
    epoch_log: Any = "auto"  # one log line per epoch: auto (when no progress bar), true, false
    # End-of-run figures in a background process (viz/painter.py): auto = in a sweep run by
    # Hydra's basic launcher when the run's threads leave a core free; true; false.
    background: Any = "auto"
    # Set by config.py in a multirun: the job's TensorBoard run name (its overrides) and that
    # it is one job of a sweep (the sweep writes the HParams experiment summary once).
    run_name: str | None = None
    in_sweep: bool = False
    in_basic_sweep: bool = False  # ... whose jobs run one after another in this process (Hydra's basic launcher)

    def image_every(self, epochs: int) -> int:
        if self.every_n_epochs is not None:
            return self.every_n_epochs
        return max(1, math.ceil(epochs / AUTO_IMAGES))


@register(
    "viz",
    "default",
    enabled=flag(),
    every_n_epochs=integer(1, optional=True),
    decision_boundary=flag(),
    grid=integer(20, 1000),
    activations=section(
        enabled=flag(),
        every_n_steps=integer(1, optional=True),
        samples=integer(2),
        bins=integer(4, 512),
    ),
    confusion=flag(),
    learning_curves=flag(),
    layout=flag(),
    epoch_log=one_of("auto", True, False),
    background=one_of("auto", True, False),
)
def viz_settings(activations: dict | None = None, **kwargs: Any) -> VizSettings:
    return VizSettings(**kwargs, activations=ActivationSettings(**(activations or {})))
