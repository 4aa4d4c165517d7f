"""A classification dataset as the trainer sees it: flat float32 features, int64 class labels."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from caviar.core.errors import InvalidValue, got
from caviar.data.preprocessing import Preprocessing, as_given


@dataclass(frozen=True, eq=False)
class Dataset:
    """Train and test arrays of one classification problem, checked on construction.

    ``x_*`` are float32 ``[N, D]`` (images flattened, pixels scaled to [0, 1]), ``y_*`` int64
    ``[N]`` with values in ``[0, n_classes)``. ``class_names[k]`` is what label ``k`` stands for
    (default ``"0"``, ``"1"``, ...), ``input_shape`` the shape of one example before flattening
    (default ``(D,)``), and ``source`` says in words where the data came from and how it was cut,
    so a study can record it.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int
    source: str
    class_names: tuple[str, ...] = field(default=())
    input_shape: tuple[int, ...] = field(default=())
    #: what was done to the raw examples (default: nothing, the values as given)
    preprocessing: Preprocessing | None = field(default=None)

    def __post_init__(self) -> None:
        owner = f"Dataset {self.name!r}"
        if isinstance(self.n_classes, bool) or not isinstance(self.n_classes, int | np.integer):
            raise InvalidValue(owner, f"n_classes must be an int, {got(self.n_classes)}")
        if self.n_classes < 2:
            raise InvalidValue(owner, f"n_classes must be >= 2, {got(self.n_classes)}")
        for part in ("train", "test"):
            x, y = getattr(self, f"x_{part}"), getattr(self, f"y_{part}")
            if not isinstance(x, np.ndarray) or x.dtype != np.float32 or x.ndim != 2:
                raise InvalidValue(owner, f"x_{part} must be a float32 [N, D] array, {_kind(x)}")
            if not isinstance(y, np.ndarray) or y.dtype != np.int64 or y.shape != x.shape[:1]:
                raise InvalidValue(owner, f"y_{part} must be an int64 [{len(x)}] array, {_kind(y)}")
            if len(y) == 0:
                raise InvalidValue(owner, f"the {part} set must not be empty, got 0 examples")
            if y.min() < 0 or y.max() >= self.n_classes:
                raise InvalidValue(
                    owner,
                    f"y_{part} must lie in [0, {self.n_classes - 1}], "
                    f"got values in [{y.min()}, {y.max()}]",
                )
        n_features = int(self.x_train.shape[1])
        if self.x_test.shape[1] != n_features:
            raise InvalidValue(
                owner,
                f"x_test must have {n_features} features like x_train, got {self.x_test.shape[1]}",
            )
        names = self.class_names or tuple(str(k) for k in range(self.n_classes))
        if len(names) != self.n_classes:
            raise InvalidValue(
                owner, f"class_names must have {self.n_classes} entries, got {len(names)}"
            )
        shape = self.input_shape or (n_features,)
        if math.prod(shape) != n_features:
            raise InvalidValue(
                owner, f"input_shape must hold {n_features} features, {got(tuple(shape))}"
            )
        object.__setattr__(self, "n_classes", int(self.n_classes))
        object.__setattr__(self, "class_names", tuple(str(s) for s in names))
        object.__setattr__(self, "input_shape", tuple(int(s) for s in shape))
        if self.preprocessing is None:
            object.__setattr__(self, "preprocessing", as_given(n_features))
        elif self.preprocessing.n_features != n_features:
            raise InvalidValue(
                owner,
                f"preprocessing must give {n_features} features, got {self.preprocessing}",
            )

    @property
    def n_features(self) -> int:
        """``D``, the length of one flattened example."""
        return int(self.x_train.shape[1])

    def head(self, train_size: int | None = None, test_size: int | None = None) -> Dataset:
        """The first ``train_size`` training and ``test_size`` test examples (None: all of them).

        First, not random, as the textbooks do it ("the first 500 MNIST training images"): the
        same size always means the same examples. Sizes must lie in [1, available].
        """
        n_train = _check_size("train_size", train_size, len(self.y_train), self.name)
        n_test = _check_size("test_size", test_size, len(self.y_test), self.name)
        if n_train == len(self.y_train) and n_test == len(self.y_test):
            return self
        cuts = [
            f"first {n} {part} examples"
            for part, n, full in (("train", n_train, self.y_train), ("test", n_test, self.y_test))
            if n < len(full)
        ]
        note = "; " + " and ".join(cuts)
        # Copies, so that a small head does not keep the whole dataset alive.
        return replace(
            self,
            x_train=self.x_train[:n_train].copy(),
            y_train=self.y_train[:n_train].copy(),
            x_test=self.x_test[:n_test].copy(),
            y_test=self.y_test[:n_test].copy(),
            source=self.source + note,
        )


def _check_size(what: str, size: int | None, available: int, name: str) -> int:
    if size is None:
        return available
    if isinstance(size, bool) or not isinstance(size, int | np.integer):
        raise InvalidValue(f"Dataset {name!r}", f"{what} must be an int, {got(size)}")
    if not 1 <= size <= available:
        raise InvalidValue(f"Dataset {name!r}", f"{what} must be in [1, {available}], {got(size)}")
    return int(size)


def _kind(a: object) -> str:
    if isinstance(a, np.ndarray):
        return f"got {a.dtype} of shape {list(a.shape)}"
    return f"got {type(a).__name__}"
