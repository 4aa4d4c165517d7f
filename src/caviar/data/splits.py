"""A validation set carved from the training data: stratified, seeded, and identified by a hash.

Hyperparameters are chosen on validation data, never on the test set, so every trial of a study
must see the same validation examples: the split is a pure function of (labels, fraction, seed),
and its ``hash`` goes into the study record so that a later run can tell it used the same one.

Stratification: class ``c`` with ``n_c`` examples contributes ``floor(fraction * n_c)`` or one
more, the extra ones going to the classes with the largest remainders (Hamilton's method), so the
total is exactly ``round(fraction * N)`` (Python's ``round``) and every class is within one
example of its exact share. Classes the extra example would empty of training data come last.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from caviar.core.constraints import FRACTION
from caviar.core.errors import InvalidValue
from caviar.core.seeding import SPLIT, check_seed, generator


@dataclass(frozen=True, eq=False)
class Split:
    """Training and validation parts of a training set, with the indices that made them.

    ``train_indices`` and ``val_indices`` are sorted and index the array that was split; the
    parts keep its order (shuffling per epoch is the trainer's business). ``hash`` is the sha256
    hex digest of ``"caviar-split-v1;n=<N>;seed=<seed>;val=<i1>,<i2>,..."`` over the sorted
    validation indices.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    train_indices: np.ndarray
    val_indices: np.ndarray
    seed: int
    fraction: float
    hash: str


def split_validation(
    x: ArrayLike, y: ArrayLike, fraction: float = 0.2, seed: int = 0, stratify: bool = True
) -> Split:
    """Hold out ``round(fraction * N)`` examples of ``(x, y)`` for validation, chosen at random
    with ``seed`` and (with ``stratify``) in proportion to each class."""
    x, y = np.asarray(x), np.asarray(y)
    owner = "split_validation"
    if y.ndim != 1 or x.ndim < 1 or len(x) != len(y):
        raise InvalidValue(
            owner,
            f"x must be [N, ...] and y [N] with the same N, "
            f"got shapes {list(x.shape)} and {list(y.shape)}",
        )
    fraction = FRACTION.check(python_scalar(fraction), f"{owner}.fraction")
    seed = check_seed(owner, seed)
    n = len(y)
    n_val = round(fraction * n)
    if not 1 <= n_val <= n - 1:
        raise InvalidValue(
            owner,
            f"each part must keep at least one example, got {n_val} of {n} examples "
            f"for validation at fraction {fraction}",
        )
    rng = generator(int(seed), SPLIT)
    if not stratify:
        chosen = rng.permutation(n)[:n_val]
    else:
        chosen = _stratified_choice(y, fraction, n_val, rng)
    val = np.sort(chosen).astype(np.int64)
    in_val = np.zeros(n, dtype=bool)
    in_val[val] = True
    train = np.flatnonzero(~in_val).astype(np.int64)
    text = f"caviar-split-v1;n={n};seed={int(seed)};val=" + ",".join(map(str, val.tolist()))
    return Split(
        x_train=x[train],
        y_train=y[train],
        x_val=x[val],
        y_val=y[val],
        train_indices=train,
        val_indices=val,
        seed=int(seed),
        fraction=float(fraction),
        hash=hashlib.sha256(text.encode()).hexdigest(),
    )


def class_quotas(counts: np.ndarray, fraction: float, total: int) -> np.ndarray:
    """How many of each class's ``counts`` to hold out so that the sum is ``total``.

    Hamilton's method: everyone gets the floor of their exact share, the ``total - sum(floors)``
    left over go one each to the largest remainders (ties: lower class first), except that a
    class which would lose its last training example is served after all others.
    """
    share = fraction * counts.astype(np.float64)  # (K,)
    quota = np.floor(share + 1e-9).astype(np.int64)
    remainder = np.clip(share - quota, 0.0, None)
    extra = total - int(quota.sum())
    empties = quota + 1 >= counts
    # lexsort: last key is primary -> (empties first False, then larger remainder, then class)
    order = np.lexsort((np.arange(len(counts)), -remainder, empties))
    quota[order[:extra]] += 1
    return quota


def _stratified_choice(
    y: np.ndarray, fraction: float, n_val: int, rng: np.random.Generator
) -> np.ndarray:
    classes, inverse, counts = np.unique(y, return_inverse=True, return_counts=True)
    quota = class_quotas(counts, fraction, n_val)
    picks = []
    for k in range(len(classes)):  # sorted classes, so the draws are in a fixed order
        members = np.flatnonzero(inverse == k)
        picks.append(rng.permutation(members)[: quota[k]])
    return np.concatenate(picks)


def python_scalar(value: Any) -> Any:
    """A numpy scalar as the Python number it holds (the validator knows Python's types)."""
    return value.item() if isinstance(value, np.generic) else value
