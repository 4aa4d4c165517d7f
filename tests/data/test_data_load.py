"""load_dataset's dispatch and sizes, and the Dataset invariants."""

from __future__ import annotations

import numpy as np
import pytest

from caviar.core.errors import InvalidValue
from caviar.data import Dataset, load_dataset


def test_unknown_name_lists_names_and_suffixes() -> None:
    with pytest.raises(
        InvalidValue,
        match=r"load_dataset\.name_or_path: must be one of digits, fashion-mnist, mnist "
        r"or a file ending in \.csv or \.npz, got 'cifar10'",
    ):
        load_dataset("cifar10")
    with pytest.raises(InvalidValue, match=r"\.csv or \.npz, got 'data.txt'"):
        load_dataset("data.txt")
    with pytest.raises(
        InvalidValue, match=r"load_dataset.name_or_path: must be a name or a path, got 3"
    ):
        load_dataset(3)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"train_size": 0}, r"Dataset 'digits': train_size must be in \[1, 1438\], got 0"),
        ({"train_size": 1439}, r"train_size must be in \[1, 1438\], got 1439"),
        ({"test_size": 360}, r"test_size must be in \[1, 359\], got 360"),
        ({"test_size": 2.0}, r"test_size must be an int, got 2.0"),
        ({"train_size": True}, r"train_size must be an int, got True"),
    ],
)
def test_bad_sizes(kwargs, match) -> None:
    with pytest.raises(InvalidValue, match=match):
        load_dataset("digits", **kwargs)


def test_sizes_at_the_edges() -> None:
    small = load_dataset("digits", train_size=1, test_size=359)
    assert small.x_train.shape == (1, 64) and small.x_test.shape == (359, 64)
    assert "first 1 train examples" in small.source and "test examples" not in small.source


def test_data_dir_only_for_file_datasets(tmp_path) -> None:
    with pytest.raises(
        InvalidValue, match=r"^load_dataset\.data_dir: applies only to fashion-mnist, mnist"
    ):
        load_dataset("digits", data_dir=tmp_path)


def make(**changes) -> Dataset:
    parts = {
        "name": "toy",
        "x_train": np.zeros((3, 4), np.float32),
        "y_train": np.array([0, 1, 2]),
        "x_test": np.zeros((1, 4), np.float32),
        "y_test": np.array([1]),
        "n_classes": 3,
        "source": "made by hand",
    }
    return Dataset(**(parts | changes))


def test_dataset_defaults() -> None:
    toy = make()
    assert toy.class_names == ("0", "1", "2") and toy.input_shape == (4,) and toy.n_features == 4


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"x_train": np.zeros((3, 4))}, r"x_train must be a float32 \[N, D\] array, got float64"),
        (
            {"y_train": np.array([0, 1])},
            r"y_train must be an int64 \[3\] array, got int64 of shape \[2\]",
        ),
        ({"y_test": np.array([3])}, r"y_test must lie in \[0, 2\], got values in \[3, 3\]"),
        (
            {"x_test": np.zeros((1, 5), np.float32)},
            r"x_test must have 4 features like x_train, got 5",
        ),
        ({"n_classes": 1}, r"n_classes must be >= 2, got 1"),
        ({"class_names": ("a", "b")}, r"class_names must have 3 entries, got 2"),
        ({"input_shape": (3, 3)}, r"input_shape must hold 4 features, got \(3, 3\)"),
        (
            {"x_test": np.zeros((0, 4), np.float32), "y_test": np.zeros(0, np.int64)},
            r"test set must not be empty",
        ),
    ],
)
def test_dataset_invariants(changes, match) -> None:
    with pytest.raises(InvalidValue, match=match):
        make(**changes)
