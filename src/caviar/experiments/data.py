"""The data an experiment trains on: real MNIST for the full forms, a small head of it or the
embedded ``digits`` for ``--quick`` (CI may have no MNIST: digits needs no file and no network).
"""

from __future__ import annotations

from caviar.data import Dataset, load_dataset
from caviar.experiments.base import Options


def experiment_data(
    options: Options, *, train: int, test: int | None = None, quick_train: int = 300
) -> Dataset:
    """MNIST's first ``train`` training (and ``test`` test) images; with ``--quick``, the
    first ``quick_train`` of MNIST when ``--data-dir`` is given, else of the digits."""
    if options.quick:
        if options.data_dir is not None:
            full = load_dataset("mnist", data_dir=options.data_dir)
            return full.head(quick_train, min(test or 2000, 2000))
        digits = load_dataset("digits")
        return digits.head(min(quick_train, len(digits.y_train)), test)
    full = load_dataset("mnist", data_dir=options.data_dir)
    return full.head(train, test)
