"""torchprac: every practical lever of deep learning as a pluggable, measurable component.

From Python (no Hydra needed), every config-group choice is one call:

    import torchprac
    data = torchprac.build_data(torchprac.build("data", "digits"), seed=0)
    model = torchprac.build("model", "mlp", hidden=[64]).make(data.input_shape, data.num_classes)
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"


def build(group: str, name: str, **params: Any) -> Any:
    """The object of `group=name` with `params` (checked like the CLI's `group.key=value`)."""
    from torchprac import registry

    return registry.build(group, {"name": name, **params})


def choices(group: str) -> list[str]:
    """The registered choices of a config group."""
    from torchprac import registry

    return registry.names(group)


def build_data(spec: Any, seed: int = 0, device: Any = "cpu") -> Any:
    """Read, check, split and normalise a data choice: train/dev/test tensors on `device`."""
    from torchprac.data import build_data as _build_data

    return _build_data(spec, seed=seed, device=device)


__all__ = ["build", "choices", "build_data", "__version__"]
