"""reg=[augment]: batched on-device augmentation of TRAINING batches only, reproducible from
the trainer's seeded generator; dev and test tensors are never touched."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from conftest import SHARED_DATA, make_cfg, run_cfg

import torchprac.data
from torchprac.config import reg_cfg
from torchprac.data.augment import Augment, build_augment

FAST_RUN = ["model.hidden=[32]", "trainer.epochs=2", "trainer.checkpoint.enabled=false"]


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _images(n: int = 256) -> torch.Tensor:
    return torch.randn(n, 3, 8, 8, generator=_gen(123))


def test_flip_is_per_example_mirror_about_half_the_time():
    x = _images()
    out = Augment(flip=True, generator=_gen())(x)
    same = (out == x).flatten(1).all(1)
    mirrored = (out == x.flip(-1)).flatten(1).all(1)
    assert (same ^ mirrored).all()  # each example is either untouched or exactly mirrored
    n = len(x)
    assert abs(mirrored.float().mean().item() - 0.5) < 5 * (0.25 / n) ** 0.5


def test_shift_is_a_per_example_translation_within_range():
    s = 2
    x = _images()
    out = Augment(shift=s, generator=_gen())(x)
    assert out.shape == x.shape
    padded = F.pad(x, (s, s, s, s), mode="replicate")
    h, w = x.shape[-2:]
    offsets = set()
    for i in range(len(x)):
        # exactly one crop offset (dy, dx) in [0, 2s]^2 of the padded example reproduces it
        hits = [
            (dy, dx)
            for dy in range(2 * s + 1)
            for dx in range(2 * s + 1)
            if torch.equal(out[i], padded[i, :, dy : dy + h, dx : dx + w])
        ]
        assert len(hits) == 1, i
        offsets.add(hits[0])
    assert len(offsets) == (2 * s + 1) ** 2  # every shift in range occurs over 256 examples


def test_noise_has_the_configured_std_and_zero_mean():
    x = _images(1024)
    out = Augment(noise=0.3, generator=_gen())(x)
    eps = out - x
    assert abs(eps.std().item() - 0.3) < 0.01 and abs(eps.mean().item()) < 0.005


def test_never_in_place_and_reproducible_from_the_generator():
    x = _images()
    x0 = x.clone()
    aug = dict(flip=True, shift=1, noise=0.1)
    a = Augment(**aug, generator=_gen(7))(x)
    b = Augment(**aug, generator=_gen(7))(x)
    c = Augment(**aug, generator=_gen(8))(x)
    assert torch.equal(x, x0)
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_vectors_and_signals_get_noise_only():
    reg = {"augment": {"flip": True, "shift": 2, "noise": 0.5}}
    for shape in ((2,), (1, 40)):  # moons-like features, MNIST-1D-like signals
        aug = build_augment(reg, shape, generator=_gen())
        assert aug is not None and not aug.flip and aug.shift == 0 and aug.noise == 0.5
        x = torch.randn(4096, *shape, generator=_gen(1))
        assert abs((aug(x) - x).std().item() - 0.5) < 0.02
    # nothing selected / everything off: no augmentation object at all
    assert build_augment({}, (1, 8, 8)) is None
    assert build_augment({"augment": {"flip": False, "shift": 0, "noise": 0.0}}, (1, 8, 8)) is None


def test_config_reaches_the_augment_object():
    cfg = make_cfg(["reg=[augment]", "reg.augment.flip=true", "reg.augment.shift=2", "reg.augment.noise=0.2"])
    aug = build_augment(reg_cfg(cfg), (1, 8, 8))
    assert (aug.flip, aug.shift, aug.noise, aug.images) == (True, 2, 0.2, True)


def test_run_augments_training_batches_only_and_leaves_splits_bit_identical(tmp_path, monkeypatch):
    captured: dict = {}
    real_build_data = torchprac.data.build_data

    def spy_build_data(*a, **k):
        splits = real_build_data(*a, **k)
        captured["splits"] = splits
        captured["before"] = {n: (s.x.clone(), s.y.clone()) for n, s in splits.items()}
        return splits

    calls: list[tuple[torch.Tensor, torch.Tensor]] = []
    real_call = Augment.__call__

    def spy_call(self, x):
        out = real_call(self, x)
        calls.append((x.detach().clone(), out.detach().clone()))
        return out

    monkeypatch.setattr(torchprac.data, "build_data", spy_build_data)
    monkeypatch.setattr(Augment, "__call__", spy_call)
    _, m = run_cfg(
        ["reg=[augment]", "reg.augment.shift=1", "reg.augment.noise=0.1", "trainer.batch_size=128", *FAST_RUN],
        tmp_path / "a",
    )
    assert m["status"] == "completed"

    splits = captured["splits"]
    for name, (x0, y0) in captured["before"].items():  # every split, train included, untouched
        s = dict(splits.items())[name]
        assert torch.equal(s.x, x0) and torch.equal(s.y, y0), name
    # one call per training step (ceil(1079/128) = 9 per epoch), never for dev/test evaluation
    n_train = len(splits.train)
    assert len(calls) == 2 * -(-n_train // 128)
    train_x = splits.train.x.flatten(1)
    for inp, out in calls:
        assert len(inp) <= 128
        # every row of every augmented input batch is a row of train.x (never dev or test)
        assert (inp.flatten(1)[:, None, :] == train_x[None]).all(-1).any(1).all()
        assert not torch.equal(inp, out)


def test_augmented_run_is_reproducible_and_seed_dependent(tmp_path):
    ov = ["reg=[augment]", "reg.augment.noise=0.5", *FAST_RUN]
    _, a = run_cfg(ov, tmp_path / "a")
    _, b = run_cfg(ov, tmp_path / "b")
    assert a["metrics"] == b["metrics"]
    _, plain = run_cfg(["reg=[]", *FAST_RUN], tmp_path / "c")
    assert plain["metrics"]["train"] != a["metrics"]["train"]  # the augmentation did something


def test_augment_on_mnist1d_signals(tmp_path, shared_data):
    ov = [
        "data=mnist1d",
        f"data.root={SHARED_DATA / 'mnist1d'}",
        "data.train_subset=500",
        "reg=[augment]",
        "trainer.epochs=1",
        "trainer.checkpoint.enabled=false",
        "model.hidden=[32]",
    ]
    _, m = run_cfg(ov, tmp_path)
    assert m["status"] == "completed" and m["metrics"]["dev"]["accuracy"] > 0.1
    # the reg choice is visible in the run's TensorBoard hparams via hparams_of
    from torchprac.run import hparams_of

    assert hparams_of(make_cfg(ov))["augment"] is True


@pytest.mark.parametrize("bad", ["reg.augment.noise=-0.1", "reg.augment.shift=-1", "reg.augment.shift=1.5"])
def test_bad_augment_values_are_refused(bad, tmp_path):
    from torchprac.errors import ConfigError

    key = bad.split("=")[0]
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        run_cfg(["reg=[augment]", bad], tmp_path)
