"""The data a user's module trains on: examples of any shape ``[N, ...]`` and integer class
labels, the validation split carved from the training examples (stratified, as caviar's
studies do: :func:`caviar.data.splits.split_validation`), the test set kept apart.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from caviar.core.errors import InvalidValue, got
from caviar.data.splits import Split, split_validation


@dataclass(frozen=True)
class ModuleData:
    """Training and validation tensors on the device the members train on: ``x`` in the
    study's dtype, ``y`` int64 class labels in ``[0, n_classes)``."""

    x_train: Tensor
    y_train: Tensor
    x_val: Tensor
    y_val: Tensor
    n_classes: int

    @classmethod
    def from_split(
        cls, split: Split, n_classes: int, *, device: torch.device, dtype: torch.dtype
    ) -> ModuleData:
        def x(a: np.ndarray) -> Tensor:
            # integer examples (token ids for an embedding) stay integers
            kind = torch.int64 if np.issubdtype(a.dtype, np.integer) else dtype
            return torch.as_tensor(np.ascontiguousarray(a)).to(device=device, dtype=kind)

        def y(a: np.ndarray) -> Tensor:
            return torch.as_tensor(np.ascontiguousarray(a)).to(device=device, dtype=torch.int64)

        return cls(x(split.x_train), y(split.y_train), x(split.x_val), y(split.y_val), n_classes)

    @property
    def example_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])


def as_arrays(data: Any, owner: str) -> tuple[np.ndarray, np.ndarray]:
    """``(x, y)`` as numpy arrays from a pair of tensors or arrays, or a ``TensorDataset`` of
    two tensors; y must hold integer class labels from 0."""
    tensors: Sequence[Any]
    if isinstance(data, torch.utils.data.TensorDataset):
        tensors = data.tensors
    elif isinstance(data, tuple | list):
        tensors = data
    else:
        raise InvalidValue(
            owner, f"must be (x, y) tensors or arrays, or a TensorDataset of two, {got(data)}"
        )
    if len(tensors) != 2:
        raise InvalidValue(owner, f"must hold two parts, x and y, got {len(tensors)}")
    x, y = (t.detach().cpu().numpy() if isinstance(t, Tensor) else np.asarray(t) for t in tensors)
    if x.ndim < 1 or y.ndim != 1 or len(x) != len(y):
        raise InvalidValue(
            owner,
            f"x must be [N, ...] and y [N] with the same N, got shapes {list(x.shape)} "
            f"and {list(y.shape)}",
        )
    if not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
        raise InvalidValue(owner, f"x must hold real numbers, got dtype {x.dtype}")
    if not np.all(np.isfinite(x)):
        raise InvalidValue(owner, "x holds NaN or infinite values; the model cannot learn them")
    if np.issubdtype(y.dtype, np.floating) and np.all(np.mod(y, 1) == 0):
        y = y.astype(np.int64)
    if not np.issubdtype(y.dtype, np.integer) or (len(y) and y.min() < 0):
        shown = y[:5].tolist() if len(y) else []
        raise InvalidValue(
            owner, f"y must be integer class labels 0, 1, ..., got dtype {y.dtype}: {shown}"
        )
    return x, y.astype(np.int64)


@dataclass(frozen=True)
class PreparedModuleData:
    """A study's split of the user's data, and its test set (None: none given)."""

    split: Split
    n_classes: int
    test: tuple[np.ndarray, np.ndarray] | None


def prepare(
    train: Any, test: Any = None, *, validation: float = 0.2, seed: int = 0
) -> PreparedModuleData:
    """Cut the validation split from ``train``; the classes are those either part holds."""
    x, y = as_arrays(train, "data")
    held = None if test is None else as_arrays(test, "test_data")
    if held is not None and held[0].shape[1:] != x.shape[1:]:
        raise InvalidValue(
            "test_data",
            f"examples must have the training examples' shape {list(x.shape[1:])}, "
            f"got {list(held[0].shape[1:])}",
        )
    n_classes = int(max(y.max(), -1 if held is None else held[1].max())) + 1
    if n_classes < 2:
        raise InvalidValue("data", f"y must hold at least 2 classes, got {n_classes}")
    try:
        split = split_validation(x, y, validation, seed=seed)
    except InvalidValue as e:
        raise e.at("validation") from None
    return PreparedModuleData(split, n_classes, held)
