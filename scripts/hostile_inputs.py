"""Run the hostile-input table against a checkout and print exit codes and tracebacks.

    python scripts/hostile_inputs.py /path/to/checkout [--python .venv/bin/python] > table.md

Used to compare a release with the current tree (the closing table of the reliability issue);
the same cases are asserted by tests/e2e/test_bad_inputs.py."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

FAST = ["trainer.epochs=1", "trainer.progress=false", "trainer.histograms=false"]

# (overrides, what a user expects: "error" = exit 2 with one paragraph, "ok" = runs to the end)
CASES: list[tuple[list[str], str]] = [
    (["trainer.early_stopping=false"], "ok"),
    (["trainer.checkpoint=false"], "ok"),
    (["trainer.health=false"], "ok"),
    (["experiment=vanishing_sigmoid", "init=he_normal"], "ok"),
    (["experiment=vanishing_sigmoid", "init=zeros"], "ok"),
    (["experiment=self_normalizing", "reg=[dropout]"], "ok"),
    (["model.batch_norm=before", "trainer.batch_size=98"], "ok"),
    (["model.batch_norm=before", "trainer.batch_size=1"], "error"),
    (["model.batch_norm=before", "data.train_subset=1"], "error"),
    (["data.split=[nan,0.5,0.5]"], "error"),
    (["trainer.seed=4294967296"], "error"),
    (["data=circles", "data.factor=2"], "error"),
    (["data=blobs", "data.centers=0"], "error"),
    (["data=blobs", "data.n_features=0"], "error"),
    (["optimizer=adagrad", "scheduler=onecycle"], "ok"),
    (["optimizer=adadelta", "scheduler=onecycle"], "ok"),
    (["model.hidden=[1000000,1000000]"], "error"),
    (["activation._target_=nope.Nope"], "error"),
    (["reg=[augment]", "reg.augment.shift=100"], "error"),
    (["transfer.freeze_epochs=2"], "error"),
    (["reg=[l3]"], "error"),
    (["init.std=0.1"], "error"),
    (["optimizer.lr=-0.1"], "error"),
    (["optimizer=nesterov", "optimizer.momentum=0"], "error"),
    (["optimizer=adam", "optimizer.betas=[0.9]"], "error"),
    (["scheduler=plateau", "scheduler.mode=max"], "error"),
    (["scheduler=piecewise", "scheduler.values=[0.1]"], "error"),
    (["trainer.early_stopping.mode=max"], "error"),
    (["reg=[dropout]", "reg.dropout.keep_prob=0"], "error"),
    (["reg=[dropout]", "reg.dropout.keep_prob=[0.5]"], "error"),
    (["reg=[dropout,alpha_dropout]"], "error"),
    (["model=cnn", "model.kernel_size=2"], "error"),
    (["model=cnn", "data=moons"], "error"),
    (["trainer.device=tpu"], "error"),
    (["trainer.precision=16-mixed", "trainer.device=cpu"], "error"),
    (["data.classes=[5]"], "error"),
    (["data=mnist1d", "data.root=/nonexistent"], "error"),
    (["model.pretrained=/nonexistent"], "error"),
    (["mode=nope"], "error"),
    (["trainer.epochs=0"], "error"),
    (["optimizer.lr=1e6", "trainer.early_stopping=false"], "ok"),  # diverges: status, strict JSON
]


def run_case(repo: Path, python: str, overrides: list[str], tmp: Path, i: int) -> tuple[int, bool, str]:
    fast = [f for f in FAST if f.split("=")[0] not in {o.split("=")[0] for o in overrides}]  # the case wins
    args = [python, str(repo / "train.py"), *fast, *overrides, f"hydra.run.dir={tmp / str(i)}"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HYDRA_FULL_ERROR": "0"}
    p = subprocess.run(args, cwd=repo, capture_output=True, text=True, timeout=600, env=env)
    out = p.stdout + p.stderr
    err = next((ln for ln in p.stderr.splitlines() if ln.startswith("error:")), "")
    return p.returncode, "Traceback" in out, err[:140]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("repo", type=Path)
    ap.add_argument("--python", default=sys.executable)
    a = ap.parse_args()
    tracebacks = 0
    print("| # | overrides | expected | exit | traceback | message |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as d:
        for i, (ov, expected) in enumerate(CASES, 1):
            rc, tb, msg = run_case(a.repo.resolve(), a.python, ov, Path(d), i)
            tracebacks += tb
            print(f"| {i} | `{' '.join(ov)}` | {expected} | {rc} | {'yes' if tb else ''} | {msg} |", flush=True)
    print(f"\ntracebacks: {tracebacks} of {len(CASES)} cases")


if __name__ == "__main__":
    main()
