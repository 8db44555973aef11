"""Gradient health: per-layer statistics every N steps, and plain warnings when gradients
vanish, explode or stop being finite.

"Layer" means a top-level stage of the model that holds parameters (layer1, layer2, ...,
conv1, fc1, head); its gradient norm, weight norm and update/weight ratio are those of its
weight matrix or kernel, its activation statistics those of its activation module.

Cost: nothing on the steps in between. Forward hooks exist only during a sampled step (armed
after the previous step, removed after the sampled one), every statistic stays a device
tensor until one host read per sampled step.
"""

from __future__ import annotations

import logging
import math

import torch
from torch import nn

from torchprac.nn.init import WEIGHT_LAYERS
from torchprac.train.callbacks import Callback
from torchprac.utils import unwrap

log = logging.getLogger("torchprac")

SATURATING = (nn.Sigmoid, nn.Tanh)
RELU_FAMILY = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU)  # "dead": input <= 0 on the whole batch
ACTIVATIONS = (
    SATURATING
    + RELU_FAMILY
    + (nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU, nn.Softplus, nn.Mish, nn.Identity, nn.Hardtanh)
)
# A unit is saturated where the activation's slope is below this fraction of its maximum slope
# (sigmoid: a < 0.0127 or a > 0.987, |z| > 4.4; tanh: |a| > 0.975, |z| > 2.2).
SATURATION_SLOPE = 0.05


class _Layer:
    def __init__(self, name: str, weight: nn.Parameter, act: nn.Module | None) -> None:
        self.name, self.weight, self.act = name, weight, act
        self.kind = "saturating" if isinstance(act, SATURATING) else "relu" if isinstance(act, RELU_FAMILY) else "other"
        self.stats: dict[str, torch.Tensor] = {}
        # one function object per layer for the whole run (torch.compile guards on hook identity)
        self.hook = HealthMonitor._hook(self)


def find_layers(model: nn.Module) -> list[_Layer]:
    """Input-to-output list of layers: top-level children with a weight layer (the project's
    Sequential models), else every weight layer of an arbitrary model."""
    base = unwrap(model)
    layers = []
    for name, child in base.named_children():
        weights = [m for m in child.modules() if isinstance(m, WEIGHT_LAYERS)]
        if weights:
            act = next((m for m in child.modules() if isinstance(m, ACTIVATIONS)), None)
            layers.append(_Layer(name, weights[0].weight, act))
    if not layers:
        layers = [_Layer(n, m.weight, None) for n, m in base.named_modules() if isinstance(m, WEIGHT_LAYERS)]
    return layers


class HealthMonitor(Callback):
    """Logs health/<stat>/<layer> every `every_n_steps` optimizer steps (step 0 included, so
    the state at initialisation is always seen) and warns once per run per kind of problem."""

    def __init__(
        self,
        model: nn.Module,
        logger=None,
        every_n_steps: int = 100,
        vanishing_ratio: float = 1000.0,
        exploding_norm: float = 1000.0,
        stalled_ratio: float = 1e-6,
    ) -> None:
        self.stalled_ratio = float(stalled_ratio)
        self.layers = find_layers(model)
        # A torch.compile'd graph does not call hooks added after it was captured: activation
        # statistics would silently stop after step 0, so they are off under compile.
        self.activations = not isinstance(getattr(model, "_orig_mod", None), nn.Module)
        if not self.activations:
            log.info(
                "health: activation statistics are off under trainer.compile=true "
                "(gradient, weight and update statistics are kept)"
            )
        self.logger, self.every = logger, max(1, int(every_n_steps))
        self.vanishing_ratio, self.exploding_norm = float(vanishing_ratio), float(exploding_norm)
        self.armed = False
        self.handles: list = []
        self.warned: set[str] = set()
        self.warnings: list[str] = []
        self.last: dict[str, float] = {}  # the latest sampled step's statistics (host floats)
        self._grad: torch.Tensor | None = None
        self._snap: list[torch.Tensor] = []
        self._has: list[bool] = []

    # -- arming: hooks exist only around a sampled step ---------------------------------------
    def _arm(self) -> None:
        self.armed = True
        for layer in self.layers:
            layer.stats = {}
            if layer.act is not None and self.activations:
                self.handles.append(layer.act.register_forward_hook(layer.hook))

    def _disarm(self) -> None:
        self.armed = False
        for h in self.handles:
            h.remove()
        self.handles = []

    @staticmethod
    def _hook(layer: _Layer):
        def hook(_m: nn.Module, inputs: tuple, out: torch.Tensor) -> None:
            if layer.stats or not torch.is_grad_enabled():  # first training forward only
                return
            a = out.detach().float()
            s = {"act_mean": a.mean(), "act_std": a.std()}
            if isinstance(layer.act, nn.Sigmoid):
                s["saturated"] = (a * (1 - a) < SATURATION_SLOPE * 0.25).float().mean()
            elif isinstance(layer.act, nn.Tanh):
                s["saturated"] = (1 - a * a < SATURATION_SLOPE).float().mean()
            elif layer.kind == "relu":
                # dead unit: its input is <= 0 for every example (and position) of the batch
                z = inputs[0].detach()
                alive = (z > 0).transpose(0, 1).flatten(1).any(1) if z.ndim > 1 else (z > 0).any()
                s["dead"] = 1.0 - alive.float().mean()
            layer.stats = s

        return hook

    # -- trainer hooks ----------------------------------------------------------------------
    def on_fit_start(self, trainer) -> None:
        if trainer.dist.is_main and trainer.global_step % self.every == 0:
            self._arm()

    def on_before_step(self, trainer) -> None:
        if not self.armed:
            return
        ws = [layer.weight for layer in self.layers]
        nan = torch.full((), float("nan"), device=ws[0].device)
        self._has = [w.grad is not None for w in ws]
        self._grad = torch.stack([w.grad.detach().float().norm() if w.grad is not None else nan for w in ws])
        self._snap = [w.detach().clone() for w in ws]

    def on_after_step(self, trainer) -> None:
        if self.armed:  # statistics of the step that started at global_step - 1 (0: initialisation)
            self._collect(trainer.global_step - 1)
            self._disarm()
        if trainer.dist.is_main and trainer.global_step % self.every == 0:
            self._arm()

    def on_fit_end(self, trainer, result) -> None:
        self._disarm()

    # -- statistics and warnings --------------------------------------------------------------
    def _collect(self, step: int) -> None:
        if self._grad is None:  # the step was skipped (e.g. no backward)
            return
        ws = [layer.weight.detach() for layer in self.layers]
        w_before = torch.stack([s.float().norm() for s in self._snap])
        w_now = torch.stack([w.float().norm() for w in ws])
        upd = torch.stack([(w - s).float().norm() for w, s in zip(ws, self._snap)]) / w_before.clamp_min(1e-12)
        keys, vals = [], []
        for i, layer in enumerate(self.layers):
            keys += [
                f"health/grad_norm/{layer.name}",
                f"health/weight_norm/{layer.name}",
                f"health/update_ratio/{layer.name}",
            ]
            vals += [self._grad[i], w_now[i], upd[i]]
            for k, v in layer.stats.items():
                keys.append(f"health/{k}/{layer.name}")
                vals.append(v)
        host = torch.stack(vals).tolist()  # the one host read of this sampled step
        stats = dict(zip(keys, host))
        self._grad, self._snap = None, []
        self.last = stats
        if self.logger is not None:
            self.logger.scalars({k: v for k, v in stats.items() if math.isfinite(v)}, step)
        self._check(stats, step)

    def _check(self, stats: dict[str, float], step: int) -> None:
        # layers without a gradient (frozen by transfer learning) take no part
        grads = [
            (layer.name, stats[f"health/grad_norm/{layer.name}"]) for layer, has in zip(self.layers, self._has) if has
        ]
        nonfinite = [n for n, g in grads if not math.isfinite(g)]
        if nonfinite:
            self._warn(
                "nonfinite",
                f"non-finite gradients (inf/nan) at step {step} in "
                f"{', '.join(nonfinite)}. The update corrupts the weights: lower optimizer.lr, "
                "use clip=norm, check the inputs for nan, or use trainer.precision=32.",
            )
        finite = [(n, g) for n, g in grads if math.isfinite(g)]
        if len(finite) < 2:
            return
        (first, g0), (last, g1) = finite[0], finite[-1]
        if all(g == 0 for _, g in finite):
            self._warn(
                "zero",
                f"no gradient at step {step}: every layer's weight gradient is exactly 0, "
                "so no weight matrix learns (only biases can). Symmetric weights, e.g. init=zeros, "
                "or dead units (health/dead/*): use a random init such as init=he_normal.",
            )
        if g1 > 0 and g0 * self.vanishing_ratio <= g1:
            ratio = "" if g0 == 0 else f", {g1 / g0:.1e}x smaller"
            self._warn(
                "vanishing",
                f"vanishing gradients at step {step}: the first layer's gradient "
                f"norm ({first}: {g0:.2e}{ratio}) is far below the last layer's ({last}: "
                f"{g1:.2e}), so the early layers barely learn. Try a non-saturating activation "
                "(relu, elu) with init=he_normal, batch norm (model.batch_norm=before), or a "
                "shallower network.",
            )
        ratios = [stats.get(f"health/update_ratio/{layer.name}", math.nan) for layer in self.layers]
        ratios = [r for r in ratios if math.isfinite(r)]
        if ratios and 0 < max(ratios) < self.stalled_ratio and not all(g == 0 for _, g in finite):
            # Every layer moves by less than stalled_ratio of its norm per step (healthy: ~1e-3):
            # the first/last comparison above misses a net whose gradients are ALL tiny.
            self._warn(
                "stalled",
                f"training is stalled at step {step}: the largest update/weight ratio of any layer is "
                f"{max(ratios):.1e} (healthy nets: ~1e-4 to 1e-2) and the largest gradient norm "
                f"{max(g for _, g in finite):.1e}, so no layer learns. The initial weights are probably far "
                "too small for this depth (use init=he_normal for relu, xavier for tanh), or optimizer.lr is "
                "far too low.",
            )
        worst_n, worst_g = max(finite, key=lambda t: t[1])
        if worst_g >= self.exploding_norm:
            self._warn(
                "exploding",
                f"exploding gradients at step {step}: gradient norm {worst_g:.2e} "
                f"in {worst_n} (first layer {g0:.2e}, last {g1:.2e}). Use clip=norm, a smaller "
                "init scale (init=he_normal or xavier_normal), batch norm, or a lower optimizer.lr.",
            )

    def _warn(self, kind: str, msg: str) -> None:
        if kind in self.warned:
            return
        self.warned.add(kind)
        self.warnings.append(msg)
        log.warning("%s", msg)
        if self.logger is not None:
            self.logger.text("health/warnings", "\n\n".join(self.warnings))
