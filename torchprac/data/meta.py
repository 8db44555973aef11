"""What a trained model needs to read new inputs exactly as it read its training data: the
task, the input shape, the class names (index -> name), the feature columns, and the
normalisation statistics of the TRAINING split (mu, sigma; for regression also the target's).
Stored in every checkpoint (key `data`) and reused unchanged by predict and evaluate."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from torchprac.data.splits import Splits
from torchprac.errors import CheckpointError


@dataclass
class DataMeta:
    task: str  # classification | regression
    input_shape: tuple[int, ...]
    num_outputs: int  # class count, or 1 for regression
    class_names: list[str] | None = None  # None: the indices' own names "0".."k-1"
    feature_names: list[str] | None = None  # tabular: the feature columns, in order
    mean: torch.Tensor | None = None  # None: inputs were not normalised
    std: torch.Tensor | None = None
    y_mean: float = 0.0
    y_std: float = 1.0
    source: str = ""  # the dataset it was trained on

    @property
    def names(self) -> list[str]:
        """Class names, index order (the indices themselves when the data had none)."""
        if self.class_names is not None:
            return list(self.class_names)
        return [str(i) for i in range(self.num_outputs)]

    @classmethod
    def of(cls, splits: Splits) -> DataMeta:
        return cls(
            task=splits.task,
            input_shape=tuple(splits.input_shape),
            num_outputs=splits.num_classes,
            class_names=None if splits.class_names is None else list(splits.class_names),
            feature_names=None if splits.feature_names is None else list(splits.feature_names),
            mean=None if splits.mean is None else splits.mean.detach().cpu(),
            std=None if splits.std is None else splits.std.detach().cpu(),
            y_mean=float(splits.y_mean),
            y_std=float(splits.y_std),
            source=splits.name,
        )

    def to_dict(self) -> dict[str, Any]:
        """Tensors and plain containers only: loadable with torch.load(weights_only=True)."""
        return {
            "task": self.task,
            "input_shape": list(self.input_shape),
            "num_outputs": self.num_outputs,
            "class_names": self.class_names,
            "feature_names": self.feature_names,
            "mean": self.mean,
            "std": self.std,
            "y_mean": self.y_mean,
            "y_std": self.y_std,
            "source": self.source,
        }

    @classmethod
    def from_checkpoint(cls, ckpt: dict, path: Any = "") -> DataMeta:
        d = ckpt.get("data")
        if not isinstance(d, dict):  # guessing the normalisation would give wrong answers silently
            raise CheckpointError(
                f"Checkpoint {path} holds no description of its data (task, input shape, classes, normalisation "
                "statistics): it was written by an older torchprac. Retrain the model to predict or evaluate with it."
            )
        return cls(
            task=str(d["task"]),
            input_shape=tuple(int(v) for v in d["input_shape"]),
            num_outputs=int(d["num_outputs"]),
            class_names=d.get("class_names"),
            feature_names=d.get("feature_names"),
            mean=d.get("mean"),
            std=d.get("std"),
            y_mean=float(d.get("y_mean", 0.0)),
            y_std=float(d.get("y_std", 1.0)),
            source=str(d.get("source", "")),
        )
