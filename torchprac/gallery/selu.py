"""Gallery 6, self-normalisation (Klambauer et al. 2017): SELU with lecun_normal init keeps
the activations of a 100-layer net near mean 0 / std 1; ReLU and ELU with the same depth and
init drift away (ReLU halves the second moment at every layer)."""

from __future__ import annotations

from pathlib import Path

from torchprac.gallery import plots
from torchprac.gallery.layers import colors_of, draw_depth, last_layer, probe_sweep, stat_matrix
from torchprac.gallery.sweep import Spread, setting

PRESET = "gallery_selu"
BAND = (0.7, 1.4)  # "std near 1": the band the test and the figure use


def measure(root: Path) -> dict:
    probes = probe_sweep(root, lambda r: setting(r, "activation", "selu"))
    out: dict = {"band": BAND, "activations": {}, "_probes": probes}
    for name, recs in probes.items():
        res: dict = {
            "dev_accuracy": Spread.of(r["dev_accuracy"] for r in recs).to_dict(),
            "statuses": [r["status"] for r in recs],
        }
        for when in ("init", "trained"):
            std = stat_matrix(recs, when, "act_std")
            if not std.size:
                continue
            inside = ((std >= BAND[0]) & (std <= BAND[1])).mean(1)  # per seed: fraction of layers in the band
            res[when] = {
                "last_std": Spread.of(last_layer(recs, when, "act_std")).to_dict(),
                "last_mean": Spread.of(last_layer(recs, when, "act_mean")).to_dict(),
                "min_std": Spread.of(std.min(1)).to_dict(),
                "max_std": Spread.of(std.max(1)).to_dict(),
                "fraction_in_band": Spread.of(inside).to_dict(),
            }
        out["activations"][name] = res
    return out


def draw(root: Path, numbers: dict):
    probes = numbers["_probes"]
    colors = colors_of(probes)
    fig = plots.figure(15, 8.5)
    axes = fig.subplots(2, 3)
    for row, when in enumerate(("init", "trained")):
        ax_m, ax_s, ax_g = axes[row]
        draw_depth(ax_m, probes, when, "act_mean", colors, log=False)
        ax_m.axhline(0, color="k", lw=0.8)
        ax_m.set_title(
            f"activation mean per layer ({'at initialisation' if when == 'init' else 'after training'})", fontsize=10
        )
        draw_depth(ax_s, probes, when, "act_std", colors)
        ax_s.axhspan(*BAND, color="0.85", zorder=0, label=f"band {BAND[0]}–{BAND[1]}")
        ax_s.axhline(1, color="k", lw=0.8)
        ax_s.set_title("activation std per layer (log)", fontsize=10)
        draw_depth(ax_g, probes, when, "weight_grad_std", colors)
        ax_g.set_title("std of dL/dW per layer (log)", fontsize=10)
        ax_s.legend(fontsize=8)
    acc = {n: r["dev_accuracy"]["mean"] for n, r in numbers["activations"].items()}
    fig.suptitle(
        "100 dense layers of 64, lecun_normal init, standardised digits (mean over seeds, band: min–max); "
        "dev accuracy after training: " + ", ".join(f"{n} {a:.3f}" for n, a in acc.items()),
        fontsize=11,
    )
    return fig


def summary(numbers: dict) -> list[str]:
    lines = [
        "| activation | std at layer 100, init | mean at layer 100, init | layers with std in "
        f"[{BAND[0]}, {BAND[1]}], init | std at layer 100, trained | dev accuracy |",
        "|---|---|---|---|---|---|",
    ]
    for name, r in numbers["activations"].items():
        init, tr = r.get("init", {}), r.get("trained", {})
        cells = [init.get("last_std"), init.get("last_mean"), init.get("fraction_in_band"), tr.get("last_std")]
        lines.append(f"| {name} | " + " | ".join(_fmt(c) for c in cells) + f" | {_fmt(r['dev_accuracy'])} |")
    return lines


def _fmt(d: dict | None) -> str:
    if not d or not d.get("n"):
        return "n/a"
    s = Spread(d["mean"], d["std"], d["min"], d["max"], d["n"])
    if abs(s.mean) < 1e-3 and s.mean != 0:
        return f"{s.mean:.2e} ({s.lo:.1e}–{s.hi:.1e})"
    return f"{s.mean:.3f} ({s.lo:.3f}–{s.hi:.3f})"
