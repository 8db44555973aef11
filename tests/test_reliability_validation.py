"""Everything a user can type or point at is checked before anything runs: each bad input gives
one clear message naming the key or file, a non-zero exit and no traceback, and leaves earlier
run dirs untouched. Most cases run in-process through torchprac.run.main (SystemExit 2); a few
go through train.py as a user would, including the ones Hydra itself refuses."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import SHARED_DATA, make_cfg, run_cli

# (id, overrides, what the message must name). {tmp} is the test's tmp dir, {run} an earlier
# run dir with checkpoints that the failing run must leave untouched.
BAD = [
    ("lr_negative", ["optimizer.lr=-1"], "optimizer.lr"),
    ("lr_zero", ["optimizer.lr=0"], "optimizer.lr"),
    ("lr_string", ["optimizer.lr=fast"], "optimizer.lr"),
    ("momentum_above_1", ["optimizer=momentum", "optimizer.momentum=1.5"], "optimizer.momentum"),
    ("momentum_negative", ["optimizer=momentum", "optimizer.momentum=-0.1"], "optimizer.momentum"),
    ("betas_above_1", ["optimizer=adam", "optimizer.betas=[0.9,1.2]"], "optimizer.betas"),
    ("betas_one_value", ["optimizer=adam", "optimizer.betas=[0.9]"], "optimizer.betas"),
    ("eps_zero", ["optimizer=adam", "optimizer.eps=0"], "optimizer.eps"),
    ("weight_decay_negative", ["optimizer.weight_decay=-0.1"], "optimizer.weight_decay"),
    ("keep_prob_zero", ["reg=[dropout]", "reg.dropout.keep_prob=0"], "reg.dropout.keep_prob"),
    ("keep_prob_above_1", ["reg=[dropout]", "reg.dropout.keep_prob=1.5"], "reg.dropout.keep_prob"),
    ("keep_prob_list_length", ["reg=[dropout]", "reg.dropout.keep_prob=[0.5]"], "reg.dropout.keep_prob"),
    ("l2_negative", ["reg=[l2]", "reg.l2.strength=-1"], "reg.l2.strength"),
    ("split_sum", ["data.split=[0.5,0.6,0.1]"], "data.split"),
    ("split_no_train", ["data.split=[0.0,1.0]"], "data.split"),
    ("split_word", ["data.split=half"], "data.split"),
    ("patience_zero", ["trainer.early_stopping.patience=0"], "trainer.early_stopping.patience"),
    ("patience_float", ["trainer.early_stopping.patience=2.5"], "trainer.early_stopping.patience"),
    ("es_mode", ["trainer.early_stopping.mode=up"], "trainer.early_stopping.mode"),
    ("batch_size_zero", ["trainer.batch_size=0"], "trainer.batch_size"),
    ("batch_size_float", ["trainer.batch_size=1.5"], "trainer.batch_size"),
    ("epochs_negative", ["trainer.epochs=-3"], "trainer.epochs"),
    ("epochs_word", ["trainer.epochs=ten"], "trainer.epochs"),
    ("log_every_zero", ["trainer.log_every_n_steps=0"], "trainer.log_every_n_steps"),
    ("device", ["trainer.device=tpu"], "trainer.device"),
    ("precision", ["trainer.precision=8"], "trainer.precision"),
    ("objective", ["trainer.objective=dev/f1"], "trainer.objective"),
    ("resume_value", ["trainer.resume=yes"], "trainer.resume"),
    ("hidden_zero", ["model.hidden=[0]"], "model.hidden"),
    ("hidden_word", ["model.hidden=abc"], "model.hidden"),
    ("clip_norm_negative", ["clip=norm", "clip.max_norm=-1"], "clip.max_norm"),
    ("piecewise_values", ["scheduler=piecewise", "scheduler.values=[0.1]"], "scheduler.values"),
    ("bayes_error", ["data.bayes_error=1.5"], "data.bayes_error"),
    ("classes_repeated", ["data.classes=[1,1]"], "data.classes"),
    ("data_root_missing", ["data=mnist1d", "data.root={tmp}/nope"], "data.root"),
    ("data_root_is_file", ["data=mnist1d", "data.root={tmp}/file.txt"], "data.root"),
    ("mnist1d_file_missing", ["data=mnist1d", "data.root={tmp}/empty"], "mnist1d_data.npz"),
    ("mnist1d_truncated", ["data=mnist1d", "data.root={tmp}/cut"], "mnist1d_data.npz"),
    ("mnist1d_wrong_arrays", ["data=mnist1d", "data.root={tmp}/wrong"], "mnist1d_data.npz"),
    ("fashion_mnist_missing", ["data=fashion_mnist", "data.root={tmp}/empty"], "FashionMNIST"),
    ("resume_truncated", ["trainer.resume=auto", "paths.run_dir={run}"], "last.pt"),
    ("resume_pickled_callable", ["trainer.resume=auto", "paths.run_dir={run}"], "prev.pt"),
    ("resume_other_model", ["trainer.resume=auto", "paths.run_dir={run}", "model.hidden=[8]"], "last.pt"),
    ("pretrained_missing", ["model.pretrained={tmp}/no_such_run"], "model.pretrained"),
]


def _prepare(tmp: Path, case: str, earlier_run: Path) -> Path:
    """Files the case points at; returns the earlier run dir (a copy) for resume cases."""
    (tmp / "file.txt").write_text("not a folder")
    (tmp / "empty").mkdir()
    (tmp / "cut").mkdir()
    buf = tmp / "full.npz"
    rng = np.random.default_rng(0)
    np.savez(
        buf,
        x=rng.normal(size=(200, 40)),
        y=rng.integers(0, 10, 200),
        x_test=rng.normal(size=(50, 40)),
        y_test=rng.integers(0, 10, 50),
    )
    (tmp / "cut" / "mnist1d_data.npz").write_bytes(buf.read_bytes()[: buf.stat().st_size // 2])
    (tmp / "wrong").mkdir()
    np.savez(tmp / "wrong" / "mnist1d_data.npz", x=np.zeros((3, 40)), y=np.zeros(3))
    run = tmp / "earlier_run"
    shutil.copytree(earlier_run, run)
    ck = run / "checkpoints"
    if case in ("resume_truncated", "resume_pickled_callable"):
        last = ck / "last.pt"
        last.write_bytes(last.read_bytes()[:1000])
        (ck / "prev.pt").unlink()
    if case == "resume_pickled_callable":
        import os

        torch.save({"model": {}, "hook": os.system}, ck / "prev.pt")
    return run


@pytest.fixture(scope="module")
def earlier_run(tmp_path_factory) -> Path:
    """A finished 2-epoch run with last.pt and prev.pt."""
    from conftest import run_cfg

    d = tmp_path_factory.mktemp("earlier")
    run_cfg(["model.hidden=[16]", "trainer.epochs=2", "trainer.health.enabled=false"], d)
    return d


def _snapshot(d: Path) -> dict:
    return {str(p.relative_to(d)): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(d.rglob("*"))}


@pytest.mark.parametrize("case,overrides,names", BAD, ids=[c[0] for c in BAD])
def test_bad_input_gives_one_clear_message_and_exit_2(case, overrides, names, tmp_path, earlier_run, capsys):
    if case == "pretrained_missing" and importlib.util.find_spec("torchprac.nn.transfer") is None:
        pytest.skip("transfer learning (torchprac/nn/transfer.py) is not built yet")
    from torchprac.run import main

    run = _prepare(tmp_path, case, earlier_run)
    before = _snapshot(run)
    ov = [o.format(tmp=tmp_path, run=run) for o in overrides]
    fresh = tmp_path / "fresh_run"
    cfg = make_cfg(ov, None if any(o.startswith("paths.run_dir=") for o in ov) else fresh)
    with pytest.raises(SystemExit) as exc:
        main(cfg)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and names in err, err
    assert "Traceback" not in err and err.count("\n") == 1, err  # one paragraph
    assert _snapshot(run) == before  # the earlier run is untouched
    assert not (fresh / "metrics.json").exists() and not list(fresh.glob("events.*"))


@pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="../shared/data is not present")
def test_corrupt_torchvision_files_are_named(tmp_path, capsys):
    """Real Fashion-MNIST files, one cut in half."""
    raw = tmp_path / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for f in (SHARED_DATA / "FashionMNIST" / "raw").iterdir():
        if not f.name.endswith(".gz"):
            shutil.copy(f, raw / f.name)
    img = raw / "train-images-idx3-ubyte"
    img.write_bytes(img.read_bytes()[: img.stat().st_size // 2])
    from torchprac.run import main

    with pytest.raises(SystemExit) as exc:
        main(make_cfg(["data=fashion_mnist", f"data.root={tmp_path}"], tmp_path / "run"))
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "FashionMNIST" in err and "corrupt" in err and "Traceback" not in err, err


def test_unreadable_data_root_is_named(tmp_path, monkeypatch, capsys):
    import torchprac.data.sources as sources
    from torchprac.run import main

    # Tests may run as root, for whom chmod 000 changes nothing: deny access the way os.access would.
    root = tmp_path / "data"
    root.mkdir()
    real_access = sources.os.access
    monkeypatch.setattr(sources.os, "access", lambda p, *a, **k: False if Path(p) == root else real_access(p, *a, **k))
    with pytest.raises(SystemExit):
        main(make_cfg(["data=mnist1d", f"data.root={root}"], tmp_path / "run"))
    err = capsys.readouterr().err
    assert "data.root" in err and "not readable" in err


# As a user types them: unknown choices and keys are Hydra's to refuse (with the options it has).
CLI_BAD = [
    (["activation=swish"], "activation/swish", "Available options"),
    (["optimizer=rmsprob"], "optimizer/rmsprob", "Available options"),
    (["trainer.epoch=3"], "trainer.epoch", "not in struct"),
    (["optimizer.lr=-1"], "optimizer.lr", "Allowed"),
    (["data=mnist1d", "data.root=/no/such/dir"], "data.root", "does not exist"),
    (["trainer.resume=auto", "paths.run_dir={run}"], "last.pt", "corrupt or truncated"),
]


@pytest.mark.slow
@pytest.mark.parametrize("args,names,says", CLI_BAD, ids=[a[0].split("=")[0] for a, *_ in CLI_BAD])
def test_bad_input_on_the_command_line(args, names, says, tmp_path, earlier_run):
    run = _prepare(tmp_path, "resume_truncated", earlier_run)
    before = _snapshot(run)
    p = run_cli([a.format(run=run) for a in args] + [f"hydra.run.dir={tmp_path / 'new'}"], cwd=tmp_path)
    assert p.returncode != 0
    assert names in p.stderr and says in p.stderr, p.stderr
    assert "Traceback" not in p.stderr + p.stdout
    assert _snapshot(run) == before
