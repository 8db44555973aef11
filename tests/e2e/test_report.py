"""The sweep report (report.html): a real multirun builds it at its end, seeds of one
configuration are aggregated as mean ± std, the file is self-contained (its images decode),
and `python -m torchprac.report` rebuilds it. Also: each job's TensorBoard run is named by its
overrides and the sweep writes one HParams experiment summary whose swept columns differ."""

from __future__ import annotations

import base64
import io
import json
import statistics
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from conftest import ROOT, run_cli

pytest.importorskip("matplotlib")


class _Page(HTMLParser):
    """Tables (rows of cell texts), images (src) and <pre> texts of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self.images: list[str] = []
        self.pre: list[str] = []
        self._cell: list[str] | None = None
        self._in_pre = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "img":
            self.images.append(a.get("src", ""))
        elif tag == "pre":
            self._in_pre = True
            self.pre.append("")

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "pre":
            self._in_pre = False

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)
        if self._in_pre:
            self.pre[-1] += data


def _parse(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


def _decoded_images(page: _Page) -> list:
    from PIL import Image

    out = []
    for src in page.images:
        assert src.startswith("data:image/png;base64,"), src[:40]  # embedded: nothing to fetch
        out.append(Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))))
    return out


def _fake_job(root: Path, job: str, overrides: list[str], acc: float | None, status: str = "completed") -> None:
    d = root / job
    (d / ".hydra").mkdir(parents=True)
    (d / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    if status == "failed":
        return  # a crashed job: no metrics.json
    metrics = {s: {"loss": 1 - acc, "accuracy": acc} for s in ("train", "dev")}
    (d / "metrics.json").write_text(
        json.dumps(
            {
                "status": status,
                "epochs_run": 3,
                "best_epoch": 3,
                "objective": {"name": "dev/accuracy", "value": acc, "mode": "max"},
                "metrics": metrics,
                "message": "done",
                "hparams": {"optimizer": overrides[0].split("=")[1], "lr": 0.1, "status": status},
            }
        )
    )
    hist = [{"epoch": e, "loss/dev": 1 / e, "loss/train": 1 / e, "metric/accuracy_dev": acc * e / 3} for e in (1, 2, 3)]
    (d / "history.json").write_text(json.dumps(hist))


def test_report_aggregates_seeds_ranks_and_names_the_best(tmp_path):
    from torchprac.report.html import rebuild

    root = tmp_path / "sweep"
    _fake_job(root, "0", ["optimizer=adam", "trainer.seed=0"], 0.90)
    _fake_job(root, "1", ["optimizer=adam", "trainer.seed=1"], 0.80)
    _fake_job(root, "2", ["optimizer=sgd", "trainer.seed=0"], 0.88)
    _fake_job(root, "3", ["optimizer=rmsprop", "trainer.seed=0"], None, status="failed")
    rebuild(root)
    page = _parse(root / "report.html")
    ranking = page.tables[0]
    header, rows = ranking[0], ranking[1:]
    by_config = {r[1]: dict(zip(header, r)) for r in rows}
    # sgd's single run (0.88) beats adam's mean (0.85): ranked by the mean over seeds
    assert [r[1] for r in rows] == ["optimizer=sgd", "optimizer=adam", "optimizer=rmsprop"]
    adam = by_config["optimizer=adam"]
    assert adam["runs"] == "2"
    assert adam["dev/accuracy"] == f"{0.85:.4f} ± {statistics.stdev([0.9, 0.8]):.4f}"
    assert by_config["optimizer=sgd"]["dev/accuracy"] == "0.8800"
    assert by_config["optimizer=rmsprop"]["status"] == "failed"
    # the best configuration and the command of its best run
    assert page.pre == ["python train.py optimizer=sgd trainer.seed=0"]
    # every run is listed
    assert len(page.tables[1]) == 1 + 4
    imgs = _decoded_images(page)
    assert len(imgs) == 2 and all(min(i.size) > 100 for i in imgs)  # curves, objective per parameter
    # summary.md was rebuilt too, and the HParams experiment summary written once at the root
    assert (root / "summary.md").is_file()
    assert len(list(root.glob("events.out.tfevents.*"))) == 1
    # the crashed job is listed in the HParams tab too: a session with status failed
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    ea = EventAccumulator(str(root / "3" / "optimizer=rmsprop,seed=0")).Reload()
    start = plugin_data_pb2.HParamsPluginData.FromString(
        ea.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    )
    assert start.session_start_info.hparams["status"].string_value == "failed"
    assert start.session_start_info.hparams["optimizer"].string_value == "rmsprop"
    exp = EventAccumulator(str(root)).Reload().PluginTagToContent("hparams")["_hparams_/experiment"]
    infos = {h.name: h for h in plugin_data_pb2.HParamsPluginData.FromString(exp).experiment.hparam_infos}
    assert infos["optimizer"].differs and sorted(v.string_value for v in infos["optimizer"].domain_discrete.values) == [
        "adam",
        "rmsprop",
        "sgd",
    ]
    assert infos["status"].differs and not infos["lr"].differs  # status: always a column shown


@pytest.mark.slow
def test_multirun_writes_a_report_with_the_seed_aggregate(tmp_path):
    """Three runs: sgd with seeds 0 and 1, then adam with seed 0 added to the same sweep dir."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    sweep = tmp_path / "sweep"
    common = [
        "data=moons",
        "data.n_samples=300",
        "trainer.epochs=2",
        "trainer.progress=false",
        "viz.activations.samples=5",
        f"hydra.sweep.dir={sweep}",
    ]
    p = run_cli(["-m", "optimizer=sgd", "trainer.seed=0,1", *common], cwd=tmp_path)
    assert p.returncode == 0, p.stderr[-3000:]
    p = run_cli(
        ["-m", "optimizer=adam", "trainer.seed=0", "hydra.sweep.subdir=adam${hydra.job.num}", *common], cwd=tmp_path
    )
    assert p.returncode == 0, p.stderr[-3000:]

    page = _parse(sweep / "report.html")
    header, *rows = page.tables[0]
    by_config = {r[1]: dict(zip(header, r)) for r in rows}
    vals = [json.loads((sweep / j / "metrics.json").read_text())["objective"]["value"] for j in ("0", "1")]
    sgd = next(v for k, v in by_config.items() if "optimizer=sgd" in k)
    assert sgd["runs"] == "2"
    assert sgd["dev/accuracy"] == f"{statistics.fmean(vals):.4f} ± {statistics.stdev(vals):.4f}"
    adam = next(v for k, v in by_config.items() if "optimizer=adam" in k)
    assert adam["runs"] == "1" and "±" not in adam["dev/accuracy"]
    imgs = _decoded_images(page)
    assert len(imgs) == 2 + 3  # curves, objective plot, one decision boundary per run
    assert page.pre and page.pre[0].startswith("python train.py ")

    # each job's TensorBoard run is named by what it chose, inside the job's own dir
    assert (sweep / "0" / "seed=0").is_dir() and (sweep / "1" / "seed=1").is_dir()
    assert (sweep / "0" / "figures" / "decision_boundary.png").is_file()
    assert (sweep / "0" / "history.json").is_file()
    # one experiment summary at the sweep root; seed and optimizer differ
    ea = EventAccumulator(str(sweep)).Reload()
    exp = plugin_data_pb2.HParamsPluginData.FromString(ea.PluginTagToContent("hparams")["_hparams_/experiment"])
    differs = {h.name for h in exp.experiment.hparam_infos if h.differs}
    assert {"optimizer", "seed"} <= differs and "status" in {h.name for h in exp.experiment.hparam_infos}
    job = EventAccumulator(str(sweep / "0" / "seed=0")).Reload()
    content = job.PluginTagToContent("hparams")
    assert "_hparams_/experiment" not in content  # the job writes only its session
    start = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"])
    assert start.session_start_info.hparams["status"].string_value == "completed"
    assert start.session_start_info.hparams["augment"].string_value == "false"  # a boolean, as a string

    # rebuilt from disk, as for an interrupted sweep
    (sweep / "report.html").unlink()
    r = subprocess.run([sys.executable, "-m", "torchprac.report", str(sweep)], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    assert _parse(sweep / "report.html").tables[0][1:] == rows


def test_report_command_refuses_a_folder_without_jobs(tmp_path):
    r = subprocess.run(
        [sys.executable, "-m", "torchprac.report", str(tmp_path)], cwd=ROOT, capture_output=True, text=True
    )
    assert r.returncode == 2 and r.stderr.startswith("error: no job under")
    r = subprocess.run(
        [sys.executable, "-m", "torchprac.report", str(tmp_path / "nope")], cwd=ROOT, capture_output=True, text=True
    )
    assert r.returncode == 2 and "is not a folder" in r.stderr
