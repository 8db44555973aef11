"""Bad input, table-driven: everything a user can type or point at is checked before anything
runs, and each mistake is ONE paragraph on stderr ("error: ..." naming the key or file), exit
status 2, no traceback, and earlier run dirs left untouched.

To add a case, append a row to CASES (in-process, through the CLI's own error handling in
torchprac.entry.main) or, for what only a real command line shows, to CLI_CASES:

    (overrides, key)            the key (or file) the message must name
    (overrides, key, also)      ... and `also`, a string or tuple of strings it must contain too

Overrides may use two placeholders: {tmp} is the test's tmp dir, prepared with the files below
(file.txt, empty/, cut/ and wrong/ holding a truncated / incomplete mnist1d_data.npz), and {run}
a copy of an earlier finished run (checkpoints last.pt and prev.pt), damaged as the case id asks
(ids starting with resume_truncated / resume_pickled). When the error is a ConfigError, the key
must be exactly its key ("Invalid config: <key>=...")."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import SHARED_DATA, make_cfg, run_cfg, run_cli

from torchprac.entry import main

CASES = [
    # -- optimizer
    (["optimizer.lr=0"], "optimizer.lr", "a number > 0"),
    (["viz.background=maybe"], "viz.background", "'auto', True, False"),
    (["viz.background=1"], "viz.background", "'auto', True, False"),
    (["optimizer.lr=-1"], "optimizer.lr"),
    (["optimizer.lr=fast"], "optimizer.lr"),
    (["optimizer=momentum", "optimizer.momentum=1.5"], "optimizer.momentum"),
    (["optimizer=momentum", "optimizer.momentum=-0.1"], "optimizer.momentum"),
    (["optimizer=adam", "optimizer.betas=[0.9,1.2]"], "optimizer.betas"),
    (["optimizer=adam", "optimizer.betas=[0.9]"], "optimizer.betas"),
    (["optimizer=adam", "optimizer.eps=0"], "optimizer.eps"),
    (["optimizer.weight_decay=-0.1"], "optimizer.weight_decay"),
    # -- reg
    (["reg=[dropout]", "reg.dropout.keep_prob=0"], "reg.dropout.keep_prob"),
    (["reg=[dropout]", "reg.dropout.keep_prob=1.01"], "reg.dropout.keep_prob"),
    (["reg=[dropout]", "reg.dropout.keep_prob=1.5"], "reg.dropout.keep_prob", "(0, 1]"),
    (["reg=[dropout]", "reg.dropout.keep_prob=[0.5]"], "reg.dropout.keep_prob", "one keep_prob per hidden layer"),
    (["reg=[dropout]", "reg.dropout.keep_prob=[0.5,0.5,0.5]"], "reg.dropout.keep_prob"),
    (["reg=[dropout]", "reg.dropout.keep_prob=[0.5,1.5]"], "reg.dropout.keep_prob"),
    (["reg=[dropout]", "reg.dropout.input_keep_prob=[0.8,0.8]"], "reg.dropout.input_keep_prob", "a number"),
    (["reg=[dropout]", "reg.dropout.input_keep_prob=0"], "reg.dropout.input_keep_prob"),
    (["reg=[alpha_dropout]", "reg.alpha_dropout.keep_prob=-0.5"], "reg.alpha_dropout.keep_prob"),
    (["reg=[dropout,alpha_dropout]"], "reg"),
    (["reg=[l2]", "reg.l2.strength=-1"], "reg.l2.strength", ">= 0"),
    (["reg=[l1]", "reg.l1.strength=-1e-5"], "reg.l1.strength"),
    (["reg=[elastic]", "reg.elastic.l2=-1"], "reg.elastic.l2"),
    (["reg=[max_norm]", "reg.max_norm.r=0"], "reg.max_norm.r", "> 0"),
    (["reg=[max_norm]", "reg.max_norm.r=-3"], "reg.max_norm.r"),
    (["reg=[augment]", "reg.augment.noise=-0.1"], "reg.augment.noise"),
    (["reg=[augment]", "reg.augment.shift=-1"], "reg.augment.shift"),
    (["reg=[augment]", "reg.augment.shift=1.5"], "reg.augment.shift"),
    # -- data
    (["data.split=[0.5,0.2,0.2]"], "data.split"),
    (["data.split=[0.5,0.6,0.1]"], "data.split"),
    (["data.split=[0.7]"], "data.split"),
    (["data.split=[0.0,1.0]"], "data.split"),
    (["data.split=[0.0,1.0,0.0]"], "data.split"),
    (["data.split=[1.2,-0.2,0.0]"], "data.split"),
    (["data.split=half"], "data.split"),
    (["data.bayes_error=1.5"], "data.bayes_error"),
    (["data.classes=[1,1]"], "data.classes"),
    (["data=mnist1d", "data.root={tmp}/nope"], "data.root"),
    (["data=mnist1d", "data.root={tmp}/file.txt"], "data.root"),
    (["data=mnist1d", "data.root={tmp}/empty"], "mnist1d_data.npz"),
    (["data=mnist1d", "data.root={tmp}/cut"], "mnist1d_data.npz"),
    (["data=mnist1d", "data.root={tmp}/wrong"], "mnist1d_data.npz"),
    (["data=fashion_mnist", "data.root={tmp}/empty"], "FashionMNIST"),
    # -- model, activation, init
    (["model.batch_norm=middle"], "model.batch_norm"),
    (["model.hidden=[0]"], "model.hidden"),
    (["model.hidden=abc"], "model.hidden"),
    (["model=cnn", "data=moons"], "model"),
    (["model=cnn", "model.channels=[8,8,8,8,8]"], "model.channels"),
    (["activation=leaky_relu", "activation.negative_slope=abc"], "activation.negative_slope"),
    (["activation=elu", "activation.alpha=abc"], "activation.alpha"),
    (["init.nonlinearity=foo"], "init.nonlinearity"),
    # -- scheduler, clip
    (["scheduler=plateau", "scheduler.mode=max"], "scheduler.mode"),
    (["scheduler=plateau", "scheduler.monitor=dev/f1"], "scheduler.monitor"),
    (["scheduler=warmup_cosine", "scheduler.start_factor=0"], "scheduler.start_factor"),
    (["scheduler=cosine", "scheduler.T_max=abc"], "scheduler.T_max"),
    (["scheduler=piecewise", "scheduler.values=[0.1]"], "scheduler.values"),
    (["clip=norm", "clip.max_norm=-1"], "clip.max_norm"),
    # -- trainer
    (["trainer.epochs=0"], "trainer.epochs"),
    # -- found by the hostile-input review (each was a traceback, silently accepted or misreported)
    (["optimizer=nesterov", "optimizer.momentum=0"], "optimizer.momentum", "(0, 1)"),
    (["data.split=[nan,0.5,0.5]"], "data.split"),
    (["trainer.seed=4294967296"], "trainer.seed", "4294967295"),
    (["data=circles", "data.factor=2"], "data.factor", "< 1"),
    (["data=blobs", "data.centers=0"], "data.centers"),
    (["data=blobs", "data.n_features=0"], "data.n_features"),
    (["model.hidden=[1000000,1000000]"], "model.hidden", ("GiB", "available")),
    (["reg=[augment]", "reg.augment.shift=100"], "reg.augment.shift", "8x8"),
    (["transfer.freeze_epochs=2"], "transfer.freeze_epochs", "model.pretrained"),
    (["model.batch_norm=before", "trainer.batch_size=1"], "trainer.batch_size", "model.batch_norm"),
    (["model.batch_norm=before", "data.train_subset=1"], "data.train_subset", "model.batch_norm"),
    (["trainer.epochs=2.5"], "trainer.epochs"),
    (["trainer.epochs=-3"], "trainer.epochs"),
    (["trainer.epochs=ten"], "trainer.epochs"),
    (["trainer.batch_size=0"], "trainer.batch_size"),
    (["trainer.batch_size=1.5"], "trainer.batch_size"),
    (["trainer.log_every_n_steps=0"], "trainer.log_every_n_steps"),
    (["trainer.device=tpu"], "trainer.device"),
    (["trainer.precision=8"], "trainer.precision"),
    (["trainer.objective=dev/f1"], "trainer.objective"),
    (["trainer.resume=yes"], "trainer.resume"),
    (["trainer.early_stopping.patience=0"], "trainer.early_stopping.patience"),
    (["trainer.early_stopping.patience=2.5"], "trainer.early_stopping.patience"),
    (["trainer.early_stopping.mode=up"], "trainer.early_stopping.mode"),
    (["trainer.early_stopping.monitor=dev/accuracy", "trainer.early_stopping.mode=min"], "trainer.early_stopping.mode"),
    # -- top level: mode, diagnosis, transfer, paths
    (["mode=bogus"], "mode"),
    (["diagnosis.bias_threshold=abc"], "diagnosis.bias_threshold"),
    (["transfer.freeze_epochs=-1"], "transfer.freeze_epochs"),
    (["transfer.unfreeze_lr_factor=0"], "transfer.unfreeze_lr_factor"),
    (["transfer.reuse_layers=0"], "transfer.reuse_layers"),
    (["model.pretrained={tmp}/no_such_run"], "model.pretrained"),
    # the from-scratch baseline with a pretrained model would silently be transfer learning
    (
        ["experiment=transfer_b_scratch", "model.pretrained={tmp}"],
        "model.pretrained",
        ("transfer_b_on_a", "from_scratch"),
    ),
    (["paths.run_dir={tmp}/file.txt"], "paths.run_dir"),
    # -- resume from an earlier run ({run}); the id decides how its checkpoints are damaged
    pytest.param(["trainer.resume=auto", "paths.run_dir={run}"], "last.pt", id="resume_truncated"),
    pytest.param(["trainer.resume=auto", "paths.run_dir={run}"], "prev.pt", id="resume_pickled_callable"),
    pytest.param(
        ["trainer.resume=auto", "paths.run_dir={run}", "model.hidden=[8]"], "last.pt", id="resume_other_model"
    ),
]

# As a user types them: train.py in a subprocess, exit status 2, "error: ..." on stderr.
CLI_CASES = [
    (["reg=[l3]"], "reg", ("'l3'", "alpha_dropout", "max_norm")),
    (["activation._target_=nope.Nope"], "activation._target_", "no key '_target_'"),
    (["experiment=vanishing_sigmoid", "init.nope=1"], "init.nope", "init=normal"),
    (["init.std=0.1"], "init.std", "mode, nonlinearity"),
    (["optimizer.lr=-0.1"], "optimizer.lr=-0.1", "a number > 0"),
    (["reg=[dropout]", "reg.dropout.keep_prob=1.5"], "reg.dropout.keep_prob", "(0, 1]"),
    (["reg=[dropout]", "reg.dropout.keep_prob=[0.5]"], "reg.dropout.keep_prob", "one keep_prob per hidden layer"),
    (["reg=[dropout]", "reg.dropout.input_keep_prob=[0.5]"], "reg.dropout.input_keep_prob", "a number"),
    (["data=mnist1d", "data.root=/no/such/dir"], "data.root", "does not exist"),
    (["trainer.epoch=3"], "trainer.epoch", ("no key 'epoch'", "the keys of trainer=default", "epochs")),
    # ... swept: refused by the sweeper's check of the batch, before job 0 (Hydra: its own report)
    (["-m", "trainer.epoch=3,4"], "trainer.epoch", ("trainer=default has no key 'epoch'", "epochs")),
    (["-m", "activation=relu,tanh", "activation.slope=0.1,0.2"], "activation.slope", "activation=relu has no key"),
    # a config group given a value instead of a config's name (Hydra: a ValueError traceback)
    (["viz=false"], "viz=False", ("the name of one of its configs: default", "viz.enabled=false")),
    (["optimizer=1"], "optimizer=1", ("adam", "nesterov", "optimizer.<key>=value")),
    (["trainer=null"], "trainer=None", "default"),
    (["-m", "viz=default,false"], "viz=False", "conf/viz/"),  # a sweep: refused before job 0
    # the sweep launcher's keys, refused before Hydra instantiates it (and before any job runs)
    (["-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=0"], "hydra.launcher.n_jobs=0", "-1 = one worker per CPU"),
    (["-m", "hydra/launcher=joblib", "hydra.launcher.timeout=-5"], "hydra.launcher.timeout=-5", "seconds per job > 0"),
    (["-m", "hydra/launcher=joblib", "hydra.launcher.backend=threading"], "hydra.launcher.backend", "no use for"),
    pytest.param(
        ["trainer.resume=auto", "paths.run_dir={run}"], "last.pt", "corrupt or truncated", id="resume_truncated"
    ),
]

# What Hydra itself refuses while composing the config (unknown choices): its own message with
# the options it has, a non-zero exit, no traceback.
HYDRA_CLI_CASES = [
    (["activation=swish"], ("activation/swish", "Available options")),
    (["optimizer=adamm"], ("optimizer/adamm", "Available options", "adam", "nesterov")),
]


def _row(case) -> tuple[list[str], str, tuple[str, ...], str]:
    """(overrides, key, also, id) of a table row (a tuple or a pytest.param)."""
    values, cid = (case.values, case.id) if hasattr(case, "values") else (case, None)
    overrides, key, *rest = values
    also = rest[0] if rest else ()
    also = (also,) if isinstance(also, str) else tuple(also)
    return list(overrides), key, also, cid or " ".join(overrides)


def _params(table):
    return [pytest.param(*_row(c)[:3], id=_row(c)[3]) for c in table]


@pytest.fixture(scope="module")
def earlier_run(tmp_path_factory) -> Path:
    """A finished 2-epoch run with last.pt and prev.pt."""
    d = tmp_path_factory.mktemp("earlier")
    run_cfg(["model.hidden=[16]", "trainer.epochs=2", "trainer.health.enabled=false"], d)
    return d


def _prepare(tmp: Path, case_id: str, request) -> Path | None:
    """The files the {tmp} cases point at; a damaged copy of the earlier run for {run} cases."""
    (tmp / "file.txt").write_text("not a folder")
    for d in ("empty", "cut", "wrong"):
        (tmp / d).mkdir()
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
    np.savez(tmp / "wrong" / "mnist1d_data.npz", x=np.zeros((3, 40)), y=np.zeros(3))
    if not case_id.startswith("resume"):
        return None
    run = tmp / "earlier_run"
    shutil.copytree(request.getfixturevalue("earlier_run"), run)
    ck = run / "checkpoints"
    if case_id.startswith(("resume_truncated", "resume_pickled")):
        last = ck / "last.pt"
        last.write_bytes(last.read_bytes()[:1000])
        (ck / "prev.pt").unlink()
    if case_id.startswith("resume_pickled"):
        torch.save({"model": {}, "hook": os.system}, ck / "prev.pt")  # a reference to code, pickled
    return run


def _snapshot(d: Path | None) -> dict:
    if d is None:
        return {}
    return {str(p.relative_to(d)): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(d.rglob("*"))}


@pytest.mark.parametrize("overrides,key,also", _params(CASES))
def test_bad_input(overrides, key, also, tmp_path, request, capsys):
    run = _prepare(tmp_path, request.node.callspec.id, request)
    before = _snapshot(run)
    ov = [o.format(tmp=tmp_path, run=run) for o in overrides]
    fresh = tmp_path / "fresh_run"
    cfg = make_cfg(ov, None if any(o.startswith("paths.run_dir=") for o in ov) else fresh)
    with pytest.raises(SystemExit) as exc:
        main(cfg)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and key in err, err
    if err.startswith("error: Invalid config: "):  # a ConfigError names exactly this key
        assert err.startswith(f"error: Invalid config: {key}=") and "Allowed: " in err, err
    for text in also:
        assert text in err, err
    assert "Traceback" not in err and err.count("\n") == 1, err  # one paragraph
    assert _snapshot(run) == before  # an earlier run is untouched
    assert not (fresh / "metrics.json").exists() and not list(fresh.glob("events.*"))
    assert (tmp_path / "file.txt").read_text() == "not a folder"


@pytest.mark.slow
@pytest.mark.parametrize("args,key,also", _params(CLI_CASES))
def test_bad_input_on_the_command_line(args, key, also, tmp_path, request):
    run = _prepare(tmp_path, request.node.callspec.id, request)
    before = _snapshot(run)
    new = tmp_path / "new"
    p = run_cli([a.format(run=run) for a in args] + [f"hydra.run.dir={new}"], cwd=tmp_path)
    assert p.returncode == 2, p.stdout + p.stderr
    assert p.stderr.startswith("error: ") or "\nerror: " in p.stderr, p.stderr
    assert key in p.stderr and all(t in p.stderr for t in also), p.stderr
    assert "Traceback" not in p.stderr + p.stdout
    assert (p.stdout + p.stderr).count("error: ") == 1  # once on a terminal
    if "Invalid config" in p.stderr:
        assert (p.stdout + p.stderr).count("Invalid config") == 1 and "Allowed" in p.stderr
    assert _snapshot(run) == before
    assert not (new / "metrics.json").exists()
    if (new / ".hydra").is_dir():  # Hydra started the job: the paragraph is kept in its log too
        assert key in (new / "train.log").read_text()


@pytest.mark.slow
@pytest.mark.parametrize("args,says", HYDRA_CLI_CASES, ids=[" ".join(a) for a, _ in HYDRA_CLI_CASES])
def test_hydra_refuses_unknown_choices_and_keys(args, says, tmp_path):
    p = run_cli([*args, f"hydra.run.dir={tmp_path / 'new'}"], cwd=tmp_path)
    assert p.returncode != 0
    assert all(s in p.stderr for s in says), p.stderr
    assert "Traceback" not in p.stderr + p.stdout
    assert not (tmp_path / "new" / "metrics.json").exists()


# -- cases that need more than overrides ------------------------------------------------------


def test_disk_full_mid_run_is_one_paragraph_and_the_last_checkpoint_stays_loadable(tmp_path, monkeypatch, capsys):
    """The checkpoint of epoch 2 hits a full disk: exit 2 naming the file and the full disk, no
    traceback; the epoch-1 checkpoint is whole and resumable."""
    from torchprac import files

    real_save = torch.save

    def save(obj, f, *a, **k):
        if isinstance(obj, dict) and obj.get("epoch") == 2:
            raise OSError(28, "No space left on device")
        return real_save(obj, f, *a, **k)

    monkeypatch.setattr(files.torch, "save", save)
    run = tmp_path / "run"
    with pytest.raises(SystemExit) as exc:
        main(make_cfg(["trainer.epochs=3", "trainer.progress=false", "viz.enabled=false"], run))
    monkeypatch.undo()
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "The disk is full" in err and str(run / "checkpoints") in err and "Traceback" not in err
    assert files.load_checkpoint(run / "checkpoints" / "last.pt")["epoch"] == 1
    assert not list((run / "checkpoints").glob("*.tmp"))


def test_unreadable_data_root_is_named(tmp_path, monkeypatch, capsys):
    import torchprac.data.sources as sources

    # Tests may run as root, for whom chmod 000 changes nothing: deny access the way os.access would.
    root = tmp_path / "data"
    root.mkdir()
    real_access = sources.os.access
    monkeypatch.setattr(sources.os, "access", lambda p, *a, **k: False if Path(p) == root else real_access(p, *a, **k))
    with pytest.raises(SystemExit) as exc:
        main(make_cfg(["data=mnist1d", f"data.root={root}"], tmp_path / "run"))
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "data.root" in err and "not readable" in err


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
    with pytest.raises(SystemExit) as exc:
        main(make_cfg(["data=fashion_mnist", f"data.root={tmp_path}"], tmp_path / "run"))
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "FashionMNIST" in err and "corrupt" in err and "Traceback" not in err, err
