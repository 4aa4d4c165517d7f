"""SearchSpace: an ordered, immutable mapping of hyperparameter names to dimensions.

The space owns the map between a configuration (``{"lr": 3e-3, "hidden_units": 80}``) and a point
of the unit cube with one coordinate per searched (non-fixed) dimension, in declaration order.
It reads and writes the config form that a TOML/YAML table gives, and JSON.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from caviar.core.errors import InvalidValue, got
from caviar.space.dimensions import Dimension, dimension_from_config


class SearchSpace(Mapping[str, Dimension]):
    """Ordered ``name -> Dimension``. Values may be given as dimensions or in config form."""

    __slots__ = ("_dims", "_free")

    def __init__(self, dimensions: Mapping[str, Any], *, owner: str = "space") -> None:
        if not isinstance(dimensions, Mapping):
            raise InvalidValue(owner, f"must be a mapping of name -> dimension, {got(dimensions)}")
        dims: dict[str, Dimension] = {}
        for name, spec in dimensions.items():
            if not isinstance(name, str) or not name.isidentifier():
                raise InvalidValue(owner, f"names must be identifiers, {got(name)}")
            try:
                dims[name] = dimension_from_config(spec)
            except InvalidValue as e:
                raise e.at(f"{owner}.{name}") from None
        self._dims = dims
        self._free = tuple(name for name, dim in dims.items() if dim.n_free)

    # -- Mapping ---------------------------------------------------------------------------
    def __getitem__(self, name: str) -> Dimension:
        return self._dims[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._dims)

    def __len__(self) -> int:
        return len(self._dims)

    def __eq__(self, other: object) -> bool:
        # order counts: it names the unit cube's axes (and dict equality would ignore it,
        # disagreeing with __hash__)
        return isinstance(other, SearchSpace) and list(self._dims.items()) == list(
            other._dims.items()
        )

    def __hash__(self) -> int:
        return hash(tuple(self._dims.items()))

    def __repr__(self) -> str:
        inner = ", ".join(f"{k!r}: {v!r}" for k, v in self._dims.items())
        return f"SearchSpace({{{inner}}})"

    # -- the unit cube -----------------------------------------------------------------------
    @property
    def free_names(self) -> tuple[str, ...]:
        """Names of the searched dimensions: the unit cube's axes, in order."""
        return self._free

    @property
    def n_free(self) -> int:
        """The unit cube's dimension."""
        return len(self._free)

    def from_unit(self, unit: Sequence[float]) -> dict[str, Any]:
        """The configuration at a point of the unit cube (fixed values included)."""
        if len(unit) != self.n_free:
            raise InvalidValue(
                "SearchSpace", f"a unit point needs {self.n_free} coordinates, got {len(unit)}"
            )
        coords = dict(zip(self._free, unit, strict=True))
        return {name: dim.from_unit(coords.get(name, 0.5)) for name, dim in self._dims.items()}

    def to_unit(self, params: Mapping[str, Any]) -> tuple[float, ...]:
        """The unit-cube point of a configuration (checked with :meth:`validate` first)."""
        self.validate(params)
        return tuple(self._dims[name].to_unit(params[name]) for name in self._free)

    def validate(self, params: Mapping[str, Any], *, owner: str = "params") -> None:
        """Raise :class:`InvalidValue` unless ``params`` holds exactly a legal value per name."""
        missing = [name for name in self._dims if name not in params]
        extra = [name for name in params if name not in self._dims]
        if missing or extra:
            raise InvalidValue(
                owner,
                f"names must match the space {list(self._dims)}; missing {missing}, "
                f"unknown {extra}",
            )
        for name, dim in self._dims.items():
            dim.validate(params[name], f"{owner}.{name}")

    # -- config and JSON ---------------------------------------------------------------------
    def to_config(self) -> dict[str, Any]:
        return {name: dim.to_config() for name, dim in self._dims.items()}

    @classmethod
    def from_config(cls, mapping: Mapping[str, Any], *, owner: str = "space") -> SearchSpace:
        return cls(mapping, owner=owner)

    def to_json(self) -> str:
        return json.dumps(self.to_config())

    @classmethod
    def from_json(cls, text: str) -> SearchSpace:
        return cls(json.loads(text))
