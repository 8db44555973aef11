"""L2 / L1 / elastic penalties against their formulas, through the objects the config builds
(run.build_model + run.build_optimization) and the real Trainer step."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from conftest import make_model, make_optimization, make_trainer
from torch import nn

from torchprac.data.splits import Split
from torchprac.reg.penalty import Penalty, penalized_weights

SHAPE, CLASSES = (1, 8, 8), 10


def _data(n: int = 64, seed: int = 0) -> Split:
    g = torch.Generator().manual_seed(seed)
    return Split(torch.randn(n, *SHAPE, generator=g), torch.randint(0, CLASSES, (n,), generator=g))


def _build(overrides: list[str]):
    torch.manual_seed(0)  # the same initial weights for every config
    rc, model = make_model(["model.hidden=[32,16]", *overrides], SHAPE, CLASSES)
    return rc, model, make_optimization(rc, model)


def _train(overrides: list[str], epochs: int = 3, batch_size: int = 16) -> dict[str, torch.Tensor]:
    """Train with the real Trainer (penalty, optimizer, constraints) on fixed data; params after."""
    _, model, optim = _build(overrides)
    make_trainer(model, optim, _data(), _data(32, seed=1), epochs=epochs, batch_size=batch_size, seed=0).fit()
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _max_diff(a: dict, b: dict) -> float:
    return max((a[k].float() - b[k].float()).abs().max().item() for k in a)


def test_sgd_l2_penalty_equals_weight_decay():
    """(lambda/2) sum ||W||^2 has gradient lambda W: with plain SGD it IS weight_decay=lambda
    (applied to the weights group only, as the penalty is)."""
    lam = 0.05
    with_l2 = _train(["optimizer=sgd", "optimizer.lr=0.1", "reg=[l2]", f"reg.l2.strength={lam}"])
    with_wd = _train(["optimizer=sgd", "optimizer.lr=0.1", "reg=[]", f"optimizer.weight_decay={lam}"])
    plain = _train(["optimizer=sgd", "optimizer.lr=0.1", "reg=[]"])
    assert _max_diff(with_l2, with_wd) < 1e-6
    assert _max_diff(with_l2, plain) > 1e-3  # lambda really changed the trajectory


def test_adamw_differs_from_adam_plus_l2():
    lam = 0.05
    adam_l2 = _train(["optimizer=adam", "optimizer.lr=0.01", "reg=[l2]", f"reg.l2.strength={lam}"])
    adamw = _train(["optimizer=adamw", "optimizer.lr=0.01", "reg=[]", f"optimizer.weight_decay={lam}"])
    assert _max_diff(adam_l2, adamw) > 1e-3
    # Adam's own weight_decay is the COUPLED form: the same as reg=[l2]
    adam_wd = _train(["optimizer=adam", "optimizer.lr=0.01", "reg=[]", f"optimizer.weight_decay={lam}"])
    assert _max_diff(adam_l2, adam_wd) < 1e-5


def test_adamw_one_step_is_decoupled_shrink():
    """One full-batch step from the same weights: AdamW = Adam(no decay) - lr*wd*W0 exactly
    (decay outside the adaptive scaling), whereas Adam+L2 feeds lambda*W0 through the scaling."""
    lr, wd = 0.01, 0.1
    data = _data()

    def one_step(overrides):
        _, model, optim = _build(["optimizer.lr=" + str(lr), *overrides])
        w0 = model.layer1.linear.weight.detach().clone()
        make_trainer(model, optim, data, data, epochs=1, batch_size=len(data), seed=0).fit()
        return w0, model.layer1.linear.weight.detach().clone()

    w0, plain = one_step(["optimizer=adam", "reg=[]"])
    _, adamw = one_step(["optimizer=adamw", f"optimizer.weight_decay={wd}", "reg=[]"])
    _, adam_l2 = one_step(["optimizer=adam", "reg=[l2]", f"reg.l2.strength={wd}"])
    torch.testing.assert_close(adamw, plain - lr * wd * w0, atol=1e-7, rtol=0)
    # Adam's first step is ~ -lr*sign(g + wd*W0): the coupled penalty goes through the scaling
    # and gives a different step from the decoupled shrink.
    assert (adam_l2 - adamw).abs().max() > 1e-4


def _grads(model: nn.Module, penalty, data: Split, with_penalty: bool) -> dict[str, torch.Tensor]:
    model.zero_grad(set_to_none=True)
    loss = F.cross_entropy(model(data.x), data.y)
    if with_penalty:
        loss = loss + penalty()
    loss.backward()
    return {n: p.grad.clone() for n, p in model.named_parameters()}


@pytest.mark.parametrize(
    "model_ov", [[], ["model=cnn", "model.channels=[4]"], ["model.batch_norm=after"]], ids=["mlp", "cnn", "mlp_bn"]
)
@pytest.mark.parametrize("reg", ["l1", "l2", "elastic"])
def test_penalty_gradient_matches_formula(reg, model_ov):
    """grad(J + penalty) - grad(J) = l1*sign(W) + l2*W on weight matrices / kernels and exactly
    zero on biases and batch-norm parameters."""
    l1, l2 = {"l1": (1e-2, 0.0), "l2": (0.0, 3e-2), "elastic": (1e-2, 3e-2)}[reg]
    ov = {
        "l1": [f"reg.l1.strength={l1}"],
        "l2": [f"reg.l2.strength={l2}"],
        "elastic": [f"reg.elastic.l1={l1}", f"reg.elastic.l2={l2}"],
    }[reg]
    _, model, optim = _build([f"reg=[{reg}]", *ov, *model_ov])
    model.eval()  # batch norm with running stats: both passes see the same function
    data = _data(16)
    g_data = _grads(model, optim.penalty, data, with_penalty=False)
    g_total = _grads(model, optim.penalty, data, with_penalty=True)
    weights = {id(m.weight) for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d))}
    n_weights = 0
    for name, p in model.named_parameters():
        diff = g_total[name] - g_data[name]
        if id(p) in weights:
            n_weights += 1
            expected = l1 * torch.sign(p.detach()) + l2 * p.detach()
            torch.testing.assert_close(diff, expected, atol=1e-6, rtol=1e-5, msg=name)
        else:  # bias, batch-norm gamma/beta
            assert torch.equal(g_total[name], g_data[name]), name
    assert n_weights >= 2
    # and the value is the formula
    w = [p.detach() for p in model.parameters() if id(p) in weights]
    expected = l1 * sum(x.abs().sum() for x in w) + 0.5 * l2 * sum(x.pow(2).sum() for x in w)
    torch.testing.assert_close(optim.penalty(), expected)


def test_penalty_alone_l1_gradient_is_lambda_sign_and_biases_untouched():
    lam = 1e-3
    _, model, optim = _build(["reg=[l1]", f"reg.l1.strength={lam}"])
    optim.penalty().backward()
    for name, p in model.named_parameters():
        if name.endswith("weight"):
            assert torch.equal(p.grad, lam * torch.sign(p.detach())), name
        else:
            assert p.grad is None, name  # biases are not even in the graph


def test_no_reg_has_no_penalty_and_no_constraints():
    _, _, optim = _build(["reg=[]"])
    assert optim.penalty is None and list(optim.constraints) == []


def test_penalized_weights_are_linear_and_conv_weights_only():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(8, 3))
    assert [id(w) for w in penalized_weights(model)] == [id(model[0].weight), id(model[3].weight)]
    w = torch.tensor([[3.0, -4.0]])
    assert float(Penalty([w], l1=0.1, l2=0.2)()) == pytest.approx(0.1 * 7 + 0.5 * 0.2 * 25)
