"""Grid search, kept to compare with random search and to show why the course avoids it.

With ``k`` points per dimension and ``d`` dimensions a grid spends ``k**d`` trials yet tries only
``k`` distinct values of each hyperparameter; random search tries a new value of every one in
every trial. The sampler says so with a :class:`GridWarning` when a study is created.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

from caviar.core.constraints import AnyOf, TableOf, integer
from caviar.core.errors import InvalidValue
from caviar.core.records import Direction, FrozenTrial
from caviar.samplers.base import Proposal, Sampler
from caviar.space import SearchSpace

#: points per searched dimension: one count for all, or a table of one count per name (the
#: rule the study config's ``search.points_per_dim`` shares)
POINTS = integer(1)
POINTS_PER_DIM = AnyOf(
    (POINTS, TableOf(POINTS)),
    words="an integer in [1, inf), or a table of one such integer per searched name",
)


class GridWarning(UserWarning):
    """A grid gives some dimension few distinct values."""


class GridSampler(Sampler):
    """The i-th trial is the i-th point of the grid, decoded with divmod (last axis fastest)."""

    name = "grid"

    def __init__(self, points_per_dim: int | Mapping[str, int] = 5) -> None:
        self.points_per_dim: int | dict[str, int] = POINTS_PER_DIM.check(
            points_per_dim, "GridSampler.points_per_dim"
        )

    def __repr__(self) -> str:
        return f"GridSampler(points_per_dim={self.points_per_dim!r})"

    def _requested(self, space: SearchSpace, name: str) -> int:
        if isinstance(self.points_per_dim, dict):
            return self.points_per_dim[name]
        return self.points_per_dim

    def axes(self, space: SearchSpace) -> list[tuple[float, ...]]:
        """The grid's unit coordinates on each free axis."""
        self.check_names(space)
        return [space[name].grid_units(self._requested(space, name)) for name in space.free_names]

    def check_names(self, space: SearchSpace) -> None:
        """Points given by name must name each searched dimension once."""
        if isinstance(self.points_per_dim, dict):
            unknown = sorted(set(self.points_per_dim) - set(space.free_names))
            missing = [n for n in space.free_names if n not in self.points_per_dim]
            if unknown or missing:
                raise InvalidValue(
                    "GridSampler.points_per_dim",
                    f"must name each searched dimension {list(space.free_names)} "
                    f"once; unknown {unknown}, missing {missing}",
                )

    def capacity(self, space: SearchSpace) -> int:
        return math.prod(len(axis) for axis in self.axes(space))

    def check(self, space: SearchSpace) -> None:
        axes = self.axes(space)
        total = math.prod(len(axis) for axis in axes)
        for name, axis in zip(space.free_names, axes, strict=True):
            requested = self._requested(space, name)
            if len(axis) < requested:
                warnings.warn(
                    f"grid: {name!r} has only {len(axis)} distinct values, not {requested}",
                    GridWarning,
                    stacklevel=3,
                )
            if total > 1 and len(axis) < total:
                warnings.warn(
                    f"grid: {total} trials try only {len(axis)} distinct values of {name!r}; "
                    f"random search would try {total}",
                    GridWarning,
                    stacklevel=3,
                )

    def propose(
        self,
        space: SearchSpace,
        number: int,
        history: Sequence[FrozenTrial],
        direction: Direction,
    ) -> Proposal | None:
        axes = self.axes(space)
        if number >= math.prod(len(axis) for axis in axes):
            return None
        unit = []
        rest = number
        for axis in reversed(axes):
            rest, i = divmod(rest, len(axis))
            unit.append(axis[i])
        return Proposal(tuple(reversed(unit)), {"grid_index": number})

    def to_config(self) -> dict[str, Any]:
        return {"name": self.name, "points_per_dim": self.points_per_dim}
