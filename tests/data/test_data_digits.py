"""The embedded digits: no network, a fixed stratified test set."""

from __future__ import annotations

import urllib.request

import numpy as np
import pytest
from sklearn.datasets import load_digits as sklearn_digits

from caviar.data import load_dataset

# Class sizes of sklearn's digits and their 20 % test shares, by hand (Hamilton's method):
#   counts   178   182   177   183   181   182   181   179   174   180   (1797)
#   0.2 x   35.6  36.4  35.4  36.6  36.2  36.4  36.2  35.8  34.8  36.0  (359.4 -> 359)
#   floors    35    36    35    36    36    36    36    35    34    36   (355, 4 to hand out)
#   largest remainders .8 (7), .8 (8), .6 (0), .6 (3) get one more:
TEST_COUNTS = [36, 36, 35, 37, 36, 36, 36, 36, 35, 36]


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def test_shapes_and_range(digits) -> None:
    assert digits.x_train.shape == (1438, 64) and digits.x_test.shape == (359, 64)
    assert digits.x_train.dtype == np.float32 and digits.y_train.dtype == np.int64
    assert digits.x_train.min() == 0.0 and digits.x_train.max() == 1.0
    assert digits.n_classes == 10 and digits.input_shape == (8, 8)
    assert digits.class_names == tuple("0123456789")


def test_test_set_is_stratified(digits) -> None:
    assert np.bincount(digits.y_test, minlength=10).tolist() == TEST_COUNTS


def test_split_is_a_partition_of_sklearns_rows(digits) -> None:
    bunch = sklearn_digits()
    expected = np.column_stack([bunch.data / 16.0, bunch.target])
    ours = np.column_stack(
        [
            np.vstack([digits.x_train, digits.x_test]),
            np.concatenate([digits.y_train, digits.y_test]),
        ]
    )
    # the same multiset of (pixels, label) rows: compare after sorting rows
    np.testing.assert_allclose(np.unique(ours, axis=0), np.unique(expected, axis=0), rtol=1e-6)
    assert len(ours) == len(expected)


def test_test_set_is_always_the_same(digits) -> None:
    again = load_dataset("digits")
    np.testing.assert_array_equal(again.x_test, digits.x_test)
    np.testing.assert_array_equal(again.y_test, digits.y_test)
    np.testing.assert_array_equal(again.x_train, digits.x_train)


def test_needs_no_network(monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("digits must not touch the network")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    assert load_dataset("digits").x_train.shape == (1438, 64)


def test_first_examples(digits) -> None:
    small = load_dataset("digits", train_size=100, test_size=10)
    np.testing.assert_array_equal(small.x_train, digits.x_train[:100])
    np.testing.assert_array_equal(small.y_test, digits.y_test[:10])
    assert "first 100 train examples and first 10 test examples" in small.source
