"""Checks a study runs on its data before spending hours on it.

Two kinds of trouble, told apart on purpose:

- **Refused** (:class:`~caviar.core.errors.InvalidValue`): nothing sensible can come out. Some class
  has no training example, or a part of the split is smaller than the number of classes (so at least
  one class is missing from it): ``validation = 0.999`` of 1150 examples trains on 1, and
  ``validation = 0.001`` validates on 1, where every lucky trial reads 1.0000.
- **Warned about** (:class:`DataWarning`, through :func:`warnings.warn`): the run works but its
  numbers mislead. A class without a validation example (a class of one example cannot be in both
  parts: it stays in training, see :mod:`caviar.data.splits`), fewer than
  :data:`MIN_VAL_PER_CLASS` validation examples per class (accuracy moves in coarse steps and the
  best of many trials is partly luck), a training set smaller than the validation set, a batch
  larger than the training set, and training features that no network learns from: every row
  the same, or values beyond :data:`MAX_FEATURE` (features x 1e30 train at chance).

Every message names the key (``key_prefix`` + the parameter: ``data.validation`` when the caller
passes ``key_prefix="data."``) and the counts it is about.
"""

from __future__ import annotations

import warnings

import numpy as np

from caviar.core.constraints import FRACTION
from caviar.core.errors import InvalidValue, got
from caviar.data.dataset import Dataset
from caviar.data.splits import Split, class_quotas, python_scalar, split_validation

#: fewer validation examples than this many per class (on average) draw a DataWarning
MIN_VAL_PER_CLASS = 10
#: a feature larger than this in magnitude draws a DataWarning. Pixels are at most 255 (MNIST
#: as bytes; caviar's MNIST is /255, at most 1), the embedded digits at most 16, and standardized
#: features lie within a few tens even for heavy tails; past 1e4 the first layer's pre-activations
#: are thousands of times their usual scale, softmax saturates, and a study trains at chance
#: (features x 1e30 did, with no word). Raw units of that size (counts, currency) train badly too,
#: so the advice to standardize holds for them as well.
MAX_FEATURE = 1e4


class DataWarning(UserWarning):
    """The data can be used, but what a study measures on it will mislead; the message says why."""


def split_for_study(
    dataset: Dataset,
    fraction: float,
    seed: int,
    *,
    train_size: int | None = None,
    key_prefix: str = "",
) -> Split:
    """:func:`~caviar.data.split_validation` of ``dataset``'s training set, refused or warned
    about as the module docstring says.

    ``train_size`` is the size the caller asked for, if any: a training set too small for its
    classes is then blamed on ``train_size``, else on ``dataset``. The split itself is exactly
    ``split_validation(x_train, y_train, fraction, seed=seed)``.
    """
    y = dataset.y_train
    n, n_classes = len(y), dataset.n_classes
    name = dataset.class_names
    validation = f"{key_prefix}validation"
    size_key = f"{key_prefix}{'train_size' if train_size is not None else 'dataset'}"
    # 1. Enough examples for one per class in each part, and every class among them.
    if n < 2 * n_classes:
        raise InvalidValue(
            size_key,
            f"{n} training examples for {n_classes} classes; at least {2 * n_classes} are needed "
            "(one per class for training and one for validation)",
        )
    counts = np.bincount(y, minlength=n_classes)  # (K,)
    absent = np.flatnonzero(counts == 0)
    if len(absent):
        raise InvalidValue(
            size_key,
            f"the {n} training examples hold no example of {_classes(absent, name)}; every one "
            f"of the {n_classes} classes needs at least 2 (one for training, one for validation)",
        )
    # 2. The sizes of the two parts, as split_validation will cut them.
    fraction = FRACTION.check(python_scalar(fraction), validation)
    n_val = round(fraction * n)
    n_fit = n - n_val
    of = f"{fraction} of {n} training examples"
    for part, size in (("training", n_fit), ("validation", n_val)):
        if size < n_classes:
            raise InvalidValue(
                validation,
                f"{of} leaves {size} for {part}; at least {n_classes} (one per class) are needed",
            )
    quota = class_quotas(counts, fraction, n_val)  # (K,) validation examples per class
    emptied = np.flatnonzero(quota >= counts)
    if len(emptied):
        k = int(emptied[0])
        raise InvalidValue(
            validation,
            f"{of} leaves class {name[k]!r} ({_examples(counts[k])}) with no training example; "
            "every class needs at least one",
        )
    # 3. Usable, but misleading.
    for message in _unlearnable(dataset, f"{key_prefix}dataset"):
        _warn(message)
    for k in map(int, np.flatnonzero(quota == 0)):
        _warn(
            f"{validation}: class {name[k]!r} ({counts[k]} of the {n} training examples) has no "
            "validation example; validation accuracy says nothing about it"
        )
    if n_val < MIN_VAL_PER_CLASS * n_classes:
        _warn(
            f"{validation}: {of} leaves {n_val} for validation, fewer than {MIN_VAL_PER_CLASS} "
            f"per class ({MIN_VAL_PER_CLASS * n_classes} for {n_classes} classes); accuracy moves "
            f"in steps of 1/{n_val} = {1 / n_val:.4f}, so the best of many trials is partly luck"
        )
    if n_fit < n_val:
        _warn(
            f"{validation}: {of} leaves {n_fit} for training and {n_val} for validation; "
            "the training set is smaller than the validation set"
        )
    try:
        return split_validation(dataset.x_train, y, fraction, seed=seed)
    except InvalidValue as e:
        raise e.at(validation) from None


def _unlearnable(dataset: Dataset, key: str) -> list[str]:
    """Why no trial can learn from ``dataset``'s training features, if it says: every row the
    same (so every feature constant), or features too large for the network (see MAX_FEATURE)."""
    x = dataset.x_train  # [N, D]
    n, d = x.shape
    if not n * d:
        return []
    of = f"in {dataset.name!r}"
    high, low = x.max(axis=0), x.min(axis=0)  # (D,) each: no [N, D] temporary on MNIST
    if (high == low).all():
        return [
            f"{key}: {of}, every row of x is the same (all {d} features are constant over the "
            f"{n} training examples), so nothing tells the {dataset.n_classes} classes apart and "
            "every trial trains at chance"
        ]
    largest = np.maximum(np.abs(high), np.abs(low))  # (D,) the largest |value| of each feature
    if float(largest.max()) > MAX_FEATURE:
        j = int(largest.argmax())
        over = int((largest > MAX_FEATURE).sum())
        return [
            f"{key}: {of}, the largest |feature| is {float(largest[j]):.3g} (feature {j}; "
            f"{over} of the {d} features exceed {MAX_FEATURE:g}); features this large saturate "
            "the network and a study trains at chance: standardize each feature (subtract its "
            "mean, divide by its standard deviation)"
        ]
    return []


def check_batch_size(batch_size: int, n_train: int, *, owner: str = "batch_size") -> None:
    """Warn (:class:`DataWarning`) when ``batch_size`` exceeds the ``n_train`` training examples:
    every epoch is then one full batch, so larger values all train the same way.

    Pass the largest batch size a study can try (a fixed value, or a dimension's upper bound).
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int | np.integer):
        raise InvalidValue(owner, f"must be an int >= 1, {got(batch_size)}")
    if batch_size < 1:
        raise InvalidValue(owner, f"must be an int >= 1, {got(batch_size)}")
    if batch_size > n_train:
        _warn(
            f"{owner}: {batch_size} is larger than the {n_train} training examples; "
            f"each epoch is one full batch of {n_train}"
        )


def _warn(message: str) -> None:
    # stacklevel 3: the line that called split_for_study / check_batch_size
    warnings.warn(message, DataWarning, stacklevel=3)


def _classes(ks: np.ndarray, names: tuple[str, ...]) -> str:
    quoted = ", ".join(repr(names[k]) for k in ks)
    return f"class {quoted}" if len(ks) == 1 else f"classes {quoted}"


def _examples(count: int) -> str:
    return "1 example" if count == 1 else f"{count} examples"
