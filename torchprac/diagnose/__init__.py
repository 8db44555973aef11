"""Diagnostics: bias/variance (here), gradient check and gradient health."""

from torchprac.diagnose.bias_variance import Diagnosis, diagnose

__all__ = ["Diagnosis", "diagnose"]
