"""Your own images — `data=image_folder` — in torchvision's ImageFolder layout:

    root/train/<class>/*.png      (or root/<class>/*.png: no official test split)
    root/test/<class>/*.png       optional: the official test split (its classes by name)

Every image is decoded with PIL to one channel (`data.grayscale=true`) or RGB, resized to
`data.image_size` when it is set (else all images must share one size), scaled to [0, 1] and
held as one (N, C, H, W) float tensor. `load_image` is the same decoding for predict."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from torchprac.data.sources import RawData, _require_root, dataset
from torchprac.data.stream import Examples
from torchprac.errors import DataError
from torchprac.registry import anything, flag, text

# torchvision.datasets.folder.IMG_EXTENSIONS, without importing torchvision for a constant
IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


def _size_rule(v: Any) -> str | None:
    ok = v is None or (isinstance(v, int) and not isinstance(v, bool) and v >= 1)
    ok = ok or (isinstance(v, (list, tuple)) and len(v) == 2 and all(isinstance(s, int) and s >= 1 for s in v))
    return None if ok else "null (keep the images' own size), a size N (N x N) or [height, width]"


def as_hw(size: int | Sequence[int] | None) -> tuple[int, int] | None:
    if size is None:
        return None
    return (int(size), int(size)) if isinstance(size, int) else (int(size[0]), int(size[1]))


def load_image(path: Path, channels: int, size: tuple[int, int] | None = None) -> torch.Tensor:
    """(C, H, W) float in [0, 1]: decoded with PIL to `channels` (1: grey, 3: RGB), resized to
    `size` (height, width) with bilinear filtering when given."""
    return decode_image(path, channels, size).float().div_(255.0)


def decode_image(path: Path, channels: int, size: tuple[int, int] | None = None) -> torch.Tensor:
    """(C, H, W) uint8, as load_image before the scaling (what a streaming loader moves)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im = im.convert("L" if channels == 1 else "RGB")
            if size is not None and im.size != (size[1], size[0]):
                im = im.resize((size[1], size[0]), Image.BILINEAR)
            arr = np.asarray(im, dtype=np.uint8)
    except (UnidentifiedImageError, OSError) as e:
        raise DataError(f"{path} is not a readable image ({type(e).__name__}: {e}).") from None
    t = torch.from_numpy(arr.copy())
    return (t[None] if t.ndim == 2 else t.permute(2, 0, 1)).contiguous()


class ImageFiles(Examples):
    """Image files decoded on demand (uint8); `finish` scales a batch to [0, 1] where it is."""

    def __init__(self, files: Sequence[Path], channels: int, size: tuple[int, int]) -> None:
        self.files, self.channels, self.size = list(files), int(channels), (int(size[0]), int(size[1]))
        self.shape = (self.channels, *self.size)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> torch.Tensor:
        return decode_image(self.files[i], self.channels, self.size)

    def finish(self, batch: torch.Tensor) -> torch.Tensor:
        return batch.float().div_(255.0)


def common_size(files: Sequence[Path], size: tuple[int, int] | None) -> tuple[int, int]:
    """`size`, or the one size (height, width) every image has (read from the file headers)."""
    from PIL import Image, UnidentifiedImageError

    if size is not None:
        return size
    first = None
    for f in files:
        try:
            with Image.open(f) as im:
                wh = im.size
        except (UnidentifiedImageError, OSError) as e:
            raise DataError(f"{f} is not a readable image ({type(e).__name__}: {e}).") from None
        if first is None:
            first = (f, wh)
        elif wh != first[1]:
            raise DataError(
                f"{f} is {wh[0]}x{wh[1]} pixels but {first[0]} is {first[1][0]}x{first[1][1]}: "
                "the images differ in size. Set data.image_size=N (or [height, width]) to resize them all."
            )
    return (first[1][1], first[1][0]) if first else (1, 1)


def image_files(folder: Path) -> list[Path]:
    """Every image under `folder` (recursively), in a stable (sorted) order."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMG_EXTENSIONS)


def _class_folders(folder: Path) -> list[tuple[str, list[Path]]]:
    classes = sorted(d.name for d in folder.iterdir() if d.is_dir() and not d.name.startswith("."))
    out = [(c, image_files(folder / c)) for c in classes]
    return [(c, files) for c, files in out if files]


def read_image_folder(root: Path, image_size=None, grayscale: bool = False) -> RawData:
    size, channels = as_hw(image_size), 1 if grayscale else 3
    train_dir = root / "train" if (root / "train").is_dir() else root
    test_dir = root / "test" if (root / "test").is_dir() and train_dir != root else None
    classes = _class_folders(train_dir)
    layout = "root/train/<class>/*.png (and optionally root/test/<class>/*.png), or root/<class>/*.png"
    if len(classes) < 2:
        raise DataError(
            f"data.root={str(root)!r}: {train_dir} holds {len(classes)} class folder(s) with images; "
            f"an image folder needs at least 2, laid out as {layout}."
        )
    names = [c for c, _ in classes]
    files = [f for _, fs in classes for f in fs]
    y = np.concatenate([np.full(len(fs), i, dtype=np.int64) for i, (_, fs) in enumerate(classes)])
    t_files: list[Path] = []
    yt = None
    if test_dir is not None:
        test = _class_folders(test_dir)
        unknown = [c for c, _ in test if c not in names]
        if unknown:
            raise DataError(
                f"{test_dir} has class folders {unknown} that {train_dir} does not have ({names}); "
                "the model could never predict them."
            )
        t_files = [f for _, fs in test for f in fs]
        if t_files:
            yt = np.concatenate([np.full(len(fs), names.index(c), dtype=np.int64) for c, fs in test])
    # decoded on demand: build_data holds them in memory, or streams them (data.in_memory)
    hw = common_size(files + t_files, size)
    x = ImageFiles(files, channels, hw)
    xt = ImageFiles(t_files, channels, hw) if t_files else None
    return RawData(x, y, xt, yt, class_names=names, task="classification")


@dataset(
    "image_folder", root=text(optional=True), image_size=anything(optional=True, check=_size_rule), grayscale=flag()
)
def _image_folder(root: str | None = None, image_size=None, grayscale: bool = False) -> RawData:
    how = (
        "Point data.root at a folder laid out as root/train/<class>/*.png (optionally root/test/<class>/*.png); "
        "`python scripts/make_example_data.py` writes a small one."
    )
    return read_image_folder(
        _require_root(root, "data=image_folder reads images from data.root", how), image_size, grayscale
    )
