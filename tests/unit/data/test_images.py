"""data=image_folder (torchprac/data/images.py): ImageFolder layout, classes by folder name
(the test split's mapped by name), decoding equal to PIL's pixels / 255, resizing, and folders
that cannot work refused with the file or folder at fault."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from torchprac import registry
from torchprac.data import build_data
from torchprac.errors import DataError


def _img(path: Path, value: int, size=(5, 4), rgb=True) -> np.ndarray:
    path.parent.mkdir(parents=True, exist_ok=True)
    a = np.full((size[1], size[0], 3) if rgb else (size[1], size[0]), value, np.uint8)
    a[0, 0] = 255 - value  # not constant: a pixel that shows orientation
    Image.fromarray(a).save(path)
    return a


def _spec(root: Path, **kw):
    return registry.build("data", {"name": "image_folder", "root": str(root), **kw})


def test_layout_classes_and_pixels(tmp_path):
    pix = {}
    for c, v in (("b_cat", 10), ("a_dog", 200)):
        for i in range(10):
            pix[(c, i)] = _img(tmp_path / "train" / c / f"{i}.png", v + i)
    _img(tmp_path / "test" / "b_cat" / "0.png", 50)  # only one class in test: mapped by name
    s = build_data(_spec(tmp_path, normalize=False, split=[0.8, 0.2]), 0)
    assert s.class_names == ["a_dog", "b_cat"] and s.input_shape == (3, 4, 5)
    assert s.test.y.tolist() == [1] and len(s.train) + len(s.dev) == 20
    x = s.test.x[0].numpy()
    assert x[0, 0, 0] == pytest.approx(205 / 255) and x[1, 1, 1] == pytest.approx(50 / 255)

    grey = build_data(_spec(tmp_path, normalize=False, grayscale=True, image_size=[2, 3]), 0)
    assert grey.input_shape == (1, 2, 3)


def test_folders_that_cannot_work_are_refused(tmp_path):
    _img(tmp_path / "one" / "cat" / "0.png", 1)
    with pytest.raises(DataError, match="holds 1 class folder"):
        build_data(_spec(tmp_path / "one"), 0)
    for i in range(3):
        _img(tmp_path / "sizes" / "a" / f"{i}.png", 1)
        _img(tmp_path / "sizes" / "b" / f"{i}.png", 1, size=(7, 7))
    with pytest.raises(DataError, match=r"differ in size\. Set data\.image_size"):
        build_data(_spec(tmp_path / "sizes"), 0)
    assert build_data(_spec(tmp_path / "sizes", image_size=6), 0).input_shape == (3, 6, 6)
    (tmp_path / "bad" / "a").mkdir(parents=True)
    (tmp_path / "bad" / "a" / "x.png").write_bytes(b"not an image")
    _img(tmp_path / "bad" / "b" / "0.png", 3)
    with pytest.raises(DataError, match="x.png is not a readable image"):
        build_data(_spec(tmp_path / "bad"), 0)
    _img(tmp_path / "t" / "train" / "a" / "0.png", 1)
    _img(tmp_path / "t" / "train" / "b" / "0.png", 1)
    _img(tmp_path / "t" / "test" / "zebra" / "0.png", 1)
    with pytest.raises(DataError, match=r"class folders \['zebra'\]"):
        build_data(_spec(tmp_path / "t"), 0)
