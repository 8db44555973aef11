"""The logic behind bench/bench_threads.py, bench/bench_sweep.py and the Lightning side of
bench/bench_trainer.py (never timings), and the lazy start-up they measure."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import pytest
import torch
from conftest import ROOT
from omegaconf import OmegaConf


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "bench" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_ratios_are_taken_within_each_repeat():
    """auto / best fixed choice per repeat, then the median: runs made next to each other."""
    bt = _load("bench_threads")
    times = {"default": [10.0, 30.0, 12.0], "one": [2.0, 3.0, 2.5], "auto": [2.0, 3.3, 2.5]}
    assert bt.per_repeat(times, lambda x: x["auto"] / min(x["default"], x["one"])) == pytest.approx(1.0)
    assert bt.per_repeat(times, lambda x: x["default"] / x["auto"]) == pytest.approx(5.0)  # 5, 9.1, 4.8


def test_thread_bench_run_records_threads_and_timing(tmp_path):
    bt = _load("bench_threads")
    total, fit, used = bt.one_run(["trainer.epochs=1", "viz.enabled=false"], 1, tmp_path / "r")
    assert used == 1 and 0 < fit <= total


def test_background_load_starts_and_stops():
    bt = _load("bench_threads")
    with bt.BackgroundLoad() as load:
        assert load.proc.poll() is None  # spinning
    assert load.proc.poll() is not None


def test_import_run_and_registry_leave_sklearn_and_writers_unloaded():
    """A config error is reported without importing scikit-learn/scipy (~1 s), TensorBoard,
    matplotlib or torchvision: they load when a run first needs them."""
    code = (
        "import sys, torchprac.run; from torchprac import registry; registry.load(); "
        "print(sorted(m for m in ('sklearn', 'scipy', 'tensorboard', 'matplotlib', 'torchvision') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"


def test_sweep_bench_reads_the_jobs_timing(tmp_path, monkeypatch):
    """The overhead is 1 - sum(fit) / (parallel slots x wall), from each job's metrics.json."""
    bs = _load("bench_sweep")
    for i, fit in enumerate([1.0, 2.0]):
        (tmp_path / "basic" / str(i)).mkdir(parents=True)
        m = {"timing": {"fit_s": fit, "total_s": fit + 0.5}, "threads": {"num_threads": 1}}
        (tmp_path / "basic" / str(i) / "metrics.json").write_text(json.dumps(m))

    class Done:
        returncode = 0

    monkeypatch.setattr(bs.subprocess, "run", lambda *a, **k: Done())
    r = bs.sweep("basic", 2, 1, tmp_path, [])
    assert r["fit"] == 3.0 and r["total"] == 4.0 and r["threads"] == [1] and r["parallel"] == 1
    assert "OMP_NUM_THREADS" not in bs.clean_env()


def test_the_sweep_floor_runs_every_job_on_the_same_config_tree_without_training(tmp_path):
    bs = _load("bench_sweep")
    wall = bs.floor("basic", 2, tmp_path)
    assert wall > 0
    for i in range(2):  # Hydra composed and launched each job on conf/
        cfg = OmegaConf.load(tmp_path / "basic-floor" / str(i) / ".hydra" / "config.yaml")
        assert cfg.trainer.seed == i and cfg.data.name == "digits"
        assert not (tmp_path / "basic-floor" / str(i) / "metrics.json").exists()  # nothing trained
    assert not (tmp_path / "basic-floor" / "summary.md").exists()  # nor torchprac's sweep summary


def test_lightning_does_the_same_job(tmp_path):
    pytest.importorskip("pytorch_lightning")
    bench = _load("bench_trainer")
    g = torch.Generator().manual_seed(0)
    data = (
        torch.randn(256, 1, 28, 28, generator=g),
        torch.randint(0, 10, (256,), generator=g),
        torch.randn(64, 1, 28, 28, generator=g),
        torch.randint(0, 10, (64,), generator=g),
    )
    fit, close = bench.lightning_trainer(data, 64, 2, tmp_path / "L")
    fit()
    close()
    assert (tmp_path / "L" / "checkpoints" / "last.ckpt").is_file()  # a checkpoint every epoch
    assert any((tmp_path / "L").glob("events.out.tfevents.*"))  # TensorBoard
    ckpt = torch.load(tmp_path / "L" / "checkpoints" / "last.ckpt", weights_only=False)
    assert ckpt["global_step"] == 2 * 256 // 64  # two epochs of 4 steps
    assert any(k.startswith("EarlyStopping") for k in ckpt["callbacks"])  # early stopping on
    hand = bench.hand_model(torch.device("cpu"))
    shapes = [p.shape for p in ckpt["state_dict"].values()]
    assert shapes == [p.shape for p in hand.parameters()]  # the same model
