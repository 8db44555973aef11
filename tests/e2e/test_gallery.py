"""The gallery (docs/gallery.md): each entry's claim, checked in a fast version of its preset
(small data, few epochs, several seeds where the claim is statistical) through the gallery's own
measurement code, asserting the claim's *direction* with a margin taken from the spread over
seeds. The full commands (`python train.py -m experiment=gallery_<entry>`, then
`python -m torchprac.gallery <entry>`) are the `gallery_full` tests: minutes each, deselected
by default (pyproject's addopts); run them with `pytest -m gallery_full tests/e2e/test_gallery.py`."""

from __future__ import annotations

import itertools
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import ROOT, make_cfg, make_rc, run_cli
from omegaconf import OmegaConf

from torchprac.gallery import ENTRIES

pytest.importorskip("matplotlib")

QUIET = ["trainer.progress=false", "viz.enabled=false", "trainer.health.enabled=false"]


def mini_sweep(root: Path, preset: str, grid: dict[str, list[str]], extra: list[str] = (), skip=None) -> Path:
    """What `python train.py -m experiment=<preset> <grid>` writes, run in-process and small: one
    job dir per combination with Hydra's .hydra/overrides.yaml and config.yaml, the run's
    metrics.json, history.json and (when the preset keeps them) checkpoints."""
    keys = list(grid)
    from torchprac.run import run

    for i, values in enumerate(itertools.product(*grid.values())):
        ov = [f"{k}={v}" for k, v in zip(keys, values)]
        if skip is not None and skip(dict(zip(keys, values))):
            continue
        job = root / str(i)
        (job / ".hydra").mkdir(parents=True)
        cfg = make_cfg([f"experiment={preset}", *QUIET, *extra, *ov], job)
        (job / ".hydra" / "overrides.yaml").write_text(json.dumps([*ov, f"experiment={preset}"]))
        OmegaConf.save(cfg, job / ".hydra" / "config.yaml")
        run(cfg)
    return root


def spread(d: dict) -> float:
    """The seed-to-seed range of a Spread dict (0 for one seed)."""
    return d["max"] - d["min"] if d["n"] > 1 else 0.0


# -- 1. why nonlinearity ------------------------------------------------------------------------
def test_identity_net_is_one_affine_map():
    """The reason behind the claim: four identity layers compute x @ W + b for one (W, b)."""
    import torchprac
    from torchprac.gallery.nonlinearity import collapse_affine

    torch.manual_seed(0)
    model = torchprac.build("model", "mlp", hidden=[32, 32, 32, 32]).make(
        (2,), 2, activation=torchprac.build("activation", "identity"), init=torchprac.build("init", "he_normal")
    )
    x = torch.randn(100, 2)
    w, b = collapse_affine(model, 2)
    with torch.no_grad():
        torch.testing.assert_close(model(x), x @ w + b, rtol=1e-5, atol=1e-5)


def test_nonlinearity_identity_no_better_than_logistic_regression(tmp_path):
    from torchprac.gallery import nonlinearity

    root = mini_sweep(
        tmp_path,
        "gallery_nonlinearity",
        {"activation": ["identity", "relu"], "model.hidden": ["[32,32,32,32]", "[]"], "trainer.seed": ["0", "1", "2"]},
        ["data.n_samples=400", "trainer.epochs=60"],
        skip=lambda v: v["activation"] == "relu" and v["model.hidden"] == "[]",
    )
    c = nonlinearity.measure(root)["configs"]
    ident, lr, relu = (c[k]["dev_accuracy"] for k in ("identity net", "logistic regression", "relu net"))
    margin = max(spread(ident), spread(lr), spread(relu))
    assert relu["min"] > max(ident["max"], lr["max"]) + 0.1  # every relu seed beats every linear one
    assert relu["mean"] - max(ident["mean"], lr["mean"]) > 2 * margin
    assert ident["mean"] <= lr["mean"] + margin  # the deep identity net is no better than logistic regression
    assert abs(ident["mean"] - 0.5) < 0.15 and abs(lr["mean"] - 0.5) < 0.15  # both near chance on the circles


# -- 2. normalising inputs ----------------------------------------------------------------------
def test_normalize_reaches_the_target_loss_raw_features_do_not(tmp_path):
    from torchprac.gallery import normalize

    root = mini_sweep(
        tmp_path,
        "gallery_normalize",
        {"data.normalize": ["false", "true"], "optimizer.lr": ["1e-5", "1"], "trainer.seed": ["0", "1"]},
        ["trainer.epochs=30"],
    )
    n = normalize.measure(root)
    raw, norm = n["configs"]["raw"], n["configs"]["normalized"]
    assert all(s is not None and s <= 5 for s in norm["1"]["steps"])  # a few steps at lr 1
    assert all(s is None for v in raw.values() for s in v["steps"])  # raw: never, at either lr
    best_raw = min(v["final_train_loss"]["min"] for v in raw.values())
    assert best_raw > 2 * normalize.TARGET > 10 * norm["1"]["final_train_loss"]["max"]
    assert n["kappa"]["raw"] > 1e4 * n["kappa"]["normalized"]  # the ravine: condition number


def test_condition_number_of_softmax_regression_hessian():
    """κ(E[x̃x̃ᵀ]) is the Hessian's at W = 0: checked against autograd's Hessian of the loss."""
    from torchprac.gallery.normalize import condition_number

    g = torch.Generator().manual_seed(0)
    x = torch.randn(50, 3, generator=g, dtype=torch.float64) * torch.tensor([1.0, 10.0, 0.1], dtype=torch.float64)
    y = torch.randint(0, 3, (50,), generator=g)

    def loss(flat):
        w = flat.view(4, 3)
        return torch.nn.functional.cross_entropy(torch.cat([x, torch.ones(50, 1, dtype=x.dtype)], 1) @ w, y)

    h = torch.autograd.functional.hessian(loss, torch.zeros(12, dtype=torch.float64))
    ev = torch.linalg.eigvalsh(h)
    ev = ev[ev > 1e-12 * ev.max()]  # the softmax's shift invariance: a zero eigenvalue per feature
    assert condition_number(x.numpy()) == pytest.approx(float(ev.max() / ev.min()), rel=1e-6)


# -- 3. batch size ------------------------------------------------------------------------------
def test_batch_size_minibatch_beats_full_batch_per_epoch_and_batch_one_per_second(tmp_path):
    from torchprac.gallery import batch_size

    root = mini_sweep(
        tmp_path,
        "gallery_batch_size",
        {"trainer.batch_size": ["100000", "32", "1"], "trainer.seed": ["0", "1"]},
        ["data.train_subset=300", "trainer.epochs=3"],
    )
    c = batch_size.measure(root)["configs"]
    gd, mini, one = c["batch = m = 300 (gd)"], c["mini-batch 32"], c["batch 1 (sgd)"]
    assert (gd["steps_per_epoch"], mini["steps_per_epoch"], one["steps_per_epoch"]) == (1, 10, 300)
    # per pass over the data: 1 step of gd moves the loss far less than 10 mini-batch steps
    assert gd["final_train_loss"]["min"] > mini["final_train_loss"]["max"] + spread(mini["final_train_loss"])
    # per second: 300 single-example steps cost much more than 10 vectorised ones
    assert one["seconds_per_epoch"]["min"] > 3 * mini["seconds_per_epoch"]["max"]


# -- 4. optimizer paths -------------------------------------------------------------------------
def test_paths_are_torch_optimizers_from_the_optimizer_group():
    from torchprac.gallery import paths

    opt = paths.make_optimizer("nesterov", 0.01, paths.Point((0.0, 0.0)))
    assert type(opt) is torch.optim.SGD
    assert opt.defaults["momentum"] == 0.9 and opt.defaults["nesterov"] is True  # conf/optimizer/nesterov.yaml
    # Adam's bias correction: the first step is lr * sign(gradient) in every coordinate.
    xy = paths.path(paths.QUADRATIC, "adam", 0.1, steps=1)
    torch.testing.assert_close(torch.tensor(xy[1] - xy[0]), torch.tensor([0.1, -0.1], dtype=torch.float64))


def test_paths_stability_limits_on_the_quadratic():
    """gd on ½(x² + κy²) is stable iff lr < 2/κ; heavy-ball momentum β iff lr < 2(1+β)/κ."""
    from torchprac.gallery.paths import KAPPA, QUADRATIC, path

    def blows(name, lr):
        return bool(abs(path(QUADRATIC, name, lr, steps=300)[-1, 1]) > 1.0) or bool(
            torch.isnan(torch.tensor(path(QUADRATIC, name, lr, steps=300)[-1])).any()
        )

    assert not blows("sgd", 0.95 * 2 / KAPPA) and blows("sgd", 1.05 * 2 / KAPPA)
    assert not blows("momentum", 0.95 * 3.8 / KAPPA) and blows("momentum", 1.05 * 3.8 / KAPPA)


def test_paths_momentum_damps_the_zigzag_at_the_same_step():
    from torchprac.gallery.paths import KAPPA, QUADRATIC, path, sign_changes, steps_to_tol

    lr = 1.75 / KAPPA  # gd multiplies y by -0.75 per step
    sgd = path(QUADRATIC, "sgd", lr, stop_at_tol=True)
    mom = path(QUADRATIC, "momentum", lr * (1 - 0.9), stop_at_tol=True)  # the course's averaged momentum
    n_sgd, n_mom = steps_to_tol(QUADRATIC, sgd), steps_to_tol(QUADRATIC, mom)
    assert n_sgd is not None and n_mom is not None and n_mom < 0.9 * n_sgd
    assert sign_changes(mom, n_mom) < 0.25 * sign_changes(sgd, n_sgd)


# -- 5. initialisation in depth -----------------------------------------------------------------
def _digits_batch(n: int = 256):
    from torchprac.data import build_data

    splits = build_data(make_rc(["data=digits"]).data, seed=0)
    return splits.train.x[:n], splits.train.y[:n]


def _init_stats(overrides: list[str], seed: int, x, y) -> dict:
    from torchprac.gallery.probes import layer_stats
    from torchprac.run import build_model

    rc = make_rc(overrides)
    torch.manual_seed(seed)
    model = build_model(rc, tuple(x.shape[1:]), 10, torch.device("cpu"))
    return layer_stats(model, x, y)


def test_init_depth_activations_at_initialisation():
    x, y = _digits_batch()
    last = {}
    for net in ("relu30_xavier", "relu30_he", "tanh5_standard", "tanh5_xavier"):
        last[net] = [
            _init_stats(["experiment=gallery_init_depth", f"gallery.net={net}"], s, x, y)["act_std"][-1]
            for s in range(3)
        ]
    # ReLU halves the second moment per layer under Var 1/n: 30 layers shrink the std by ~2^15.
    assert max(last["relu30_xavier"]) < 1e-3 < 0.1 < min(last["relu30_he"])
    # tanh: the old U(±1/√n) rule (Var 1/(3n)) shrinks the signal layer after layer; Xavier less.
    assert max(last["tanh5_standard"]) < 0.5 * min(last["tanh5_xavier"])


def test_init_depth_he_trains_where_xavier_stalls(tmp_path):
    from torchprac.gallery import init_depth

    root = mini_sweep(
        tmp_path,
        "gallery_init_depth",
        {"gallery.net": ["relu30_xavier", "relu30_he"], "optimizer.lr": ["0.005"], "trainer.seed": ["0", "1"]},
        ["trainer.epochs=4", "trainer.checkpoint.enabled=false"],
    )
    rs = init_depth.runs(root)
    loss = {
        net: [init_depth.metric(r, "train", "loss") for r in rs if init_depth.net_of(r) == net]
        for net in ("relu30_xavier", "relu30_he")
    }
    xav, he = loss["relu30_xavier"], loss["relu30_he"]
    assert all(abs(v - math.log(10)) < 0.01 for v in xav)  # stalled at chance
    assert max(he) < min(xav) - 5 * (max(xav) - min(xav)) - 0.05


# -- 6. self-normalisation ----------------------------------------------------------------------
def test_selu_keeps_std_near_one_through_100_layers():
    from torchprac.gallery.selu import BAND

    x, y = _digits_batch()
    for seed in range(3):
        stats = {
            a: _init_stats(["experiment=gallery_selu", f"activation={a}"], seed, x, y)["act_std"]
            for a in ("selu", "relu", "elu")
        }
        assert len(stats["selu"]) == 100
        assert all(BAND[0] <= s <= BAND[1] for s in stats["selu"])  # every layer, depth 100 included
        assert not BAND[0] <= stats["relu"][-1] <= BAND[1] and stats["relu"][-1] < 1e-6
        assert not BAND[0] <= stats["elu"][-1] <= BAND[1]


# -- 7. batch norm and the learning rate --------------------------------------------------------
def test_batch_norm_widens_the_trainable_lr_range(tmp_path):
    from torchprac.gallery import batch_norm

    root = mini_sweep(
        tmp_path,
        "gallery_batch_norm",
        {"model.batch_norm": ["none", "before"], "optimizer.lr": ["0.03", "0.3", "1"], "trainer.seed": ["0", "1"]},
        ["trainer.epochs=5"],
    )
    p = batch_norm.measure(root)["placements"]
    none, before = p["none"]["range"], p["before"]["range"]
    assert before is not None and (none is None or before[1] > none[1])  # a higher lr still trains
    assert none is None or (before[0] <= none[0] and p["before"]["decades"] > p["none"]["decades"])


# -- 8. exploding gradients and clipping --------------------------------------------------------
def test_clip_value_turns_the_gradient_clip_norm_keeps_it():
    """The exact 2-D example, through the clip group's own Clipper."""
    from torchprac.gallery import clipping

    ex = clipping.example()  # Géron's: [0.9, 100] -> value [0.9, 1.0], norm [0.00899964, 0.9999595]
    assert ex["value_clipped"] == pytest.approx([0.9, 1.0], abs=1e-12)
    assert ex["cos_value"] == pytest.approx((0.81 + 100) / (math.hypot(0.9, 100) * math.hypot(0.9, 1)), abs=1e-12)
    assert ex["cos_value"] < 0.75  # turned by 41.5°
    assert ex["cos_norm"] == pytest.approx(1.0, abs=1e-12)
    assert ex["norm_clipped"] == pytest.approx([0.00899964, 0.9999595], abs=1e-6)
    # and on many random gradients: value clipping moves the direction, norm clipping never does
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        grad = [
            torch.randn(5, 3, generator=g, dtype=torch.float64) * 4,
            torch.randn(3, generator=g, dtype=torch.float64),
        ]
        assert clipping.cosine(grad, clipping.clipped(grad, "norm", 1.0)) == pytest.approx(1.0, abs=1e-12)
        assert clipping.cosine(grad, clipping.clipped(grad, "value", 0.5)) < 0.999


def test_clip_norm_rescues_the_exploding_net(tmp_path):
    from torchprac.gallery import clipping

    root = mini_sweep(
        tmp_path, "gallery_clipping", {"clip.max_norm": ["1e9", "10"], "trainer.seed": ["0", "1"]}, ["trainer.epochs=3"]
    )
    c = clipping.measure(root)["configs"]
    raw, clip = c["no clipping (max_norm 1e9)"], c["clip=norm, max_norm 10"]
    assert raw["train_loss"]["n"] == 0 or raw["train_loss"]["min"] > 1e3  # exploded (or non-finite)
    assert clip["train_loss"]["max"] < math.log(10)  # below chance: it learns
    assert clip["first_epoch_norm"]["min"] > 5 * clip["last_epoch_norm"]["max"]  # the norm comes down


# -- 9. regularisation --------------------------------------------------------------------------
def test_regularization_narrows_the_train_dev_loss_gap(tmp_path):
    from torchprac.gallery import regularization

    root = mini_sweep(
        tmp_path,
        "gallery_regularization",
        {"reg": ["[]", "[l2,dropout]"], "trainer.seed": ["42", "0", "1"]},
        ["trainer.epochs=200", "trainer.checkpoint.enabled=false"],
    )
    r = regularization.measure(root)["regs"]
    none, both = r["[]"]["loss_gap"], r["[l2,dropout]"]["loss_gap"]
    assert none["mean"] - both["mean"] > max(none["std"], both["std"])
    assert r["[]"]["train_loss"]["mean"] < r["[l2,dropout]"]["train_loss"]["mean"]  # regularisation costs fit


# -- 10. decoupled weight decay -----------------------------------------------------------------
def test_adamw_tolerates_a_decay_that_ruins_adam_l2(tmp_path):
    from torchprac.gallery import adamw

    root = mini_sweep(
        tmp_path,
        "gallery_adamw",
        {
            "optimizer": ["adam", "adamw"],
            "optimizer.lr": ["3e-3"],
            "optimizer.weight_decay": ["0", "1"],
            "trainer.seed": ["0", "1"],
        },
        ["trainer.epochs=10"],
    )
    n = adamw.measure(root)
    o, noise = n["optimizers"], n["median_seed_range"]
    adam_acc, adamw_acc = (o[k]["dev_accuracy"][0] for k in ("adam", "adamw"))  # one lr: [wd 0, wd 1]
    assert adam_acc[1] < adam_acc[0] - 0.1 - 5 * noise  # L2 at λ = 1 inside Adam: the weights collapse
    assert abs(adamw_acc[1] - adamw_acc[0]) < 0.05 + 2 * noise  # decoupled decay lr·λ per step: tolerated


# -- 11. schedules ------------------------------------------------------------------------------
def test_schedules_end_where_their_formulas_say(tmp_path):
    """The preset's schedules, scaled to a 10-epoch budget, on digits (no download): each ends at
    its formula's lr; performance scheduling only decays when the dev loss stalls."""
    from torchprac.gallery import schedules

    root = mini_sweep(
        tmp_path,
        "gallery_schedules",
        {"gallery.schedule": ["constant", "power", "exponential", "piecewise", "onecycle"], "trainer.seed": ["0"]},
        ["data=digits", "data.train_subset=null", "trainer.epochs=10", "trainer.batch_size=128"],
    )
    rs = {schedules.schedule_of(r): r for r in schedules.runs(root)}
    last = {k: schedules.series(r, "lr/weights")[1][-1] for k, r in rs.items()}
    steps = 9 * 10  # 1079 digits in batches of 128: 9 steps per epoch; lr read after the last step
    assert last["constant"] == 0.05
    assert last["power"] == pytest.approx(0.05 / (1 + steps / 94), rel=1e-3)
    assert last["exponential"] == pytest.approx(0.05 * 0.1 ** (steps / 940), rel=1e-3)
    assert last["piecewise"] == pytest.approx(0.002)
    assert last["onecycle"] < 1e-3 * last["constant"]


# -- the full commands ----------------------------------------------------------------------------
# Every entry of the gallery but `paths`, which has no sweep (it drives torch.optim on 2-D surfaces).
FULL = [e for e in ENTRIES if e != "paths"]


@pytest.mark.slow
@pytest.mark.gallery_full
@pytest.mark.parametrize("entry", FULL)
def test_full_gallery_command(entry, tmp_path):
    """The documented command and figure script, at full size (a few minutes each)."""
    if entry == "schedules" and not (ROOT.parent / "shared" / "data" / "FashionMNIST").is_dir():
        pytest.skip("../shared/data has no FashionMNIST")
    sweep = tmp_path / "sweep"
    p = run_cli(["-m", f"experiment=gallery_{entry}", f"hydra.sweep.dir={sweep}"], timeout=1200)
    assert p.returncode == 0, p.stderr[-3000:]
    out = tmp_path / f"gallery_{entry}.png"
    p = subprocess.run(
        [sys.executable, "-m", "torchprac.gallery", entry, str(sweep), "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert p.returncode == 0, p.stderr[-3000:]
    assert out.stat().st_size > 10_000
    numbers = json.loads((sweep / f"gallery_{entry}.json").read_text())
    assert numbers


@pytest.mark.slow
@pytest.mark.gallery_full
def test_full_gallery_paths(tmp_path):
    from torchprac.gallery import paths

    n = paths.measure()
    q = n["surfaces"][paths.QUADRATIC.name]["optimizers"]
    assert q["sgd"]["steps"] is not None and q["momentum"]["steps"] < q["sgd"]["steps"]
