"""The sweep summary: runs ranked by their objective in its direction; diverged runs after the
finite ones, failed ones (or jobs without a readable metrics.json) last."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

from torchprac.report.sweep_summary import write_summary


def _csv(root: Path) -> list[dict]:
    with open(root / "summary.csv", newline="") as f:
        return list(csv.DictReader(f))


def _job(root: Path, name: str, overrides: list[str], metrics: dict | None) -> None:
    d = root / name
    (d / ".hydra").mkdir(parents=True)
    (d / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    if metrics is not None:
        (d / "metrics.json").write_text(json.dumps(metrics))


def _m(status: str, name: str, value: float, mode: str) -> dict:
    return {
        "status": status,
        "epochs_run": 3,
        "best_epoch": 2,
        "message": status,
        "objective": {"name": name, "value": value, "mode": mode},
        "metrics": {"dev": {"loss": value, "accuracy": 0.5}},
    }


def test_summary_ranks_by_mode_and_lists_jobs_without_metrics_as_failed(tmp_path):
    _job(tmp_path, "0", ["lr=0.1"], _m("completed", "dev/loss", 0.30, "min"))
    _job(tmp_path, "1", ["lr=10"], _m("diverged", "dev/loss", math.inf, "min"))
    _job(tmp_path, "2", ["lr=0.01"], _m("early_stopped", "dev/loss", 0.20, "min"))
    _job(tmp_path, "3", ["lr=1"], None)  # crashed / killed
    _job(tmp_path, "00", ["lr=-1"], _m("failed", "dev/loss", math.inf, "min"))  # bad config
    _job(tmp_path, "10", ["lr=0.5"], _m("completed", "dev/loss", 0.25, "min"))
    rows = write_summary(tmp_path)
    assert [r["job"] for r in rows] == ["2", "10", "0", "1", "00", "3"]
    assert rows[-1]["status"] == "failed" and "no readable metrics.json" in rows[-1]["message"]
    assert [r["rank"] for r in _csv(tmp_path)] == ["1", "2", "3", "4", "5", "6"]
    assert "dev/loss (min)" in (tmp_path / "summary.md").read_text()

    maxed = tmp_path / "max"
    _job(maxed, "0", ["a"], _m("completed", "dev/accuracy", 0.7, "max"))
    _job(maxed, "1", ["b"], _m("completed", "dev/accuracy", 0.9, "max"))
    assert [r["job"] for r in write_summary(maxed)] == ["1", "0"]


def test_markdown_shows_only_the_overrides_that_differ(tmp_path):
    _job(tmp_path, "0", ["optimizer=sgd", "lr=0.1"], _m("completed", "dev/accuracy", 0.8, "max"))
    _job(tmp_path, "1", ["optimizer=sgd", "lr=0.2"], _m("completed", "dev/accuracy", 0.9, "max"))
    write_summary(tmp_path)
    md = (tmp_path / "summary.md").read_text()
    assert "2 runs: 2 completed" in md and "Overrides shared by all runs: `optimizer=sgd`" in md
    assert md.index("lr=0.2") < md.index("lr=0.1")  # best first
    assert [r["overrides"] for r in _csv(tmp_path)] == ["optimizer=sgd lr=0.2", "optimizer=sgd lr=0.1"]
