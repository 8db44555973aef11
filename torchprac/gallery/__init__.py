"""The gallery: every claim of the practical-aspects material as one command and one figure.

Each entry is a module with the same four names:

    PRESET   the conf/experiment preset (a multirun that writes multirun/gallery/<entry>/<time>/),
             or None when the figure script computes everything itself (entry `paths`)
    measure(root) -> dict          the numbers, from the finished sweep dir (metrics.json,
                                   history.json, and for some entries the checkpoints)
    draw(root, numbers) -> Figure  the figure
    summary(numbers) -> list[str]  the numbers as markdown lines (docs/gallery.md quotes them)

    python train.py -m experiment=gallery_<entry>     # the runs
    python -m torchprac.gallery <entry>               # -> docs/img/gallery_<entry>.png

docs/gallery.md gives each entry's claim, its source and what torchprac measured."""

from __future__ import annotations

import importlib
from types import ModuleType

ENTRIES = (
    "nonlinearity",
    "normalize",
    "batch_size",
    "paths",
    "init_depth",
    "selu",
    "batch_norm",
    "clipping",
    "regularization",
    "adamw",
    "schedules",
)


def entry(name: str) -> ModuleType:
    if name not in ENTRIES:
        raise KeyError(name)
    return importlib.import_module(f"torchprac.gallery.{name}")


def command(name: str) -> str:
    """The one command that makes an entry's runs (the figure script's input)."""
    mod = entry(name)
    if mod.PRESET is None:
        return f"python -m torchprac.gallery {name}"
    return f"python train.py -m experiment={mod.PRESET}"


__all__ = ["ENTRIES", "entry", "command"]
