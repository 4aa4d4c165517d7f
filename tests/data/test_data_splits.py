"""The validation split: stratified shares, seeds, a partition of the indices, and its hash."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from caviar.core.errors import InvalidValue
from caviar.data import split_validation
from caviar.data.splits import class_quotas


def labels(*counts: int) -> np.ndarray:
    """Class k repeated counts[k] times, classes interleaved so order carries no information."""
    y = np.concatenate([np.full(c, k) for k, c in enumerate(counts)])
    return y[np.random.default_rng(123).permutation(len(y))]


@pytest.mark.parametrize(
    ("counts", "fraction", "expected"),
    [
        pytest.param((50, 30, 20), 0.2, [10, 6, 4], id="exact-shares"),
        # 2.6, 1.4, 1.0 -> total 5; floors 2, 1, 1; the one left goes to the .6
        pytest.param((13, 7, 5), 0.2, [3, 1, 1], id="largest-remainder"),
        # 0.5, 4.5 -> total 5; both remainders .5, but class 0 would lose its only example
        pytest.param((1, 9), 0.5, [0, 5], id="never-empty-a-class"),
        # 0.3 * (3, 3, 3, 1) = .9, .9, .9, .3 -> total round(3.0) = 3: the three .9s
        pytest.param((3, 3, 3, 1), 0.3, [1, 1, 1, 0], id="small-classes"),
    ],
)
def test_class_shares(counts, fraction, expected) -> None:
    assert class_quotas(np.array(counts), fraction, sum(expected)).tolist() == expected
    y = labels(*counts)
    split = split_validation(np.arange(len(y)), y, fraction=fraction, seed=7)
    assert np.bincount(split.y_val, minlength=len(counts)).tolist() == expected


def test_every_class_within_one_of_its_share() -> None:
    counts = (101, 57, 33, 9, 250, 1)
    y = labels(*counts)
    split = split_validation(np.zeros((len(y), 3)), y, fraction=0.3, seed=1)
    assert len(split.y_val) == round(0.3 * 451) == 135
    got_counts = np.bincount(split.y_val, minlength=len(counts))
    assert np.all(np.abs(got_counts - 0.3 * np.array(counts)) < 1)


@pytest.mark.parametrize(("n", "fraction", "n_val"), [(100, 0.2, 20), (7, 0.5, 4), (10, 0.25, 2)])
def test_total_is_round_of_fraction_times_n(n, fraction, n_val) -> None:
    # Python's round: 3.5 -> 4, 2.5 -> 2
    for stratify in (True, False):
        split = split_validation(np.arange(n), np.arange(n) % 2, fraction, stratify=stratify)
        assert len(split.val_indices) == n_val and len(split.train_indices) == n - n_val


def test_indices_partition_and_rows_follow_them() -> None:
    y = labels(40, 35, 25)
    x = np.arange(len(y) * 2).reshape(-1, 2)  # row i is [2i, 2i + 1]
    split = split_validation(x, y, fraction=0.2, seed=3)
    both = np.concatenate([split.train_indices, split.val_indices])
    assert sorted(both.tolist()) == list(range(100))
    assert set(split.train_indices.tolist()).isdisjoint(split.val_indices.tolist())
    np.testing.assert_array_equal(split.x_val[:, 0], 2 * split.val_indices)
    np.testing.assert_array_equal(split.y_train, y[split.train_indices])
    assert split.train_indices.tolist() == sorted(split.train_indices.tolist())


def test_seed_decides_the_split() -> None:
    y = labels(60, 40)
    a = split_validation(np.arange(100), y, seed=5)
    b = split_validation(np.arange(100), y, seed=5)
    c = split_validation(np.arange(100), y, seed=6)
    np.testing.assert_array_equal(a.val_indices, b.val_indices)
    assert a.hash == b.hash
    assert a.val_indices.tolist() != c.val_indices.tolist()
    assert a.hash != c.hash


def test_hash_is_sha256_of_the_documented_text() -> None:
    split = split_validation(np.arange(10), np.arange(10) % 2, fraction=0.2, seed=4)
    i, j = split.val_indices.tolist()
    text = f"caviar-split-v1;n=10;seed=4;val={i},{j}"
    assert split.hash == hashlib.sha256(text.encode()).hexdigest()
    assert (i % 2, j % 2) in {(0, 1), (1, 0)}  # one from each class


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"fraction": 0.0}, r"split_validation\.fraction: must be a number in \(0, 1\), got 0.0"),
        ({"fraction": 1.0}, r"split_validation\.fraction: must be a number in \(0, 1\), got 1.0"),
        ({"fraction": -0.2}, r"split_validation\.fraction: must be a number in \(0, 1\), got -0.2"),
        (
            {"fraction": "0.2"},
            r"split_validation\.fraction: must be a number in \(0, 1\), got '0.2'",
        ),
        ({"fraction": 0.01}, r"each part must keep at least one example, got 0 of 10"),
        ({"fraction": 0.97}, r"each part must keep at least one example, got 10 of 10"),
        ({"seed": -1}, r"seed:? must be an integer in \[0, 2\*\*63\), got -1"),
        ({"seed": 1.5}, r"seed:? must be an integer in \[0, 2\*\*63\), got 1.5"),
    ],
)
def test_bad_arguments(kwargs, match) -> None:
    with pytest.raises(InvalidValue, match=match):
        split_validation(np.arange(10), np.arange(10) % 2, **kwargs)


def test_shapes_must_agree() -> None:
    with pytest.raises(InvalidValue, match=r"same N, got shapes \[10\] and \[9\]"):
        split_validation(np.arange(10), np.arange(9) % 2)
