"""Smith's learning-rate range test (Smith 2017, "Cyclical Learning Rates", section 3.3), the
core algorithm, independent of torchprac's model and data: give it any `step(lr) -> loss`
closure (one optimisation step at that lr, returning the loss it measured) and the lrs to try:

    test = lr_range_test(step, lr_schedule(1e-6, 10.0, 100))
    test.recommended, test.reason

The lr grows geometrically; the loss is smoothed by an exponential moving average with bias
correction; the test stops when the smoothed loss exceeds `diverge_factor` × its minimum (or is
not finite). Three labelled suggestions are read off the smoothed curve, and one of them is
recommended with its reason:

- steepest: where the smoothed loss falls fastest per unit of log(lr) on the way to its
  minimum (torch-lr-finder's and Lightning's rule; a single dip in a noisy curve can fool it);
- valley: fastai's default since 2021 — the longest strictly decreasing run of the smoothed
  loss (a longest decreasing subsequence, so isolated spikes do not break it), and the point
  halfway along it;
- minimum/10: the lr of the lowest smoothed loss, divided by 10 (the loss is lowest just
  before it blows up, so a tenth of that lr is a safe rule of thumb).

The recommended one is the middle of the three lrs, because each rule has its own failure:
steepest follows a single dip of a noisy curve, valley is pulled low by a long noisy plateau
before the descent (the digits MLP's curve from 1e-6 puts it 10x below the other two), and
minimum/10 follows a late lucky dip; when two of them point at or past the minimum, minimum/10.

The default beta is 0.9, not fastai's 0.98: an EMA lags beta/(1-beta) steps behind the loss,
49 steps of a 100-step test at 0.98 (on the digits MLP the smoothed minimum showed at lr 0.7,
the raw loss's at 0.08, and training at 0.4 fails); 9 steps (0.6 decade) at 0.9.

What the test can and cannot see: at each lr the model takes ONE step, so the lr where the test
stops is above the largest lr that trains stably: on least squares with gradient noise, whose
limit is 2/lambda_max, it stops within 1.3x of it with 200 steps per decade, at 3-4.5x with the
default 100 steps over 7 decades (tests/unit/tune). The suggestions sit well below either.
A loss that saturates instead of exploding may never pass 4x its minimum: cross-entropy of a
collapsed classifier sits at ln C (2.3 for 10 classes), so adam on Fashion-MNIST ran to lr 10
"without diverging" although its loss peaked at lr 0.5 (the figure shows it).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from torchprac.errors import ConfigError
from torchprac.registry import integer, num, one_of, register

# The smoothed loss must fall at least this much (relative) below its value at the start of the
# window for any suggestion to mean something; otherwise the range missed the descent.
MIN_DROP = 0.01
# Suggestions that disagree by more than this factor are flagged (a noisy or oddly shaped curve).
DISAGREE = 10.0


# -- the config group ----------------------------------------------------------------------------
@dataclass(frozen=True)
class LRFindSettings:
    """conf/lr_find/default.yaml: the range, its length, smoothing, when to stop, what to measure."""

    min_lr: float = 1e-6
    max_lr: float = 10.0
    steps: int = 100
    beta: float = 0.9
    diverge_factor: float = 4.0
    eval: str = "train"  # train: each step's mini-batch loss; dev: a fixed dev subset after each step
    dev_examples: int = 1024

    def lrs(self) -> np.ndarray:
        return lr_schedule(self.min_lr, self.max_lr, self.steps)

    def check_optimizer(self, name: str, full_batch: bool) -> None:
        """The test needs many optimizer steps: full-batch gd takes one per epoch."""
        if full_batch:
            raise ConfigError(
                "optimizer",
                name,
                "a mini-batch optimizer for the lr range test (mode=lr_find or trainer.lr_find=true), "
                "e.g. optimizer=sgd (the same update as gd, on mini-batches of trainer.batch_size)",
                f"The test takes lr_find.steps={self.steps} optimizer steps at growing lrs; optimizer={name} "
                f"takes one full-batch step per epoch, so it would need {self.steps} epochs.",
            )


@register(
    "lr_find",
    "default",
    min_lr=num(0, lo_open=True),
    max_lr=num(0, lo_open=True),
    steps=integer(10),
    beta=num(0, 1, hi_open=True),
    diverge_factor=num(1, lo_open=True),
    eval=one_of("train", "dev"),
    dev_examples=integer(1),
)
def lr_find_settings(**kwargs: Any) -> LRFindSettings:
    s = LRFindSettings(**kwargs)
    if s.min_lr >= s.max_lr:
        raise ConfigError(
            "lr_find.max_lr", s.max_lr, f"a number > lr_find.min_lr={s.min_lr:g} (the lr grows from min_lr to max_lr)"
        )
    return s


# -- the algorithm -------------------------------------------------------------------------------
def lr_schedule(min_lr: float, max_lr: float, steps: int) -> np.ndarray:
    """`steps` lrs growing geometrically from min_lr to max_lr (both included)."""
    return np.geomspace(min_lr, max_lr, steps)


def smooth(losses: Sequence[float], beta: float) -> np.ndarray:
    """Exponential moving average with bias correction: a_i = beta a_(i-1) + (1-beta) x_i,
    a_(-1) = 0, smoothed_i = a_i / (1 - beta^(i+1)) (without the correction the first values
    are pulled towards 0). beta=0: the losses themselves."""
    out, avg = np.empty(len(losses)), 0.0
    for i, x in enumerate(losses):
        avg = beta * avg + (1 - beta) * x
        out[i] = avg / (1 - beta ** (i + 1))
    return out


@dataclass(frozen=True)
class Suggestion:
    name: str  # steepest | valley | minimum/10
    lr: float
    index: int  # the point of the curve it was read at (minimum/10: the minimum)
    rule: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "lr": self.lr, "index": self.index, "rule": self.rule}


def window(n: int, planned: int) -> tuple[int, int]:
    """[start, end) of the points the suggestions are read from: fastai skips the first tenth of
    the planned steps (the smoothing's start-up, lrs too small to matter) and the last 5 points
    (the blow-up that stopped the test)."""
    return min(planned // 10, n), max(n - 5, 0)


def steepest(lrs: np.ndarray, smoothed: np.ndarray, lo: int, hi: int) -> Suggestion:
    """Most negative d(smoothed)/d(log lr), by central differences (np.gradient) on the whole
    curve, searched from lo up to the minimum of smoothed[lo:hi]: a fall after the minimum is a
    recovery from a blow-up (adam on Fashion-MNIST collapses to ln 10 past lr 0.5 and its loss
    then sinks back), not a descent to follow."""
    slope = np.gradient(smoothed, np.log(lrs))
    end = lo + int(np.argmin(smoothed[lo:hi])) + 1
    i = lo + int(np.argmin(slope[lo:end]))
    return Suggestion("steepest", float(lrs[i]), i, "the steepest descent of the smoothed loss per unit log(lr)")


def valley(lrs: np.ndarray, smoothed: np.ndarray, lo: int, hi: int) -> Suggestion:
    """fastai's `valley` on smoothed[lo:hi]: the longest strictly decreasing subsequence, ending
    at `end` with length L; start = end - L (fastai's bookkeeping) and the pick lies at
    start + int(s) + int(s/2), s = (end - start)/3, i.e. about halfway along."""
    losses = smoothed[lo:hi]
    lds = np.ones(len(losses), dtype=int)  # length of the longest decreasing run ending at i
    for i in range(1, len(losses)):
        earlier = lds[:i][losses[:i] > losses[i]]
        if earlier.size:
            lds[i] = earlier.max() + 1
    end = int(np.argmax(lds))  # the first index reaching the longest length, as fastai's loop
    start = end - int(lds[end])
    s = (end - start) / 3
    i = lo + max(start + int(s) + int(s / 2), 0)
    return Suggestion("valley", float(lrs[i]), i, "halfway along the longest decreasing stretch (fastai's valley)")


def minimum_tenth(lrs: np.ndarray, smoothed: np.ndarray, lo: int, hi: int) -> Suggestion:
    i = lo + int(np.argmin(smoothed[lo:hi]))
    return Suggestion("minimum/10", float(lrs[i]) / 10, i, "a tenth of the lr of the lowest smoothed loss")


def recommend(lrs: np.ndarray, smoothed: np.ndarray, planned: int) -> tuple[list[Suggestion], Suggestion | None, str]:
    """(suggestions, the recommended one or None, a one-line reason)."""
    lo, hi = window(len(smoothed), planned)
    if hi - lo < 3:
        return (
            [],
            None,
            (
                f"too few points before the loss blew up ({len(smoothed)} of {planned} steps): "
                "lower lr_find.min_lr or raise lr_find.steps"
            ),
        )
    rules = [steepest(lrs, smoothed, lo, hi), valley(lrs, smoothed, lo, hi), minimum_tenth(lrs, smoothed, lo, hi)]
    tenth = rules[2]
    if smoothed[tenth.index] > (1 - MIN_DROP) * smoothed[lo]:
        return (
            rules,
            None,
            (
                f"the smoothed loss never fell by {MIN_DROP:.0%} in [{lrs[lo]:.2g}, {lrs[hi - 1]:.2g}]: "
                "the range missed the descent (lower lr_find.min_lr, or raise lr_find.max_lr)"
            ),
        )
    chosen = sorted(rules, key=lambda r: r.lr)[1]
    if chosen.lr >= lrs[tenth.index]:  # two rules at or past the minimum: spikes fooled them
        chosen, why = tenth, "minimum/10: the other rules point at or beyond the loss minimum"
    else:
        why = (
            f"{chosen.name}, the middle of the three rules: no single rule's failure decides "
            "(a spike fools steepest, a long noisy plateau pulls valley low)"
        )
    spread = max(r.lr for r in rules) / min(r.lr for r in rules)
    if spread > DISAGREE:
        why += f"; they disagree by {spread:.0f}x (a noisy curve: lr_find.eval=dev or more steps steady it)"
    else:
        why += f"; they agree within {spread:.1f}x"
    return rules, chosen, why


@dataclass
class RangeTest:
    """What the test measured and what it suggests (`recommended` None: no usable suggestion)."""

    lrs: list[float]
    losses: list[float]
    smoothed: list[float]
    planned_steps: int
    stop: str  # completed | diverged | non-finite
    diverge_factor: float = 4.0
    suggestions: list[Suggestion] = field(default_factory=list)
    recommended: Suggestion | None = None
    reason: str = ""

    @property
    def stop_lr(self) -> float | None:
        """The lr of the step that stopped the test (None when it ran to max_lr)."""
        return self.lrs[-1] if self.stop != "completed" else None

    @property
    def lr(self) -> float | None:
        return None if self.recommended is None else self.recommended.lr

    def to_dict(self) -> dict[str, Any]:
        return {
            "recommended": None if self.recommended is None else self.recommended.name,
            "lr": self.lr,
            "reason": self.reason,
            "suggestions": {s.name: s.to_dict() for s in self.suggestions},
            "stop": self.stop,
            "stop_lr": self.stop_lr,
            "steps_run": len(self.lrs),
            "planned_steps": self.planned_steps,
            "curve": [
                {"lr": a, "loss": b, "smoothed_loss": c} for a, b, c in zip(self.lrs, self.losses, self.smoothed)
            ],
        }

    def summary(self) -> list[str]:
        """The printed summary: how it ended, each suggestion, the recommendation and why."""
        if self.stop == "completed":
            ended = f"ran all {self.planned_steps} steps without diverging"
        elif self.stop == "diverged":
            ended = f"stopped at lr {self.stop_lr:.3g}: the smoothed loss passed {self.diverge_factor:g}x its minimum"
        else:
            ended = f"stopped at lr {self.stop_lr:.3g}: the loss was not finite"
        lines = [f"lr range test: {len(self.lrs)} steps, {ended}"]
        for s in self.suggestions:
            mark = "  <- recommended" if s is self.recommended else ""
            lines.append(f"  {s.name:<11} lr {s.lr:.3g}  ({s.rule}){mark}")
        rec = "none" if self.recommended is None else f"{self.recommended.name} lr {self.recommended.lr:.3g}"
        lines.append(f"  recommended: {rec} — {self.reason}")
        return lines


def lr_range_test(
    step: Callable[[float], float],
    lrs: Sequence[float],
    beta: float = 0.9,
    diverge_factor: float = 4.0,
) -> RangeTest:
    """Call `step(lr)` for each lr in order until the smoothed loss exceeds `diverge_factor` ×
    its minimum or a loss is not finite; read the suggestions off the smoothed curve. The caller
    owns the state `step` changes (restoring it is its job). One host read per step: the test
    needs every loss to decide whether to go on."""
    lrs = [float(x) for x in lrs]
    seen, losses, smoothed = [], [], []
    avg, best, stop = 0.0, math.inf, "completed"
    for i, lr in enumerate(lrs):
        loss = float(step(lr))
        seen.append(lr)
        losses.append(loss)
        if not math.isfinite(loss):
            smoothed.append(math.nan)
            stop = "non-finite"
            break
        avg = beta * avg + (1 - beta) * loss
        s = avg / (1 - beta ** (i + 1))
        smoothed.append(s)
        best = min(best, s)
        if s > diverge_factor * best:
            stop = "diverged"
            break
    finite = [s for s in smoothed if math.isfinite(s)]
    n = len(finite)
    suggestions, chosen, reason = recommend(np.array(seen[:n]), np.array(finite), len(lrs)) if n else ([], None, "")
    if not n:
        reason = "the first loss was not finite: lower lr_find.min_lr"
    return RangeTest(seen, losses, smoothed, len(lrs), stop, diverge_factor, suggestions, chosen, reason)
