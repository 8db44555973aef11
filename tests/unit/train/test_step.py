"""Optimization.step: penalty + backward + clip + optimizer step + constraints, against a step
computed by hand; Precision refuses what the device cannot do."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from torchprac.errors import ConfigError
from torchprac.optim.clip import Clipper
from torchprac.reg.penalty import Penalty
from torchprac.train import Optimization, Precision


def _setup():
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(8, 3, generator=g), torch.randint(0, 2, (8,), generator=g)
    return model, x, y


def test_step_equals_a_hand_computed_sgd_step_with_l2_penalty():
    lr, lam = 0.1, 0.05
    model, x, y = _setup()
    w0, b0 = model.weight.detach().clone(), model.bias.detach().clone()
    # by hand: J = CE + (lam/2)||W||^2, dJ/dW = dCE/dW + lam W (the bias is not penalised)
    w, b = w0.clone().requires_grad_(), b0.clone().requires_grad_()
    ce = F.cross_entropy(x @ w.T + b, y)
    gw, gb = torch.autograd.grad(ce, [w, b])
    expected_w, expected_b = w0 - lr * (gw + lam * w0), b0 - lr * gb
    expected_norm = torch.sqrt(((gw + lam * w0) ** 2).sum() + (gb**2).sum())

    seen = []
    optim = Optimization(
        torch.optim.SGD(model.parameters(), lr=lr),
        penalty=Penalty([model.weight], l2=lam),
        clipper=Clipper(list(model.parameters())),
    )
    penalty, norm = optim.step(
        F.cross_entropy(model(x), y), before_step=[lambda: seen.append(model.weight.grad.clone())], want_norm=True
    )
    torch.testing.assert_close(model.weight.detach(), expected_w)
    torch.testing.assert_close(model.bias.detach(), expected_b)
    torch.testing.assert_close(penalty, 0.5 * lam * (w0**2).sum())  # the pre-step penalty, detached
    assert not penalty.requires_grad
    torch.testing.assert_close(norm, expected_norm)  # the pre-clip global norm, a device tensor
    torch.testing.assert_close(seen[0], gw + lam * w0)  # before_step hooks see the fresh gradient


def test_constraints_run_after_the_step_and_nothing_is_computed_when_not_asked():
    model, x, y = _setup()
    order = []
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    real_step = opt.step
    opt.step = lambda *a, **k: order.append("step") or real_step(*a, **k)
    optim = Optimization(opt, constraints=[lambda: order.append("constraint")])
    penalty, norm = optim.step(F.cross_entropy(model(x), y))
    assert order == ["step", "constraint"]
    assert penalty is None and norm is None


def test_state_dict_round_trip_keeps_the_clip_counters():
    model, x, y = _setup()
    a = Optimization(
        torch.optim.SGD(model.parameters(), lr=0.1), clipper=Clipper(list(model.parameters()), "norm", 1e-6)
    )
    a.step(F.cross_entropy(model(x), y))
    b = Optimization(
        torch.optim.SGD(model.parameters(), lr=0.1), clipper=Clipper(list(model.parameters()), "norm", 1e-6)
    )
    b.load_state_dict(a.state_dict())
    assert b.clipper.steps == 1 and b.clipper.fired_fraction() == 1.0


def test_precision():
    cpu = torch.device("cpu")
    assert Precision.of("32", cpu).scaler is None
    bf16 = Precision.of("bf16-mixed", cpu)
    with bf16.autocast():
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.bfloat16
    with pytest.raises(ConfigError) as e:
        Precision.of("16-mixed", cpu)
    assert e.value.key == "trainer.precision" and "needs CUDA" in str(e.value)
