"""Write small example files to try torchprac on "your own data" (README, "Your own data"):

    outputs/example_data/flowers.csv        Fisher's iris as a CSV: 4 measurements (cm), text label `species`
    outputs/example_data/flowers_new.csv    5 flowers to predict: no label, columns in another order
    outputs/example_data/houses.csv         a regression table: price = linear in 3 features + noise
    outputs/example_data/houses.npz         the same as arrays x, y (and x_test, y_test)
    outputs/example_data/shapes/            an image folder: train/<circle|square|triangle>/*.png, test/...

    python scripts/make_example_data.py [--out DIR] [--seed N]

Deterministic for a seed; needs nothing but the project's dependencies (no download)."""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np

SHAPES = ("circle", "square", "triangle")


def write_flowers(out: Path) -> None:
    from sklearn.datasets import load_iris

    d = load_iris()
    names = list(d.feature_names)  # scikit-learn's names: `mode=evaluate data=iris` then matches them

    with open(out / "flowers.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow([*names, "species"])
        for x, y in zip(d.data, d.target):
            w.writerow([*(f"{v:g}" for v in x), d.target_names[y]])
    # new flowers, no label, columns in another order: predict picks the columns by name
    rows = d.data[[0, 50, 100, 25, 125]]
    order = [3, 2, 1, 0]
    with open(out / "flowers_new.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow([names[i] for i in order])
        for x in rows:
            w.writerow([f"{x[i]:g}" for i in order])


def write_houses(out: Path, rng: np.random.Generator, n: int = 400) -> None:
    rooms = rng.integers(1, 7, n).astype(float)
    area = np.round(rng.normal(80, 25, n).clip(20, 250), 1)
    age = np.round(rng.uniform(0, 60, n), 1)
    price = 50 + 20 * rooms + 1.5 * area - 0.8 * age + rng.normal(0, 10, n)
    with open(out / "houses.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["rooms", "area", "age", "price"])
        for row in zip(rooms, area, age, price):
            w.writerow([f"{v:g}" for v in row])
    x = np.stack([rooms, area, age], 1).astype(np.float32)
    y = price.astype(np.float32)
    np.savez(out / "houses.npz", x=x[:320], y=y[:320], x_test=x[320:], y_test=y[320:])


def _shape_image(kind: str, rng: np.random.Generator, size: int = 16):
    from PIL import Image, ImageDraw

    bg, fg = int(rng.integers(0, 60)), int(rng.integers(170, 256))
    im = Image.new("L", (size, size), bg)
    d = ImageDraw.Draw(im)
    r = rng.uniform(0.25, 0.4) * size
    cx, cy = rng.uniform(r, size - r, 2)
    if kind == "circle":
        d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fg)
    elif kind == "square":
        d.rectangle([cx - r, cy - r, cx + r, cy + r], fill=fg)
    else:
        d.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=fg)
    noise = rng.normal(0, 12, (size, size))
    arr = np.clip(np.asarray(im, dtype=float) + noise, 0, 255).astype(np.uint8)
    return Image.fromarray(arr).convert("RGB")  # saved as RGB: data.grayscale=true reads one channel


def write_shapes(out: Path, rng: np.random.Generator, n_train: int = 40, n_test: int = 10) -> None:
    for split, n in (("train", n_train), ("test", n_test)):
        for kind in SHAPES:
            folder = out / "shapes" / split / kind
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                _shape_image(kind, rng).save(folder / f"{kind}_{i:03d}.png")


def main(argv: list[str] | None = None) -> Path:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="outputs/example_data", help="folder to write into (default %(default)s)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    write_flowers(out)
    write_houses(out, rng)
    write_shapes(out, rng)
    print(f"wrote {out}/flowers.csv, flowers_new.csv, houses.csv, houses.npz and shapes/ (train, test)")
    return out


if __name__ == "__main__":
    main()
