"""Per-layer activation histograms over training, recorded the way diagnose/health.py samples:
forward hooks exist only during a sampled step (armed after the step before it, removed after
it), the histogram is binned where the activations live (torch.histc on the values scaled to
[0, 1] by their own min and max, so no host read is needed to choose the range), and every
statistic of every layer is stacked into ONE tensor read by the host once per sampled step.

Recorded per layer and sampled step: min, max, a `bins`-bucket histogram, mean, std, the
fraction of dead units (ReLU family: input <= 0 on the whole batch) and of saturated ones
(sigmoid/tanh: slope below health.SATURATION_SLOPE of its maximum), as health.py defines them."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from torchprac.diagnose.health import RELU_FAMILY, SATURATION_SLOPE, find_layers

log = logging.getLogger("torchprac")

NATURAL_RANGES = {nn.Sigmoid: (0.0, 1.0), nn.Tanh: (-1.0, 1.0)}
MAX_VALUES = 16384  # values per layer and sample that the distribution statistics read
MAX_KEPT = 400  # samples kept for the figures (older ones thinned beyond this); TensorBoard gets all
_FIXED = 8  # lo, hi, sum, sum of squares, mean, std, dead, saturated


@dataclass
class LayerActivations:
    """One layer's recorded samples, as numpy arrays over the sampled steps."""

    name: str
    act: str  # the activation module's class name
    natural_range: tuple[float, float] | None = None
    steps: list[int] = field(default_factory=list)
    numel: list[int] = field(default_factory=list)
    counts: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))  # (samples, bins)
    lo: np.ndarray = field(default_factory=lambda: np.zeros(0))
    hi: np.ndarray = field(default_factory=lambda: np.zeros(0))
    mean: np.ndarray = field(default_factory=lambda: np.zeros(0))
    std: np.ndarray = field(default_factory=lambda: np.zeros(0))
    dead: np.ndarray | None = None  # None: not a ReLU-family activation
    saturated: np.ndarray | None = None  # None: not sigmoid/tanh

    def edges(self, i: int) -> np.ndarray:
        lo, hi, b = float(self.lo[i]), float(self.hi[i]), self.counts.shape[1]
        return np.linspace(lo, hi, b + 1) if hi > lo else np.linspace(lo - 1e-6, lo + 1e-6, b + 1)

    def density(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """(edges, density) of sample i: counts / (n * bin width), integrating to 1."""
        e = self.edges(i)
        c = self.counts[i]
        return e, c / max(c.sum(), 1) / np.diff(e)


def layer_stats(a: torch.Tensor, z: torch.Tensor, act: nn.Module, bins: int) -> torch.Tensor:
    """One device tensor [lo, hi, sum, sum of squares, mean, std, dead, saturated, counts...]
    of the activations `a` (output of `act`) and its input `z`; NaN for what does not apply.
    Beyond MAX_VALUES values, the distribution statistics are those of an evenly strided subset
    (no random draw), so a sample costs the same at any batch size; dead units use all of `z`."""
    a = a.detach().flatten()
    if a.numel() > MAX_VALUES:
        a = a[:: math.ceil(a.numel() / MAX_VALUES)]
    a = a.float()
    nan = a.new_full((), float("nan"))
    lo, hi = torch.aminmax(a)
    # Scaled by its own range, the histogram needs no host-side min/max (torch.histc takes floats).
    counts = torch.histc((a - lo) / (hi - lo).clamp_min(1e-30), bins, 0.0, 1.0)
    dead = saturated = nan
    if isinstance(act, nn.Sigmoid):
        saturated = (a * (1 - a) < SATURATION_SLOPE * 0.25).float().mean()
    elif isinstance(act, nn.Tanh):
        saturated = (1 - a * a < SATURATION_SLOPE).float().mean()
    elif isinstance(act, RELU_FAMILY):
        z = z.detach()
        alive = (z > 0).transpose(0, 1).flatten(1).any(1) if z.ndim > 1 else (z > 0).any()
        dead = 1.0 - alive.float().mean()
    fixed = torch.stack([lo, hi, a.sum(), a.dot(a), a.mean(), a.std() if a.numel() > 1 else nan, dead, saturated])
    return torch.cat([fixed, counts])


class ActivationRecorder:
    """Samples the activation modules' outputs of the model's layers every `every` optimizer
    steps (the first step included). Drive it with arm()/after_step(); the trainer-facing
    callback is viz.callback.VizCallback."""

    def __init__(self, model: nn.Module, every: int = 100, bins: int = 50, logger=None) -> None:
        self.layers = [layer for layer in find_layers(model) if layer.act is not None]
        # torch.compile'd graphs skip hooks added after capture: no samples rather than stale ones.
        self.enabled = bool(self.layers) and not isinstance(getattr(model, "_orig_mod", None), nn.Module)
        self.every, self.bins, self.logger = max(1, int(every)), int(bins), logger
        self.names = [layer.name for layer in self.layers]
        self.steps: list[int] = []  # the sampled steps (optimizer steps done after each)
        self.rows: list[np.ndarray] = []  # per sample: (layers, 8 + bins) statistics, NaN where missing
        self.handles: list = []
        self.captured: list[torch.Tensor | None] = [None] * len(self.layers)
        self.armed = False

    # -- arming: hooks exist only around a sampled step ----------------------------------------
    def arm(self) -> None:
        if not self.enabled or self.armed:
            return
        self.armed = True
        self.captured = [None] * len(self.layers)
        for i, layer in enumerate(self.layers):
            self.handles.append(layer.act.register_forward_hook(self._hook(i)))

    def disarm(self) -> None:
        self.armed = False
        for h in self.handles:
            h.remove()
        self.handles = []

    def _hook(self, i: int):
        act = self.layers[i].act

        def hook(_m: nn.Module, inputs: tuple, out: torch.Tensor) -> None:
            if self.captured[i] is None and torch.is_grad_enabled():  # the training forward only
                self.captured[i] = layer_stats(out, inputs[0], act, self.bins)

        return hook

    def due(self, step: int) -> bool:
        return step % self.every == 0

    def after_step(self, step: int) -> None:
        """After optimizer step number `step` (1-based count of steps done): collect the sampled
        step if one was armed, and arm for the next one when it is due."""
        if self.armed:
            self.collect(step)
            self.disarm()
        if self.due(step):
            self.arm()

    # -- collecting -----------------------------------------------------------------------------
    def collect(self, step: int) -> None:
        got = [i for i, t in enumerate(self.captured) if t is not None]
        if not got:
            return
        host = torch.stack([self.captured[i] for i in got]).cpu().numpy().astype(np.float64)  # the one host read
        self.captured = [None] * len(self.layers)
        rows = np.full((len(self.layers), _FIXED + self.bins), np.nan)
        rows[got] = host
        self.steps.append(int(step))
        self.rows.append(rows)  # appended, not stacked: a sample costs the same at step 10 and 10 000
        if len(self.steps) > MAX_KEPT:  # keep every other sample (the last one always)
            keep = [*range(0, len(self.steps) - 1, 2), len(self.steps) - 1]
            self.steps, self.rows = [self.steps[i] for i in keep], [self.rows[i] for i in keep]
        if self.logger is None:
            return
        for i in got:
            lo, hi, total, squares = rows[i, :4]
            counts = rows[i, _FIXED:]
            if np.isfinite([lo, hi, total, squares]).all():
                n = int(round(counts.sum()))
                self._histogram(f"activations/{self.names[i]}", lo, hi, n, total, squares, counts, step)

    @property
    def history(self) -> list[LayerActivations]:
        """The samples per layer, as arrays over the sampled steps (what the figures draw)."""
        out = []
        data = np.stack(self.rows) if self.rows else np.zeros((0, len(self.layers), _FIXED + self.bins))
        for i, layer in enumerate(self.layers):
            d = data[:, i]
            ok = np.isfinite(d[:, 0])  # steps where this layer was captured
            d = d[ok]
            counts = d[:, _FIXED:]
            out.append(
                LayerActivations(
                    layer.name,
                    type(layer.act).__name__,
                    NATURAL_RANGES.get(type(layer.act)),
                    [s for s, k in zip(self.steps, ok) if k],
                    [int(round(c)) for c in counts.sum(1)],
                    counts,
                    d[:, 0],
                    d[:, 1],
                    d[:, 4],
                    d[:, 5],
                    dead=d[:, 6] if isinstance(layer.act, RELU_FAMILY) else None,
                    saturated=d[:, 7] if type(layer.act) in NATURAL_RANGES else None,
                )
            )
        return out

    def _histogram(self, tag, lo, hi, n, total, squares, counts, step) -> None:
        # TensorBoard stores right bucket edges; a leading empty bucket marks the left edge.
        if hi > lo:
            limits = np.linspace(lo, hi, len(counts) + 1).tolist()
            c = [0.0, *counts.tolist()]
        else:
            limits, c = [lo, lo], [0.0, float(n)]
        self.logger.writer.add_histogram_raw(tag, lo, hi, n, total, squares, limits, c, step)

    # -- checkpoint state -----------------------------------------------------------------------
    def state_dict(self) -> dict:
        rows = torch.as_tensor(np.stack(self.rows)) if self.rows else torch.zeros(0)
        return {"names": list(self.names), "bins": self.bins, "steps": list(self.steps), "rows": rows}

    def load_state_dict(self, state: dict) -> None:
        if state.get("names") != self.names or state.get("bins") != self.bins:
            return  # another model or bin count: start afresh rather than mix
        self.steps = list(state["steps"])
        self.rows = list(np.asarray(state["rows"], dtype=np.float64))
