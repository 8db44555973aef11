"""User-facing errors: one clear paragraph, no traceback (train.py prints them and exits 2)."""

from __future__ import annotations

from typing import Any


class TorchpracError(Exception):
    """An error the user can fix; its message is shown as-is, without a traceback."""


class ConfigError(TorchpracError):
    """A config value that cannot be used: names the key, the value and what is allowed."""

    def __init__(self, key: str, value: Any, allowed: str, hint: str = "") -> None:
        self.key, self.value, self.allowed = key, value, allowed
        msg = f"Invalid config: {key}={value!r}. Allowed: {allowed}."
        if hint:
            msg += f" {hint}"
        super().__init__(msg)


class DataError(TorchpracError):
    """A dataset that is missing, unreadable or malformed."""


class CheckpointError(TorchpracError):
    """A checkpoint that is missing, truncated, unsafe or incompatible."""


class GradcheckError(TorchpracError):
    """Backprop disagrees with finite differences."""
