"""The activation recorder against the tensors its hooks saw, and the figures against the
recorder: histograms, mean/std, dead and saturated fractions; hooks only on sampled steps."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from torchprac.nn.models import ModelSpec
from torchprac.viz.activations import ActivationRecorder, LayerActivations

pytest.importorskip("matplotlib")


def _model(act=nn.ReLU, hidden=(16, 8)) -> nn.Module:
    torch.manual_seed(0)
    return ModelSpec("mlp", list(hidden)).make((5,), 3, activation=act)


def _train(model, recorder, steps: int, seen: list | None = None, batch: int = 32):
    """`steps` SGD steps driven the way the Trainer drives the recorder; `seen` collects what
    each activation module output (and its input) on every training forward."""
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    g = torch.Generator().manual_seed(1)
    handles = []
    if seen is not None:
        for layer in recorder.layers:
            handles.append(
                layer.act.register_forward_hook(
                    lambda m, i, o, name=layer.name: seen.append((name, i[0].detach().clone(), o.detach().clone()))
                )
            )
    if recorder.due(0):
        recorder.arm()
    for step in range(1, steps + 1):
        x, y = torch.randn(batch, 5, generator=g), torch.randint(0, 3, (batch,), generator=g)
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        recorder.after_step(step)
    for h in handles:
        h.remove()


def test_recorded_statistics_match_the_hooked_tensors():
    model = _model()
    rec = ActivationRecorder(model, every=3, bins=20)
    seen: list = []
    _train(model, rec, steps=7, seen=seen)
    # sampled steps: 0, 3, 6 (0-based) -> recorded after steps 1, 4, 7
    names = [h.name for h in rec.history]
    assert names == ["layer1", "layer2"]
    for h in rec.history:
        assert h.steps == [1, 4, 7]
        outs = [(z, a) for n, z, a in seen if n == h.name]
        for j, step in enumerate(h.steps):
            z, a = outs[step - 1]
            a64 = a.double().flatten().numpy()
            assert h.numel[j] == a64.size
            assert h.lo[j] == pytest.approx(a64.min(), abs=1e-6) and h.hi[j] == pytest.approx(a64.max(), abs=1e-6)
            assert h.mean[j] == pytest.approx(a64.mean(), rel=1e-5, abs=1e-6)
            assert h.std[j] == pytest.approx(a64.std(ddof=1), rel=1e-4)
            ref, _ = np.histogram(a64, bins=20, range=(a64.min(), a64.max()))
            assert h.counts[j].sum() == a64.size
            assert np.abs(h.counts[j] - ref).max() <= 1  # only values on a bin edge may move
            dead = 1.0 - (z > 0).any(0).float().mean().item()  # units <= 0 on the whole batch
            assert h.dead[j] == pytest.approx(dead)
        assert h.saturated is None  # ReLU: not a saturating activation


def test_sigmoid_saturation_and_natural_range():
    model = _model(act=nn.Sigmoid)
    with torch.no_grad():  # large weights: many units pinned at 0 or 1
        model.layer1.linear.weight.mul_(20)
    rec = ActivationRecorder(model, every=1, bins=10)
    seen: list = []
    _train(model, rec, steps=2, seen=seen)
    h = rec.history[0]
    a = [o for n, _, o in seen if n == "layer1"][0]
    sat = (a * (1 - a) < 0.05 * 0.25).float().mean().item()
    assert sat > 0.2 and h.saturated[0] == pytest.approx(sat)
    assert h.natural_range == (0.0, 1.0) and h.dead is None


def test_hooks_exist_only_around_sampled_steps():
    model = _model()
    rec = ActivationRecorder(model, every=4, bins=8)
    acts = [layer.act for layer in rec.layers]
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    armed_at = []
    rec.arm()
    for step in range(1, 10):
        armed_at.append(all(len(m._forward_hooks) == 1 for m in acts))
        loss = model(torch.randn(4, 5)).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
        rec.after_step(step)
    # armed for the steps 0, 4, 8 (0-based), no hook on the others
    assert armed_at == [True, False, False, False, True, False, False, False, True]
    assert rec.history[0].steps == [1, 5, 9]
    # an evaluation forward (no grad) is never recorded
    rec.arm()
    with torch.no_grad():
        model(torch.randn(4, 5))
    assert all(c is None for c in rec.captured)


def test_one_host_read_per_sampled_step(monkeypatch):
    model = _model()
    rec = ActivationRecorder(model, every=1, bins=8)
    reads = []
    real = torch.Tensor.cpu

    def counting_cpu(self, *a, **k):
        reads.append(tuple(self.shape))
        return real(self, *a, **k)

    monkeypatch.setattr(torch.Tensor, "cpu", counting_cpu)
    _train(model, rec, steps=3)
    assert reads == [(2, 8 + 8)] * 3  # one stacked (layers, stats + bins) tensor per sample


def _figure_layers() -> list[LayerActivations]:
    model = _model(hidden=(12, 12, 12))
    rec = ActivationRecorder(model, every=2, bins=16)
    _train(model, rec, steps=9)
    return rec.history


def test_figures_show_the_recorded_data():
    from torchprac.viz import figures as F

    layers = _figure_layers()
    # distributions: the first and last sampled step's densities, one line per layer
    fig = F.activation_distributions(layers)
    first, last = fig.axes
    for ax, which in ((first, 0), (last, -1)):
        stairs = [p for p in ax.patches]
        assert len(stairs) == len(layers)
        for st, layer in zip(stairs, layers):
            edges, density = layer.density(which)
            assert np.allclose(st.get_data().values, density)
            assert np.allclose(st.get_data().edges, edges)
            assert np.sum(density * np.diff(edges)) == pytest.approx(1.0)
    # colorful dimension: log(1 + counts), one column per sample, each column holds every value
    fig = F.colorful_dimension(layers)
    for ax, layer in zip(fig.axes, layers):
        img = np.asarray(ax.images[0].get_array())
        assert img.shape == (layer.counts.shape[1], len(layer.steps))
        assert np.allclose(np.expm1(img).sum(0), layer.numel)
        assert ax.images[0].get_extent()[:2] == [layer.steps[0], layer.steps[-1]]
    # mean / std / dead lines are the recorded series
    fig = F.activation_stats(layers)
    ax_m, ax_s, ax_d = fig.axes
    for ln, layer in zip(ax_m.lines, layers):
        assert np.allclose(ln.get_ydata(), layer.mean)
    for ln, layer in zip(ax_s.lines, layers):
        assert np.allclose(ln.get_ydata(), layer.std)
    for ln, layer in zip(ax_d.lines, layers):
        assert np.allclose(ln.get_ydata(), layer.dead)
    # the overview holds all of it
    overview = F.activations_overview(layers, title="t")
    assert F.to_rgb(overview).shape[2] == 3


def test_rebin_keeps_totals_and_places_mass():
    from torchprac.viz.figures import rebin

    counts = np.array([5.0, 0, 0, 3])  # on [0, 4]: centres 0.5 and 3.5
    out = rebin(counts, 0, 4, 0, 8, 8)
    assert out.sum() == 8 and out[0] == 5 and out[3] == 3
    assert rebin(np.array([4.0, 0]), 2, 2, 0, 4, 4).tolist() == [0, 0, 4, 0]  # a constant layer


def test_state_round_trip_through_a_safe_checkpoint(tmp_path):
    model = _model(hidden=(12, 12, 12))
    rec = ActivationRecorder(model, every=2, bins=16)
    _train(model, rec, steps=9)
    path = tmp_path / "s.pt"
    torch.save({"viz": rec.state_dict()}, path)
    again = ActivationRecorder(_model(hidden=(12, 12, 12)), every=2, bins=16)
    again.load_state_dict(torch.load(path, weights_only=True)["viz"])
    for a, b in zip(again.history, rec.history):
        assert a.steps == b.steps and np.allclose(a.counts, b.counts) and np.allclose(a.dead, b.dead)
    other = ActivationRecorder(_model(hidden=(12, 12)), every=2, bins=16)  # another model: not mixed in
    other.load_state_dict(torch.load(path, weights_only=True)["viz"])
    assert other.steps == []


def test_long_runs_keep_a_bounded_thinned_history():
    from torchprac.viz import activations

    model = _model()
    rec = ActivationRecorder(model, every=1, bins=4)
    old = activations.MAX_KEPT
    activations.MAX_KEPT = 10
    try:
        _train(model, rec, steps=25, batch=4)
    finally:
        activations.MAX_KEPT = old
    assert len(rec.steps) <= 10 and rec.steps[0] == 1 and rec.steps[-1] == 25
    assert rec.steps == sorted(rec.steps)


def test_large_activations_are_read_through_an_even_strided_subset():
    from torchprac.viz import activations

    a = torch.arange(100_000, dtype=torch.float32).reshape(1000, 100) / 1000
    row = activations.layer_stats(a, a, nn.ELU(), 10)
    sub = a.flatten()[:: -(-a.numel() // activations.MAX_VALUES)]
    assert sub.numel() <= activations.MAX_VALUES
    assert row[0] == sub.min() and row[1] == sub.max() and row[8:].sum() == sub.numel()
    assert row[4].item() == pytest.approx(sub.mean().item(), rel=1e-6)
