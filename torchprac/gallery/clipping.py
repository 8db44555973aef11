"""Gallery 8, exploding gradients and clipping: a net whose weights are drawn too large explodes
under plain sgd; clip=norm bounds every step and it trains; the pre-clip gradient norm per
epoch shows the explosion and its decay. And the exact reason to prefer norm clipping:
clip=value clamps each component, which turns the gradient; clip=norm rescales the whole
vector, which keeps its direction (cosine 1)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from torchprac.gallery import plots
from torchprac.gallery.sweep import Spread, group, job_dir, job_model, metric, runs, series, setting

PRESET = "gallery_clipping"
EXAMPLE = (0.9, 100.0)  # Géron's example (ch. 11, gradient clipping): one component far larger
EXAMPLE_VALUE, EXAMPLE_NORM = 1.0, 1.0  # clip_value, max_norm of the example


def clipped(grad: list[torch.Tensor], kind: str, threshold: float) -> list[torch.Tensor]:
    """The gradients after the clip group's `kind` at `threshold`, applied by the run's own
    Clipper (torch.nn.utils.clip_grad_value_ / clip_grad_norm_) to parameters holding them."""
    import torchprac

    params = [torch.nn.Parameter(torch.zeros_like(g)) for g in grad]
    for p, g in zip(params, grad):
        p.grad = g.clone()
    key = {"value": "clip_value", "norm": "max_norm"}[kind]
    torchprac.build("clip", kind, **{key: threshold}).make(params)()
    return [p.grad for p in params]


def cosine(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    va, vb = torch.cat([x.flatten() for x in a]).double(), torch.cat([x.flatten() for x in b]).double()
    return float(va @ vb / (va.norm() * vb.norm()))


def example() -> dict:
    g = [torch.tensor(EXAMPLE, dtype=torch.float64)]
    v, n = clipped(g, "value", EXAMPLE_VALUE), clipped(g, "norm", EXAMPLE_NORM)
    return {
        "gradient": list(EXAMPLE),
        "value_clipped": v[0].tolist(),
        "norm_clipped": n[0].tolist(),
        "cos_value": cosine(g, v),
        "cos_norm": cosine(g, n),
        "angle_value_deg": math.degrees(math.acos(min(1.0, cosine(g, v)))),
    }


def first_gradient(job: Path, batch: int = 64) -> list[torch.Tensor]:
    """The gradient of the job's net at initialisation on its first training batch."""
    _, splits, model = job_model(job, trained=False)
    loss = torch.nn.functional.cross_entropy(model(splits.train.x[:batch]), splits.train.y[:batch])
    return list(torch.autograd.grad(loss, [p for p in model.parameters() if p.requires_grad]))


def label(run) -> str:
    mn = float(setting(run, "clip.max_norm", "1.0"))
    return "no clipping (max_norm 1e9)" if mn >= 1e8 else f"clip=norm, max_norm {mn:g}"


def measure(root: Path) -> dict:
    rs = runs(root)
    out: dict = {"configs": {}, "example": example()}
    for name, grs in sorted(group(rs, label).items(), key=lambda kv: -float(setting(kv[1][0], "clip.max_norm"))):
        first_norms = [series(r, "grad_norm/global_preclip")[1][:1] for r in grs]
        out["configs"][name] = {
            "train_loss": Spread.of(metric(r, "train", "loss") for r in grs).to_dict(),
            "dev_accuracy": Spread.of(metric(r, "dev", "accuracy") for r in grs).to_dict(),
            "first_epoch_norm": Spread.of(v[0] if v else None for v in first_norms).to_dict(),
            "last_epoch_norm": Spread.of(
                (series(r, "grad_norm/global_preclip")[1] or [None])[-1] for r in grs
            ).to_dict(),
            "fired_fraction": Spread.of((series(r, "clip/fired_fraction")[1] or [None])[-1] for r in grs).to_dict(),
            "non_finite_norm_epochs": [
                sum(1 for h in r.history if "loss/dev" in h and h.get("grad_norm/global_preclip") is None) for r in grs
            ],
            "statuses": [r.status for r in grs],
        }
    # The norm at initialisation (epoch 0), per seed: the same nets for every max_norm.
    seeds = {setting(r, "trainer.seed"): r for r in rs}
    out["init_norm"] = {
        s: float(torch.cat([x.flatten() for x in first_gradient(job_dir(root, r))]).norm()) for s, r in seeds.items()
    }
    any_run = next(iter(rs), None)
    if any_run is not None:  # the same net's first gradient, clipped both ways
        g = first_gradient(job_dir(root, any_run))
        norm = float(torch.cat([x.flatten() for x in g]).norm())
        v, n = clipped(g, "value", 0.5), clipped(g, "norm", 1.0)
        out["net_gradient"] = {"norm": norm, "cos_value_0.5": cosine(g, v), "cos_norm_1": cosine(g, n)}
    return out


def draw(root: Path, numbers: dict):
    from matplotlib.patches import Circle, Rectangle

    rs = runs(root)
    fig = plots.figure(16, 4.6)
    ax_n, ax_l, ax_a, ax_e = fig.subplots(1, 4)
    names = list(numbers["configs"])
    by = group(rs, label)
    init = numbers.get("init_norm", {})
    for i, name in enumerate(names):
        c = plots.class_color(i)
        norms = []
        for r in by[name]:
            ep, v = series(r, "grad_norm/global_preclip")
            s0 = init.get(setting(r, "trainer.seed"))
            if s0 is not None and (not ep or ep[0] == 1):
                ep, v = [0, *ep], [s0, *v]
            norms.append((ep, v))
        plots.mean_band(ax_n, norms, c, name, marker=".")
        plots.mean_band(ax_l, [series(r, "loss/train") for r in by[name]], c, name, marker=".")
        plots.mean_band(ax_a, [series(r, "metric/accuracy_dev") for r in by[name]], c, name, marker=".")
    for ax, title in (
        (ax_n, "pre-clip gradient norm (epoch 0: at init; then epoch mean)"),
        (ax_l, "train loss (epoch mean; log)"),
    ):
        ax.set_yscale("log")
        ax.set_title(title, fontsize=10)
    ax_a.set_title("dev accuracy", fontsize=10)
    for ax in (ax_n, ax_l, ax_a):
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    ax_a.legend(fontsize=7)
    ex = numbers["example"]
    g, v, n = (np.asarray(ex[k]) for k in ("gradient", "value_clipped", "norm_clipped"))
    for vec, c, lab in (
        (g / np.linalg.norm(g) * 1.25, "k", f"gradient {_v(g)} (scaled)"),
        (v, "#d62728", f"clip=value {EXAMPLE_VALUE:g}: {_v(v)}, cos {ex['cos_value']:.4f}"),
        (n, "#2ca02c", f"clip=norm {EXAMPLE_NORM:g}: {_v(n)}, cos {ex['cos_norm']:.4f}"),
    ):
        ax_e.annotate("", xy=vec, xytext=(0, 0), arrowprops=dict(arrowstyle="->", color=c, lw=2))
        ax_e.plot([], [], color=c, lw=2, label=lab)
    box = 2 * EXAMPLE_VALUE
    ax_e.add_patch(Rectangle((-EXAMPLE_VALUE, -EXAMPLE_VALUE), box, box, fill=False, ls=":", color="#d62728"))
    ax_e.add_patch(Circle((0, 0), EXAMPLE_NORM, fill=False, ls=":", color="#2ca02c"))
    ax_e.set_xlim(-0.3, 1.3)
    ax_e.set_ylim(-0.2, 1.4)
    ax_e.set_aspect("equal")
    ax_e.legend(fontsize=7, loc="upper left")
    ax_e.set_title(f"exact example: value clipping turns it {ex['angle_value_deg']:.1f}°", fontsize=10)
    ax_e.grid(alpha=0.3)
    fig.suptitle(
        "8 ReLU layers of 64, init normal(std 0.3), plain sgd lr 0.05, digits (mean of 3 seeds, band min–max)",
        fontsize=11,
    )
    return fig


def summary(numbers: dict) -> list[str]:
    lines = [
        "| clipping | train loss | dev accuracy | pre-clip norm, epoch 1 | pre-clip norm, last epoch | "
        "fraction of steps clipped | epochs with a non-finite norm |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, c in numbers["configs"].items():
        lines.append(
            f"| {name} | {_g(c['train_loss'])} | {_g(c['dev_accuracy'])} | {_g(c['first_epoch_norm'])} | "
            f"{_g(c['last_epoch_norm'])} | {_g(c['fired_fraction'])} | {c['non_finite_norm_epochs']} |"
        )
    ex = numbers["example"]
    lines.append(
        f"exact example: g = {ex['gradient']} -> clip=value {EXAMPLE_VALUE:g}: {ex['value_clipped']} "
        f"(cos {ex['cos_value']:.4f}, {ex['angle_value_deg']:.1f}°), clip=norm {EXAMPLE_NORM:g}: "
        f"{[round(x, 4) for x in ex['norm_clipped']]} (cos {ex['cos_norm']:.6f})"
    )
    if numbers.get("init_norm"):
        lines.append(
            "gradient norm at initialisation per seed: "
            + ", ".join(f"seed {s}: {v:.3g}" for s, v in numbers["init_norm"].items())
        )
    if "net_gradient" in numbers:
        ng = numbers["net_gradient"]
        lines.append(
            f"the net's first gradient (norm {ng['norm']:.3g}): cos after clip=value 0.5 {ng['cos_value_0.5']:.4f}, "
            f"after clip=norm 1 {ng['cos_norm_1']:.6f}"
        )
    return lines


def _g(d: dict) -> str:
    if not d.get("n"):
        return "n/a"
    m, lo, hi = d["mean"], d["min"], d["max"]
    f = (lambda x: f"{x:.3g}") if abs(m) >= 1e4 or 0 < abs(m) < 1e-3 else (lambda x: f"{x:.4f}")
    return f"{f(m)} ({f(lo)}–{f(hi)})" if d["n"] > 1 else f(m)


def _v(x) -> str:
    return "(" + ", ".join(f"{float(a):.4g}" for a in x) + ")"
