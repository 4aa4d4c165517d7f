"""A user's model's search space: the keys caviar reads itself (``epochs``, ``batch_size``, the
optimizer's and the schedule's: :mod:`caviar.own.optim`) and the rest, which are the builder's.
Its defaults are stated once here and in :mod:`caviar.own.optim`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from caviar.core.constraints import integer
from caviar.core.errors import InvalidValue, got
from caviar.own.settings import split_params
from caviar.space import Fixed, SearchSpace

#: what caviar's training reads that is not the optimizer's: trained epochs and mini-batch size
TRAINING_DEFAULTS: dict[str, int] = {"epochs": 5, "batch_size": 64}
_POSITIVE = integer(1)


@dataclass(frozen=True)
class MemberSettings:
    """A trial's hyperparameters, split: how caviar trains it, and what its builder reads."""

    epochs: int
    batch_size: int
    optimizer: str
    settings: dict[str, Any]  # the optimizer's and schedule's, defaults filled in
    builder: dict[str, Any]  # the rest: the builder's

    @classmethod
    def from_params(cls, params: Mapping[str, Any], owner: str = "space") -> MemberSettings:
        values = {**TRAINING_DEFAULTS, **params}
        epochs = _POSITIVE.check(values.pop("epochs"), f"{owner}.epochs")
        batch_size = _POSITIVE.check(values.pop("batch_size"), f"{owner}.batch_size")
        try:
            settings, rest = split_params(values)
        except InvalidValue as e:
            raise e.at(f"{owner}.{e.owner}") from None
        return cls(int(epochs), int(batch_size), str(settings["optimizer"]), settings, rest)


def module_space(table: Any) -> SearchSpace:
    """The space of a user's model: ``table`` (the config's form, or a SearchSpace's), with
    ``epochs`` and ``batch_size`` fixed at their defaults when not given, and the keys caviar
    reads checked at the space's corners (a bad learning rate fails here, not in trial 40)."""
    if isinstance(table, SearchSpace):
        table = table.to_config()
    if not isinstance(table, Mapping):
        raise InvalidValue("space", f"must be a table of hyperparameters, {got(table)}")
    given = SearchSpace(table, owner="space")
    merged = {k: Fixed(v).to_config() for k, v in TRAINING_DEFAULTS.items()}
    merged.update(given.to_config())
    space = SearchSpace(merged, owner="space")
    for u in (0.0, 0.5, 1.0):
        MemberSettings.from_params(space.from_unit([u] * space.n_free))
    return space
