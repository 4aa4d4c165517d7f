"""The sampler interface: propose a point of the unit cube for trial number ``n``.

Samplers never see scales or value types: the search space maps their unit points to values.
A proposal is a pure function of (sampler seed, trial number, the finished trials it depends on),
so the same seed gives the same configurations whatever the number of workers and whatever the
order in which results come back.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from caviar.core.errors import InvalidValue
from caviar.core.records import Direction, FrozenTrial
from caviar.space import SearchSpace


@dataclass(frozen=True)
class Proposal:
    """A unit-cube point for one trial, with attributes to record on it (e.g. its round)."""

    unit: tuple[float, ...]
    attrs: Mapping[str, Any] = field(default_factory=dict)


class Sampler(ABC):
    """Proposes unit-cube points. Subclasses register under ``name`` for ``from_config``."""

    name: ClassVar[str]
    registry: ClassVar[dict[str, type[Sampler]]] = {}
    #: whether :meth:`learn_from` uses the trials it is given (a model-based sampler)
    learns: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "name" in cls.__dict__:
            Sampler.registry[cls.name] = cls

    @abstractmethod
    def propose(
        self,
        space: SearchSpace,
        number: int,
        history: Sequence[FrozenTrial],
        direction: Direction,
    ) -> Proposal | None:
        """The point for trial ``number``, or None if none can be proposed now.

        None means the sampler is exhausted, or waits for trials in ``history`` to finish.
        """

    def learn_from(self, trials: Sequence[FrozenTrial]) -> None:  # noqa: B027 -- most ignore it
        """Trials of another study (a warm start), to count as finished before the study's
        own; a sampler that does not learn from trials ignores them."""

    def check(self, space: SearchSpace) -> None:  # noqa: B027 -- most samplers accept any space
        """Validate against a space when a study is created; may warn."""

    def capacity(self, space: SearchSpace) -> int | None:
        """How many trials the sampler can propose in all, or None for no limit."""
        return None

    @abstractmethod
    def to_config(self) -> dict[str, Any]:
        """``{"name": ..., **parameters}``, enough to rebuild the sampler."""

    @staticmethod
    def from_config(config: Mapping[str, Any]) -> Sampler:
        params = dict(config)
        name = params.pop("name", None)
        if name not in Sampler.registry:
            raise InvalidValue(
                "sampler", f"name must be one of {sorted(Sampler.registry)}, got {name!r}"
            )
        try:
            return Sampler.registry[name](**params)
        except TypeError as e:  # an unknown or missing parameter
            raise InvalidValue("sampler", f"bad parameters for {name!r}: {e}") from None
