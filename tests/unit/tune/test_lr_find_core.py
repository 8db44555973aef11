"""The range test's core (torchprac.tune.lr_find) against hand computations and a problem
whose divergence lr is known analytically."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from torchprac.tune.lr_find import (
    lr_range_test,
    lr_schedule,
    minimum_tenth,
    recommend,
    smooth,
    steepest,
    valley,
    window,
)


# -- smoothing and stopping ---------------------------------------------------------------------
def test_schedule_is_geometric_from_min_to_max():
    lrs = lr_schedule(1e-4, 1.0, 5)
    assert lrs == pytest.approx([1e-4, 1e-3, 1e-2, 1e-1, 1.0], rel=1e-12)


def test_smoothing_is_the_bias_corrected_ema_by_hand():
    # beta = 0.5: a0 = 0.5, a1 = 0.25 + 1 = 1.25, a2 = 0.625 + 1.5 = 2.125;
    # divided by 1 - 0.5^(i+1) = 0.5, 0.75, 0.875.
    assert smooth([1.0, 2.0, 3.0], 0.5) == pytest.approx([1.0, 5 / 3, 17 / 7], rel=1e-12)
    # Bias correction: a constant curve is its own smoothing from the first step (an uncorrected
    # EMA would start at (1 - beta) x the loss).
    assert smooth([2.5] * 20, 0.98) == pytest.approx([2.5] * 20, rel=1e-12)
    assert smooth([3.0, 1.0, 4.0], 0.0) == pytest.approx([3.0, 1.0, 4.0])  # beta 0: no smoothing


def test_stops_when_the_smoothed_loss_passes_the_factor_times_its_minimum():
    losses = [10.0, 8.0, 6.0, 4.0, 2.0, 1.0, 1.0, 3.0, 9.0, 30.0, 100.0, 100.0]
    calls = []

    def step(lr: float) -> float:
        calls.append(lr)
        return losses[len(calls) - 1]

    beta = 0.5
    t = lr_range_test(step, lr_schedule(1e-3, 1.0, len(losses)), beta=beta, diverge_factor=4.0)
    s = smooth(losses, beta)
    first = next(i for i in range(len(s)) if s[i] > 4 * s[: i + 1].min())  # by hand: index 9
    assert first == 9 and t.stop == "diverged"
    assert len(calls) == len(t.lrs) == first + 1  # no step after the stop
    assert t.smoothed == pytest.approx(s[: first + 1].tolist())
    assert t.stop_lr == pytest.approx(calls[-1])


def test_a_non_finite_loss_stops_the_test():
    seq = iter([1.0, 0.9, 0.8, float("nan"), 0.1])
    t = lr_range_test(lambda lr: next(seq), lr_schedule(1e-3, 1.0, 5))
    assert t.stop == "non-finite" and len(t.lrs) == 4 and math.isnan(t.smoothed[-1])


# -- the suggestion rules on a synthetic curve -----------------------------------------------------
def synthetic(n: int = 100, t0: float = -2.0, width: float = 0.5, t_blow: float = -0.3):
    """loss(t), t = log10(lr) on a grid from 1e-5 to 1: a tanh step down centred on t0 (steepest
    there) and a quadratic rise after t_blow (the minimum just below it)."""
    t = np.linspace(-5.0, 0.0, n)
    loss = 2.0 - np.tanh((t - t0) / width) + 8.0 * np.clip(t - t_blow, 0, None) ** 2
    return 10.0**t, t, loss


def test_steepest_is_the_inflection_of_the_descent():
    lrs, t, loss = synthetic()
    lo, hi = window(len(loss), len(loss))
    s = steepest(lrs, loss, lo, hi)
    # the grid point nearest t0 = -2 (central differences of a curve symmetric about t0)
    assert s.index == int(np.argmin(abs(t + 2.0))) and s.lr == pytest.approx(10 ** t[s.index])


def test_minimum_tenth_and_valley_by_hand():
    lrs, t, loss = synthetic()
    lo, hi = window(len(loss), len(loss))  # [10, 95)
    m = int(np.argmin(loss))  # strictly decreasing from 0 to m, rising after
    assert lo < m < hi and np.all(np.diff(loss[: m + 1]) < 0)
    assert minimum_tenth(lrs, loss, lo, hi).lr == pytest.approx(lrs[m] / 10)
    # valley: the longest decreasing run in the window is lo..m, ending e = m - lo points in
    # with length e + 1, so start = e - (e + 1) = -1 and fastai's pick is start + int(s) + int(s/2),
    # s = (e - start)/3
    e = m - lo
    sec = (e - (-1)) / 3
    assert valley(lrs, loss, lo, hi).index == lo + (-1 + int(sec) + int(sec / 2))


def test_valley_ignores_a_spike_that_fools_steepest():
    lrs, t, loss = synthetic()
    lo, hi = window(len(loss), len(loss))
    spiky = loss.copy()
    k = 25  # a single outlier early on, far from the real descent (t = -3.7)
    spiky[k] += 1.5
    assert steepest(lrs, spiky, lo, hi).index == k + 1  # the fall back from the spike
    # valley: the decreasing run lo..m just skips the spike (one point shorter), so the pick
    # moves by at most one point: start = e - e = 0, s = e/3, by hand
    e = int(np.argmin(loss)) - lo
    assert valley(lrs, spiky, lo, hi).index == lo + int(e / 3) + int(e / 6)
    assert abs(valley(lrs, spiky, lo, hi).index - valley(lrs, loss, lo, hi).index) <= 1
    rules, chosen, reason = recommend(lrs, spiky, len(spiky))
    assert chosen is not None and chosen.name != "steepest" and "middle of the three" in reason


def test_recommended_is_the_middle_of_the_three_rules():
    lrs, t, loss = synthetic()
    rules, chosen, reason = recommend(lrs, loss, len(loss))
    assert [r.name for r in rules] == ["steepest", "valley", "minimum/10"]
    assert chosen.lr == sorted(r.lr for r in rules)[1]
    assert chosen.lr < lrs[int(np.argmin(loss))]  # below the loss minimum
    assert chosen.name in reason


def test_no_descent_no_recommendation():
    lrs = lr_schedule(1e-5, 1.0, 60)
    rising = np.linspace(1.0, 3.0, 60)
    rules, chosen, reason = recommend(lrs, rising, 60)
    assert chosen is None and "never fell" in reason


# -- a problem with a known divergence lr ------------------------------------------------------------
def quadratic(seed: int, grad_noise: float, n: int = 256, d: int = 8):
    """Least squares J(w) = |Xw - y|^2 / 2n with X built so that X^T X / n has the eigenvalues
    `lams`; gradient descent (torch.optim.SGD on a Linear layer) with additive gradient noise,
    the model of mini-batch noise. The error along the top eigenvector is multiplied by
    (1 - lr lambda_max) per step, plus noise: bounded iff lr < 2 / lambda_max."""
    g = torch.Generator().manual_seed(seed)
    lams = torch.logspace(-2, 1, d, dtype=torch.float64)  # 0.01 .. 10, lambda_max = 10
    u, _ = torch.linalg.qr(torch.randn(n, d, generator=g, dtype=torch.float64))
    v, _ = torch.linalg.qr(torch.randn(d, d, generator=g, dtype=torch.float64))
    x = u @ torch.diag((n * lams).sqrt()) @ v.T
    y = x @ torch.randn(d, generator=g, dtype=torch.float64)
    model = torch.nn.Linear(d, 1, bias=False, dtype=torch.float64)
    torch.nn.init.zeros_(model.weight)
    opt = torch.optim.SGD(model.parameters(), lr=1.0)

    def step(lr: float) -> float:
        for group in opt.param_groups:
            group["lr"] = lr
        opt.zero_grad()
        loss = 0.5 * ((model(x).squeeze(1) - y) ** 2).mean()
        loss.backward()
        model.weight.grad += grad_noise * torch.randn(model.weight.shape, generator=g, dtype=torch.float64)
        opt.step()
        return float(loss.detach())

    lam_max = float(torch.linalg.eigvalsh(x.T @ x / n).max())
    assert lam_max == pytest.approx(10.0, rel=1e-9)
    return step, 2.0 / lam_max


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_detected_divergence_within_1p5x_of_two_over_lambda_max(seed):
    step, limit = quadratic(seed, grad_noise=0.1)
    # 200 steps per decade: one step per lr, so the blow-up needs a few steps past the limit
    test = lr_range_test(step, lr_schedule(1e-4, 10.0, 1000), beta=0.98, diverge_factor=4.0)
    assert test.stop == "diverged"
    assert limit / 1.5 <= test.stop_lr <= 1.5 * limit, test.stop_lr / limit
    assert test.recommended is not None and test.recommended.lr < limit
    assert all(s.lr < limit for s in test.suggestions)


def test_default_resolution_detects_divergence_late_but_recommends_below_it():
    """With the default 100 steps over 7 decades (17.5% per step) the blow-up shows 3-4.5x past
    the limit (seeds 0-5); the recommendation stays well below it."""
    step, limit = quadratic(0, grad_noise=0.1)
    test = lr_range_test(step, lr_schedule(1e-6, 10.0, 100))
    assert 1.0 < test.stop_lr / limit < 5.0
    assert test.recommended.lr < limit / 5


@pytest.mark.parametrize(
    "losses,stop,says",
    [
        (list(np.linspace(3.0, 1.0, 30)), "completed", "ran all 30 steps"),
        (list(np.linspace(3.0, 1.0, 25)) + [50.0] * 5, "diverged", "passed 4x its minimum"),
        (list(np.linspace(3.0, 1.0, 25)) + [float("inf")], "non-finite", "not finite"),
    ],
)
def test_the_summary_says_how_it_ended_and_what_it_recommends(losses, stop, says):
    seq = iter(losses)
    t = lr_range_test(lambda lr: next(seq), lr_schedule(1e-4, 1.0, 30), beta=0.5)
    lines = t.summary()
    assert t.stop == stop and says in lines[0]
    assert (t.stop_lr is None) == (stop == "completed")
    assert [ln.split()[0] for ln in lines[1:4]] == ["steepest", "valley", "minimum/10"]
    assert lines[-1].startswith(f"  recommended: {t.recommended.name} lr {t.recommended.lr:.3g}")


def test_steepest_ignores_the_fall_after_a_blow_up():
    """A loss that blows up and sinks back (a collapsed classifier: cross-entropy saturates at
    ln C) falls steeply after its peak; steepest looks only on the way to the minimum."""
    lrs, t, loss = synthetic(t_blow=-1.0)
    m = int(np.argmin(loss))
    bumped = loss.copy()
    bumped[m + 1 :] = loss[m] + 2.0 - 0.12 * np.arange(len(loss) - m - 1)  # peak, then a steep fall
    lo, hi = window(len(loss), len(loss))
    assert int(np.argmin(bumped[lo:hi])) + lo == m  # still the minimum
    assert np.gradient(bumped, np.log(lrs))[lo:hi].argmin() + lo > m  # the whole curve's steepest point: past it
    assert steepest(lrs, bumped, lo, hi).index == steepest(lrs, loss, lo, hi).index == int(np.argmin(abs(t + 2.0)))
