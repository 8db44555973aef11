"""Gallery 4, optimizer paths: sgd, momentum, nesterov, rmsprop and adam on two 2-parameter
surfaces — an elongated quadratic (a ravine, condition number 100) and Rosenbrock's valley —
drawn over their contours. Each optimizer is built through the optimizer group
(`torchprac.build("optimizer", name, lr=...)`: the same checked OptimizerSpec a run builds)
and its real torch.optim class steps an nn.Module holding the two coordinates, so what is
drawn is torch's own update (Adam's bias correction included).

No sweep: `python -m torchprac.gallery paths` computes and draws it (a few seconds)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from torchprac.gallery import plots

PRESET = None
OPTIMIZERS = ("sgd", "momentum", "nesterov", "rmsprop", "adam")
KAPPA = 100.0  # the quadratic's condition number


@dataclass(frozen=True)
class Surface:
    name: str
    f: Callable[[torch.Tensor], torch.Tensor]
    start: tuple[float, float]
    minimum: tuple[float, float]
    steps: int
    tol: float  # "reached": f - f_min below this
    box: tuple[float, float, float, float]  # x0, x1, y0, y1 of the contour plot
    lrs: tuple[float, ...]  # the learning rates tried


def _quadratic(p: torch.Tensor) -> torch.Tensor:
    return 0.5 * (p[..., 0] ** 2 + KAPPA * p[..., 1] ** 2)


def _rosenbrock(p: torch.Tensor) -> torch.Tensor:
    return (1 - p[..., 0]) ** 2 + 100 * (p[..., 1] - p[..., 0] ** 2) ** 2


# Learning rates: factors of 2 on the cheap quadratic (gd's best, 2/(1 + KAPPA), lies between
# two of them), factors of √10 on Rosenbrock (2000 steps each).
QUADRATIC = Surface(
    "quadratic ½(x² + 100y²)",
    _quadratic,
    (-4.0, 1.0),
    (0.0, 0.0),
    600,
    1e-4,
    (-4.6, 1.2, -1.3, 1.3),
    tuple(float(2.0**k) for k in range(-13, 2)),
)
ROSENBROCK = Surface(
    "Rosenbrock (1-x)² + 100(y-x²)²",
    _rosenbrock,
    (-1.2, 1.0),
    (1.0, 1.0),
    2000,
    1e-4,
    (-1.6, 1.5, -0.4, 1.6),
    tuple(float(10 ** (k / 2)) for k in range(-8, 1)),
)
SURFACES = (QUADRATIC, ROSENBROCK)


class Point(nn.Module):
    """The two coordinates as one parameter: the 'model' the optimizer steps."""

    def __init__(self, start: tuple[float, float]) -> None:
        super().__init__()
        self.p = nn.Parameter(torch.tensor(start, dtype=torch.float64))


CONF = Path(__file__).resolve().parents[2] / "conf" / "optimizer"


def settings(name: str) -> dict:
    """What `optimizer=<name>` sets on the command line (conf/optimizer/<name>.yaml: e.g.
    momentum 0.9, rmsprop's alpha 0.9), without its lr and name."""
    import yaml

    f = CONF / f"{name}.yaml"
    node = yaml.safe_load(f.read_text()) if f.is_file() else {}
    return {k: v for k, v in (node or {}).items() if k not in ("name", "lr")}


def make_optimizer(name: str, lr: float, module: nn.Module) -> torch.optim.Optimizer:
    """The optimizer group's choice `name` with its conf/ settings at `lr`, checked and built as
    a run builds it; its torch class and keyword arguments drive the module's parameters (one
    group: no weight decay here, so the run's weights/no_decay split does not matter)."""
    import torchprac

    spec = torchprac.build("optimizer", name, **{**settings(name), "lr": lr})
    return spec.cls(module.parameters(), **spec.kwargs)


_CACHE: dict[tuple, np.ndarray] = {}


def path(surface: Surface, name: str, lr: float, steps: int | None = None, stop_at_tol: bool = False) -> np.ndarray:
    """(steps + 1, 2) coordinates from the start, NaN after it blows up (or, with stop_at_tol,
    after it reaches the tolerance)."""
    key = (surface.name, name, lr, steps, stop_at_tol)
    if key in _CACHE:
        return _CACHE[key]
    pt = Point(surface.start)
    opt = make_optimizer(name, lr, pt)
    n = surface.steps if steps is None else steps
    out = np.full((n + 1, 2), np.nan)
    out[0] = surface.start
    for t in range(n):
        opt.zero_grad()
        loss = surface.f(pt.p)
        if stop_at_tol and float(loss.detach()) <= surface.tol:
            break
        loss.backward()
        opt.step()
        xy = pt.p.detach().numpy()
        if not np.isfinite(xy).all() or np.abs(xy).max() > 1e6:
            break
        out[t + 1] = xy
    _CACHE[key] = out
    return out


def values(surface: Surface, xy: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return surface.f(torch.as_tensor(xy)).numpy()


def steps_to_tol(surface: Surface, xy: np.ndarray) -> int | None:
    f = values(surface, xy)
    hit = np.flatnonzero(np.isfinite(f) & (f <= surface.tol))
    return int(hit[0]) if len(hit) else None


def sign_changes(xy: np.ndarray, upto: int | None, coord: int = 1) -> int:
    """How often the steep coordinate (y) changes sign before the tolerance is reached: the
    zig-zag across the ravine."""
    y = xy[: (upto or len(xy)) + 1, coord]
    y = y[np.isfinite(y)]
    return int(np.sum(np.signbit(y[1:]) != np.signbit(y[:-1])))


def measure(root: Path | None = None) -> dict:
    out: dict = {"surfaces": {}}
    for s in SURFACES:
        table: dict = {}
        for name in OPTIMIZERS:
            per_lr = {}
            for lr in s.lrs:
                xy = path(s, name, lr, stop_at_tol=True)
                n = steps_to_tol(s, xy)
                f_end = values(s, xy[np.isfinite(xy).all(1)][-1:])[0]
                per_lr[str(lr)] = {
                    "steps": n,
                    "final_f": float(f_end),
                    "blew_up": n is None and bool(np.isnan(xy[-1]).any()),
                }
            reached = [(v["steps"], float(lr)) for lr, v in per_lr.items() if v["steps"] is not None]
            best = min(reached)[1] if reached else min(per_lr, key=lambda k: per_lr[k]["final_f"])
            best = float(best)
            xy = path(s, name, best, stop_at_tol=True)
            n = steps_to_tol(s, xy)
            table[name] = {
                "per_lr": per_lr,
                "best_lr": best,
                "steps": n,
                "y_sign_changes": sign_changes(xy, n) if s is QUADRATIC else None,
                "working_lrs": [float(lr) for lr, v in per_lr.items() if v["steps"] is not None],
            }
        out["surfaces"][s.name] = {"tol": s.tol, "max_steps": s.steps, "optimizers": table}
    # One step size for sgd and momentum on the quadratic: does momentum damp the zig-zag?
    # sgd at lr multiplies y by (1 - lr*KAPPA) = -0.75 per step (a zig-zag). torch's momentum
    # accumulates v = βv + g, 1/(1-β) = 10x the course's average v = βv + (1-β)g, so the course's
    # momentum at lr is torch's at lr*(1-β): both are measured.
    lr = 1.75 / KAPPA
    same = {}
    for label, name, at in (
        ("sgd", "sgd", lr),
        ("momentum, same torch lr", "momentum", lr),
        ("momentum, course's average (torch lr × (1-β))", "momentum", lr * (1 - 0.9)),
    ):
        xy = path(QUADRATIC, name, at, stop_at_tol=True)
        n = steps_to_tol(QUADRATIC, xy)
        same[label] = {
            "lr": at,
            "steps": n,
            "y_sign_changes": sign_changes(xy, n),
            "y_max_after_10": float(np.nanmax(np.abs(xy[10:40, 1]))),
        }
    out["same_step"] = same
    # Adam's first step is lr * sign(gradient) in every coordinate (bias-corrected moments).
    first = path(QUADRATIC, "adam", 0.1, steps=1)
    out["adam_first_step"] = (first[1] - first[0]).tolist()
    return out


def draw(root: Path | None, numbers: dict):
    from matplotlib.colors import LogNorm

    fig = plots.figure(15, 10)
    axes = fig.subplots(2, 2)
    for col, s in enumerate(SURFACES):
        ax = axes[0, col]
        x0, x1, y0, y1 = s.box
        xx, yy = np.meshgrid(np.linspace(x0, x1, 300), np.linspace(y0, y1, 300))
        zz = values(s, np.stack([xx, yy], -1)) + 1e-3
        ax.contour(
            xx, yy, zz, levels=np.geomspace(zz.min() * 1.5, zz.max(), 18), norm=LogNorm(), cmap="Greys", linewidths=0.7
        )
        table = numbers["surfaces"][s.name]["optimizers"]
        for i, name in enumerate(OPTIMIZERS):
            t = table[name]
            xy = path(s, name, t["best_lr"], stop_at_tol=True)
            stop = (t["steps"] or s.steps) + 1
            steps = f"{t['steps']} steps" if t["steps"] is not None else f"not in {s.steps}"
            ax.plot(
                *xy[:stop].T,
                "-",
                color=plots.class_color(i),
                lw=1.3,
                marker=".",
                ms=2.5,
                label=f"{name} lr={t['best_lr']:.3g}: {steps}",
            )
        ax.plot(*s.start, "ko", ms=6)
        ax.plot(*s.minimum, "k*", ms=12)
        ax.set_xlim(x0, x1)
        ax.set_ylim(y0, y1)
        ax.set_title(f"{s.name}: each optimizer at its best lr (to f - f* < {s.tol:g})", fontsize=10)
        ax.legend(fontsize=8, loc="lower right" if col == 0 else "lower left")
        ax.set_xlabel("x")
        ax.set_ylabel("y")
        ax = axes[1, col]
        for i, name in enumerate(OPTIMIZERS):
            per = table[name]["per_lr"]
            lrs = [float(k) for k in per]
            st = [per[k]["steps"] if per[k]["steps"] is not None else np.nan for k in per]
            ax.plot(lrs, st, "o-", color=plots.class_color(i), label=name)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("learning rate")
        ax.set_ylabel(f"steps to f - f* < {s.tol:g} (missing: not reached in {s.steps})")
        ax.set_title(f"{s.name}: which learning rates work", fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return fig


def summary(numbers: dict) -> list[str]:
    lines = []
    for sname, s in numbers["surfaces"].items():
        lines += [
            f"{sname} (tolerance {s['tol']:g}, at most {s['max_steps']} steps)",
            "",
            "| optimizer | best lr | steps | lrs that reach it |",
            "|---|---|---|---|",
        ]
        for name, t in s["optimizers"].items():
            lines.append(
                f"| {name} | {t['best_lr']:.3g} | {t['steps'] if t['steps'] is not None else 'not reached'} | "
                f"{', '.join(f'{x:.3g}' for x in t['working_lrs']) or 'none'} |"
            )
        lines.append("")
    lines.append("one step size on the quadratic:")
    for name, t in numbers["same_step"].items():
        lines.append(
            f"- {name} (lr {t['lr']:g}): {t['steps'] if t['steps'] is not None else 'not reached'} steps, "
            f"y changes sign {t['y_sign_changes']} times, max |y| over steps 10-40: {t['y_max_after_10']:.3g}"
        )
    lines.append(f"adam's first step at lr 0.1: {numbers['adam_first_step']}")
    return lines
