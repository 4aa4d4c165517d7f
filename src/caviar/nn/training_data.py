"""The arrays a population trains on."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from caviar.core.errors import InvalidValue


@dataclass(frozen=True)
class TrainingData:
    """Training and validation arrays: x float [N, D], y integer labels [N] in 0..C-1."""

    x_train: Tensor
    y_train: Tensor
    x_val: Tensor | None = None
    y_val: Tensor | None = None
    n_classes: int = 0

    @classmethod
    def from_arrays(
        cls,
        x_train: np.ndarray | Tensor,
        y_train: np.ndarray | Tensor,
        x_val: np.ndarray | Tensor | None = None,
        y_val: np.ndarray | Tensor | None = None,
        n_classes: int | None = None,
    ) -> TrainingData:
        def tensor(a: np.ndarray | Tensor, dtype: torch.dtype) -> Tensor:
            return torch.as_tensor(np.asarray(a) if not isinstance(a, Tensor) else a).to(dtype)

        xt, yt = tensor(x_train, torch.float64), tensor(y_train, torch.int64)
        xv = None if x_val is None else tensor(x_val, torch.float64)
        yv = None if y_val is None else tensor(y_val, torch.int64)
        if xt.ndim != 2 or yt.shape != (xt.shape[0],):
            raise InvalidValue(
                "TrainingData",
                f"x_train must be [N, D] and y_train [N], got {tuple(xt.shape)} "
                f"and {tuple(yt.shape)}",
            )
        if (xv is None) != (yv is None):
            raise InvalidValue("TrainingData", "x_val and y_val go together: give both or neither")
        labels = [yt] + ([yv] if yv is not None else [])
        c = n_classes or int(max(int(t.max()) for t in labels if t.numel()) + 1)
        return cls(xt, yt, xv, yv, c)

    @property
    def n_inputs(self) -> int:
        return int(self.x_train.shape[1])


def member_batches(
    x: Tensor, y: Tensor, index: dict[int, Tensor], epochs: list[int]
) -> tuple[list[Tensor], Tensor]:
    """Every member's mini-batch, member p at epoch ``epochs[p]`` reading the examples
    ``index[epoch]`` of ``x`` and ``y``: inputs [B, D] per member (members at one epoch share
    one tensor) and labels [B] when all are at one epoch, else [P, B]."""
    xs_by_epoch = {e: x[i] for e, i in index.items()}
    xs = [xs_by_epoch[e] for e in epochs]
    if len(index) == 1:
        return xs, y[index[epochs[0]]]
    return xs, torch.stack([y[index[e]] for e in epochs])
