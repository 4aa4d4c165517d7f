"""The embedded default: scikit-learn's bundled 8x8 digits, so caviar runs with no network at all.

1797 images with values 0..16 (divided by 16 here). They come in one piece, so a fixed test set
is carved off once: a stratified 20 % with seed 0 (359 images), the same on every machine.
"""

from __future__ import annotations

import numpy as np

from caviar.data.dataset import Dataset
from caviar.data.preprocessing import pixels
from caviar.data.splits import split_validation

TEST_FRACTION = 0.2
TEST_SEED = 0


def load_digits() -> Dataset:
    """scikit-learn's digits as float32 ``[N, 64]`` in [0, 1], split 1438 train / 359 test."""
    from sklearn.datasets import load_digits as sklearn_digits  # deferred: a slow import

    bunch = sklearn_digits()
    x = (bunch.data / 16.0).astype(np.float32)  # [1797, 64]
    y = bunch.target.astype(np.int64)  # [1797]
    cut = split_validation(x, y, fraction=TEST_FRACTION, seed=TEST_SEED)
    return Dataset(
        name="digits",
        x_train=cut.x_train,
        y_train=cut.y_train,
        x_test=cut.x_val,
        y_test=cut.y_val,
        n_classes=10,
        source=(
            "scikit-learn load_digits (bundled, no download); values / 16; "
            f"test: stratified {TEST_FRACTION:.0%} carved off with seed {TEST_SEED} "
            f"(split {cut.hash[:12]})"
        ),
        input_shape=(8, 8),
        preprocessing=pixels((8, 8), 16.0),
    )
