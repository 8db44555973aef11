"""Tuning tools. lr_find: Smith's learning-rate range test (the core algorithm on any
`step(lr) -> loss` closure, and its runner on a torchprac model: mode=lr_find,
trainer.lr_find=true)."""

from torchprac.tune.lr_find import LRFindSettings, RangeTest, Suggestion, lr_range_test, lr_schedule, smooth

__all__ = ["LRFindSettings", "RangeTest", "Suggestion", "lr_range_test", "lr_schedule", "smooth"]
