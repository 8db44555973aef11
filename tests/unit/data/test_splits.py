"""Train/dev/test splitting: the `auto` rule, explicit ratios, stratified, seeded, disjoint."""

from __future__ import annotations

import numpy as np
import pytest

from torchprac.data.splits import auto_split_sizes, check_ratios, split_indices
from torchprac.errors import ConfigError


def test_auto_split_sizes_follow_the_rule():
    assert auto_split_sizes(10_000) == (6_000, 2_000, 2_000)  # 60/20/20
    tr, dv, te = auto_split_sizes(1_000_000)  # computed, never materialised
    assert (tr / 1e6, dv / 1e6, te / 1e6) == (0.98, 0.01, 0.01)
    assert auto_split_sizes(4_000_000) == (3_980_000, 10_000, 10_000)  # 99.5/0.25/0.25


def test_split_is_stratified_seeded_and_disjoint():
    y = np.repeat(np.arange(5), 200)
    a = split_indices(y, "auto", seed=3, has_official_test=False)
    b = split_indices(y, "auto", seed=3, has_official_test=False)
    c = split_indices(y, "auto", seed=4, has_official_test=False)
    assert all(np.array_equal(p, q) for p, q in zip(a, b))
    assert not np.array_equal(a[1], c[1])
    tr, dv, te = a
    assert (len(tr), len(dv), len(te)) == (600, 200, 200)
    assert len(set(tr) | set(dv) | set(te)) == 1000
    for part in (dv, te):  # stratified: 40 of each class
        assert np.bincount(y[part]).tolist() == [40] * 5


def test_explicit_ratios_without_test():
    y = np.repeat(np.arange(2), 500)
    tr, dv, te = split_indices(y, [0.7, 0.3, 0.0], seed=0, has_official_test=False)
    assert (len(tr), len(dv), te) == (700, 300, None)


def test_official_test_set_dev_carved_from_the_pool_by_the_whole_dataset_rule():
    y = np.arange(500) % 10
    tr, dv, te = split_indices(y, "auto", seed=0, has_official_test=True, n_official_test=100)
    assert te is None and len(dv) == 120 and len(tr) == 380  # 0.2 * (500 + 100)


@pytest.mark.parametrize("split", [[0.5, 0.2, 0.2], [0.7], "half", [0.0, 1.0, 0.0], [1.2, -0.2, 0.0]])
def test_bad_ratios_are_refused(split):
    with pytest.raises(ConfigError) as e:
        check_ratios(split)
    assert e.value.key == "data.split"


@pytest.mark.parametrize("split", ["auto", [0.7, 0.3], [0.6, 0.2, 0.2], [0.7, 0.3, 0]])
def test_good_ratios_pass(split):
    check_ratios(split)
