"""Regression on scikit-learn's diabetes set: torchprac runs next to sklearn's LinearRegression
fitted on the SAME seeded train split (torchprac's data=diabetes, split auto: 266/88/88).

    python scripts/diabetes_vs_sklearn.py [--out DIR]

Prints a markdown table of RMSE (in the target's units) and R² on train/dev/test."""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RUNS = {
    "torchprac linear (model.hidden=[])": ["model.hidden=[]", "trainer.epochs=200"],
    "torchprac linear, full batch (optimizer=gd), no early stopping": [
        "model.hidden=[]",
        "optimizer=gd",
        "optimizer.lr=0.1",
        "trainer.epochs=3000",
        "trainer.checkpoint.enabled=false",
        "trainer.histograms=false",
        "trainer.health.enabled=false",
        "trainer.early_stopping.enabled=false",
        "trainer.early_stopping.restore_best=false",
    ],
    "torchprac MLP [128,64], adam": ["optimizer=adam", "trainer.epochs=200"],
    "torchprac MLP [128,64], adam, l2 1e-2": [
        "optimizer=adam",
        "reg=[l2]",
        "reg.l2.strength=1e-2",
        "trainer.epochs=200",
    ],
}


def torchprac_run(overrides: list[str], run_dir: Path) -> dict:
    from hydra import compose, initialize_config_dir

    from torchprac.run import run

    ov = ["data=diabetes", "trainer.progress=false", "viz.enabled=false", f"paths.run_dir={run_dir}", *overrides]
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        run(compose(config_name="config", overrides=ov))
    return json.loads((run_dir / "metrics.json").read_text())["metrics"]


def sklearn_linear(seed: int = 42) -> dict:
    from sklearn.linear_model import LinearRegression

    from torchprac import registry
    from torchprac.data import build_data

    s = build_data(registry.build("data", {"name": "diabetes"}), seed)  # the same split and scaling
    data = {k: (v.x.double().numpy(), v.y.double().numpy() * s.y_std + s.y_mean) for k, v in s.items()}
    lr = LinearRegression().fit(*data["train"])
    out = {}
    for k, (x, y) in data.items():
        pred = lr.predict(x)
        out[k] = {
            "rmse": math.sqrt(((y - pred) ** 2).mean()),
            "r2": 1 - ((y - pred) ** 2).sum() / ((y - y.mean()) ** 2).sum(),
        }
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--out", default="outputs/diabetes_vs_sklearn")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    rows = {"scikit-learn LinearRegression": sklearn_linear()}
    for i, (name, ov) in enumerate(RUNS.items()):
        rows[name] = torchprac_run(ov, Path(args.out) / f"run{i}")
    head = "| model | RMSE train | RMSE dev | RMSE test | R² train | R² dev | R² test |"
    print(head + "\n|" + "---|" * 7)
    for name, m in rows.items():
        cells = [f"{m[s]['rmse']:.2f}" for s in ("train", "dev", "test")] + [
            f"{m[s]['r2']:.3f}" for s in ("train", "dev", "test")
        ]
        print(f"| {name} | " + " | ".join(cells) + " |")
    sys.stdout.flush()
    np.seterr(all="ignore")


if __name__ == "__main__":
    main()
