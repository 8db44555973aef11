"""data.build_data (torchprac/data/__init__.py): class subsets, training subsets, and the
checks of the raw arrays before any training."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import CPU, make_rc

from torchprac.data import RawData, build_data, check_raw
from torchprac.errors import DataError


def test_classes_subset_and_train_subset():
    s = build_data(make_rc(["data.classes=[3,8]", "data.train_subset=40"]).data, 0, CPU)
    assert s.num_classes == 2 and len(s.train) == 40
    counts = torch.bincount(s.train.y).tolist()
    assert len(counts) == 2 and abs(counts[0] - counts[1]) <= 2  # stratified: 183:174 in digits


@pytest.mark.parametrize(
    "raw,says",
    [
        (
            RawData(np.array([[0.0], [np.nan], [1.0]]), np.array([0, 1, 0])),
            "x holds NaN or infinite values in 1 row(s): 1",
        ),
        (RawData(np.zeros((3, 1)), np.array([0, -1, 1])), "negative in 1 row(s): 1"),
        (RawData(np.zeros((3, 1)), np.array([1, 1, 1])), "a single class"),
        (RawData(np.zeros((3, 1)), np.array([0, 1])), "different lengths"),
        (
            RawData(np.zeros((3, 1)), np.array([0, 1, 0]), np.zeros((2, 1)), np.array([0, 5])),
            "y_test has labels [5]",
        ),
    ],
)
def test_raw_arrays_are_checked_naming_array_and_rows(raw, says):
    with pytest.raises(DataError) as e:
        check_raw(raw, "toy")
    assert str(e.value).startswith("data=toy: ") and says in str(e.value)
