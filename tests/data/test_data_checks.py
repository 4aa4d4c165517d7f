"""The checks a study runs on its data: a validation split that can measure something, and a
batch size that fits the training set. Refusals are InvalidValue naming the key and the counts;
what is usable but misleading is a DataWarning with the counts."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from caviar.core.errors import InvalidValue
from caviar.data import (
    Dataset,
    DataWarning,
    check_batch_size,
    load_dataset,
    split_for_study,
    split_validation,
)


def dataset(*counts: int, n_classes: int | None = None) -> Dataset:
    """Class k repeated counts[k] times (interleaved), one feature holding the row number."""
    y = np.concatenate([np.full(c, k, dtype=np.int64) for k, c in enumerate(counts)])
    y = y[np.random.default_rng(5).permutation(len(y))]
    return Dataset(
        name="toy",
        x_train=np.arange(len(y), dtype=np.float32)[:, None],
        y_train=y,
        x_test=np.zeros((1, 1), np.float32),
        y_test=np.zeros(1, np.int64),
        n_classes=n_classes or len(counts),
        source="made by hand",
    )


TEN_BY_115 = (115,) * 10  # 1150 training examples, 10 classes


def no_warnings_split(data: Dataset, fraction: float, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return split_for_study(data, fraction, seed=3, **kwargs)


def test_a_sensible_split_is_split_validation_and_silent() -> None:
    data = dataset(*TEN_BY_115)
    split = no_warnings_split(data, 0.2)
    plain = split_validation(data.x_train, data.y_train, 0.2, seed=3)
    assert split.hash == plain.hash and len(split.val_indices) == 230


@pytest.mark.parametrize(
    ("fraction", "match"),
    [
        # round(0.999 * 1150) = round(1148.85) = 1149 for validation, 1 left for training
        (
            0.999,
            r"^data\.validation: 0\.999 of 1150 training examples leaves 1 for training; "
            r"at least 10 \(one per class\) are needed$",
        ),
        # round(0.001 * 1150) = round(1.15) = 1 for validation
        (
            0.001,
            r"^data\.validation: 0\.001 of 1150 training examples leaves 1 for validation; "
            r"at least 10 \(one per class\) are needed$",
        ),
        # round(0.9999 * 1150) = round(1149.885) = 1150: nothing left to train on
        (0.9999, r"leaves 0 for training; at least 10 \(one per class\) are needed$"),
        # round(0.004 * 1150) = round(4.6) = 5
        (0.004, r"leaves 5 for validation; at least 10"),
    ],
)
def test_a_split_that_leaves_a_part_without_every_class_is_refused(fraction, match) -> None:
    with pytest.raises(InvalidValue, match=match):
        split_for_study(dataset(*TEN_BY_115), fraction, seed=0, key_prefix="data.")


def test_owner_without_a_prefix_is_the_parameter() -> None:
    with pytest.raises(InvalidValue, match=r"^validation: 0\.999 of 1150"):
        split_for_study(dataset(*TEN_BY_115), 0.999, seed=0)


def test_fewer_examples_than_two_per_class_blames_train_size() -> None:
    five = dataset(1, 1, 1, 1, 1, n_classes=10)  # like MNIST's first 5: no example of 5 classes
    with pytest.raises(
        InvalidValue,
        match=r"^data\.train_size: 5 training examples for 10 classes; at least 20 are needed "
        r"\(one per class for training and one for validation\)$",
    ):
        split_for_study(five, 0.2, seed=0, train_size=5, key_prefix="data.")
    with pytest.raises(InvalidValue, match=r"^data\.dataset: 5 training examples for 10 classes"):
        split_for_study(five, 0.2, seed=0, key_prefix="data.")


def test_a_class_absent_from_training_is_refused() -> None:
    data = dataset(5, 5, 5, 0, 5, 5)  # 25 examples >= 2 * 6, but none of class 3
    with pytest.raises(
        InvalidValue,
        match=r"^data\.train_size: the 25 training examples hold no example of class '3'; "
        r"every one of the 6 classes needs at least 2 \(one for training, one for validation\)$",
    ):
        split_for_study(data, 0.2, seed=0, train_size=25, key_prefix="data.")


def test_a_class_the_split_takes_entirely_is_refused() -> None:
    # counts (1, 6), fraction 0.65: N = 7, round(4.55) = 5 for validation, 2 for training.
    # shares .65, 3.9 -> floors 0, 3; two left: class 1 (3 + 1 < 6) takes one, and only
    # class 0 is left for the other: its one example goes to validation.
    with pytest.raises(
        InvalidValue,
        match=r"^data\.validation: 0\.65 of 7 training examples leaves class '0' \(1 example\) "
        r"with no training example; every class needs at least one$",
    ):
        split_for_study(dataset(1, 6), 0.65, seed=0, key_prefix="data.")


def test_a_class_with_one_example_is_warned_about() -> None:
    # 9 classes of 115 and class 8 with 1: N = 1036, round(0.2 * 1036) = round(207.2) = 207
    # shares 23 for each big class (207 in all), 0.2 for class 8 -> no validation example.
    data = dataset(*(115,) * 8, 1, 115)
    with pytest.warns(DataWarning) as record:
        split = split_for_study(data, 0.2, seed=0, key_prefix="data.")
    assert [str(w.message) for w in record] == [
        "data.validation: class '8' (1 of the 1036 training examples) has no validation example; "
        "validation accuracy says nothing about it"
    ]
    assert 8 not in split.y_val and (split.y_train == 8).sum() == 1


def test_small_validation_set_is_warned_about() -> None:
    # round(0.04 * 1150) = 46 for validation, fewer than 10 per class; steps of 1 / 46
    with pytest.warns(DataWarning) as record:
        split_for_study(dataset(*TEN_BY_115), 0.04, seed=0, key_prefix="data.")
    assert [str(w.message) for w in record] == [
        "data.validation: 0.04 of 1150 training examples leaves 46 for validation, fewer than "
        "10 per class (100 for 10 classes); accuracy moves in steps of 1/46 = 0.0217, so the "
        "best of many trials is partly luck"
    ]


def test_training_set_smaller_than_validation_is_warned_about() -> None:
    # round(0.6 * 1150) = 690 for validation, 460 for training
    with pytest.warns(DataWarning) as record:
        split_for_study(dataset(*TEN_BY_115), 0.6, seed=0, key_prefix="data.")
    assert [str(w.message) for w in record] == [
        "data.validation: 0.6 of 1150 training examples leaves 460 for training and 690 for "
        "validation; the training set is smaller than the validation set"
    ]


def test_bad_fraction_is_owned_by_the_key() -> None:
    with pytest.raises(InvalidValue, match=r"^data\.validation: must be a number in \(0, 1\), got"):
        split_for_study(dataset(*TEN_BY_115), 1.5, seed=0, key_prefix="data.")


# --- batch size -----------------------------------------------------------------------------------


def test_batch_larger_than_training_set_warns_with_the_numbers() -> None:
    with pytest.warns(DataWarning) as record:
        check_batch_size(100000, 920, owner="space.batch_size")
    assert [str(w.message) for w in record] == [
        "space.batch_size: 100000 is larger than the 920 training examples; "
        "each epoch is one full batch of 920"
    ]


def test_batch_that_fits_is_silent() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_batch_size(920, 920)
        check_batch_size(1, 920)


@pytest.mark.parametrize(
    ("batch_size", "match"),
    [(0, r"must be an int >= 1, got 0"), (2.5, r"must be an int >= 1, got 2\.5")],
)
def test_batch_size_must_be_a_positive_int(batch_size, match) -> None:
    with pytest.raises(InvalidValue, match=r"^batch_size: " + match):
        check_batch_size(batch_size, 920)


# --- data that no network learns from -------------------------------------------------------------


def features(x: np.ndarray, name: str = "toy") -> Dataset:
    """``x`` with labels 0, 1, 0, 1, ... (two classes)."""
    n = len(x)
    return Dataset(
        name=name,
        x_train=x.astype(np.float32),
        y_train=np.arange(n, dtype=np.int64) % 2,
        x_test=x[:2].astype(np.float32),
        y_test=np.array([0, 1]),
        n_classes=2,
        source="made by hand",
    )


def unlearnable(data: Dataset) -> list[str]:
    """The DataWarnings about the features that split_for_study gives ``data``."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        split_for_study(data, 0.2, seed=0, key_prefix="data.")
    return [str(w.message) for w in caught if str(w.message).startswith("data.dataset: ")]


GRID = np.arange(200 * 4, dtype=np.float64).reshape(200, 4) % 13  # [200, 4], values 0..12


def test_features_times_1e30_are_warned_about_with_the_largest() -> None:
    """The issue's case: features x 1e30 trained at chance with no word. The largest is
    12e30 (the grid's 12); every one of the 4 features exceeds 1e4."""
    assert unlearnable(features(GRID * 1e30)) == [
        "data.dataset: in 'toy', the largest |feature| is 1.2e+31 (feature 0; 4 of the 4 "
        "features exceed 10000); features this large saturate the network and a study trains "
        "at chance: standardize each feature (subtract its mean, divide by its standard "
        "deviation)"
    ]


def test_one_large_feature_is_named() -> None:
    x = np.c_[GRID, np.full(200, -3e5)]
    (message,) = unlearnable(features(x))
    assert "the largest |feature| is 3e+05 (feature 4; 1 of the 5 features exceed 10000)" in message


@pytest.mark.parametrize(
    "x",
    [
        pytest.param(np.tile([1.0, 2.0, 3.0, 4.0], (200, 1)), id="every-feature-constant"),
        pytest.param(np.tile(GRID[7], (200, 1)), id="every-row-identical"),
        pytest.param(np.zeros((200, 4)), id="all-zero"),
        pytest.param(np.full((200, 4), 1e30), id="constant-and-huge"),
    ],
)
def test_every_row_the_same_is_warned_about(x: np.ndarray) -> None:
    assert unlearnable(features(x)) == [
        "data.dataset: in 'toy', every row of x is the same (all 4 features are constant over "
        "the 200 training examples), so nothing tells the 2 classes apart and every trial trains "
        "at chance"
    ]


RNG = np.random.default_rng(27)


@pytest.mark.parametrize(
    "x",
    [
        pytest.param(RNG.integers(0, 256, (200, 16)), id="pixels-0-255"),
        pytest.param(RNG.integers(0, 256, (200, 16)) / 255.0, id="pixels-0-1"),
        pytest.param(RNG.integers(0, 17, (200, 16)), id="digits-0-16"),
        pytest.param(RNG.standard_normal((200, 16)) * 5, id="standardized-heavy"),
        pytest.param(np.c_[GRID, np.full(200, 1e4)], id="at-the-threshold"),
        pytest.param(np.c_[GRID, np.ones(200)], id="one-constant-feature"),
        pytest.param(GRID * 1e-30, id="tiny"),
    ],
)
def test_learnable_features_are_not_warned_about(x: np.ndarray) -> None:
    assert unlearnable(features(x)) == []


def test_the_embedded_digits_are_not_warned_about() -> None:
    assert unlearnable(load_dataset("digits")) == []


def test_the_warning_names_the_dataset_and_the_key() -> None:
    with pytest.warns(DataWarning, match=r"^dataset: in 'big', the largest \|feature\| is 1e\+30"):
        split_for_study(features(np.c_[GRID, np.full(200, 1e30)], name="big"), 0.2, seed=0)
