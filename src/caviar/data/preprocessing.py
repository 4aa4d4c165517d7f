"""What was done to raw examples before training, so a model can say it and do it again.

A dataset's examples reach the engine flattened to ``[N, D]`` and scaled: MNIST's pixels
divided by 255, the embedded digits' by 16; a ``.npz`` or ``.csv`` file's values as the file
gives them. A kept model records this (:class:`Preprocessing`), so ``predict(x, raw=True)``
applies it to raw examples, and ``predict(x)`` refuses inputs outside the range it was
trained on instead of answering at chance (the digits' raw 0..16 pixels gave 0.55 accuracy).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from caviar.core.errors import InvalidValue


@dataclass(frozen=True)
class Preprocessing:
    """Raw examples of ``input_shape`` (``[28, 28]``) are flattened to ``D`` features and
    divided by ``divide_by``; ``raw_range`` is what a raw value may be (``(0, 255)`` for
    pixels), None where the data came as numbers to use as they are."""

    input_shape: tuple[int, ...]
    divide_by: float = 1.0
    raw_range: tuple[float, float] | None = None
    #: what the raw values are, in words ("pixels", "values")
    what: str = "values"

    @property
    def n_features(self) -> int:
        return math.prod(self.input_shape)

    @property
    def trained_range(self) -> tuple[float, float] | None:
        """The range of the inputs the model was trained on (``(0, 1)`` for pixels / 255)."""
        if self.raw_range is None:
            return None
        low, high = self.raw_range
        return (low / self.divide_by, high / self.divide_by)

    def words(self) -> str:
        """``"pixels / 255, [28, 28] flattened to 784 features"``, or ``"none: ..."``."""
        steps = []
        if self.divide_by != 1.0:
            steps.append(f"{self.what} / {self.divide_by:g}")
        if len(self.input_shape) > 1:
            shape = list(self.input_shape)
            steps.append(f"{shape} flattened to {self.n_features} features")
        if not steps:
            return "none: the model takes the values as the data gave them"
        return ", ".join(steps)

    def apply(self, raw: Tensor, owner: str = "predict") -> Tensor:
        """``raw`` examples ``[B, *input_shape]`` or ``[B, D]`` as the model's inputs
        ``[B, D]`` (float), or an error naming the shapes allowed."""
        shapes = [[*self.input_shape]] + ([[self.n_features]] if len(self.input_shape) > 1 else [])
        if raw.ndim < 2 or list(raw.shape[1:]) not in shapes:
            allowed = " or ".join(str(["B", *s]) for s in shapes)
            raise InvalidValue(owner, f"raw examples must be {allowed}, got {list(raw.shape)}")
        x = raw.reshape(len(raw), self.n_features)
        x = x.to(torch.float64 if x.dtype == torch.float64 else torch.float32)
        return x / self.divide_by if self.divide_by != 1.0 else x

    def to_dict(self) -> dict[str, Any]:
        return {
            "input_shape": list(self.input_shape),
            "divide_by": self.divide_by,
            "raw_range": None if self.raw_range is None else list(self.raw_range),
            "what": self.what,
            "words": self.words(),
        }

    @classmethod
    def from_dict(cls, data: Any) -> Preprocessing | None:
        """Read back :meth:`to_dict`'s form; None for anything else (a model kept before
        preprocessing was recorded)."""
        if not isinstance(data, dict):
            return None
        try:
            span = data.get("raw_range")
            return cls(
                input_shape=tuple(int(s) for s in data["input_shape"]),
                divide_by=float(data["divide_by"]),
                raw_range=None if span is None else (float(span[0]), float(span[1])),
                what=str(data.get("what", "values")),
            )
        except (KeyError, TypeError, ValueError, IndexError):
            return None


def as_given(n_features: int) -> Preprocessing:
    """Numbers used as they are (a ``.npz`` or ``.csv`` file, an array given in Python)."""
    return Preprocessing(input_shape=(n_features,))


def pixels(input_shape: tuple[int, ...], maximum: float) -> Preprocessing:
    """Image pixels in ``[0, maximum]``, divided by ``maximum`` and flattened."""
    return Preprocessing(input_shape, float(maximum), (0.0, float(maximum)), "pixels")
