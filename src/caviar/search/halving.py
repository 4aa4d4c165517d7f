"""Successive halving in a pool: stop the members that fall behind at a rung, hand their slot on.

Asynchronous successive halving (ASHA, Li et al. 2020), in its stopping form: rungs sit at
``min_epochs * eta**k`` epochs. When a member reaches a rung, its objective there is recorded,
and it goes on only if it is among the best ``max(1, n // eta)`` of the ``n`` values recorded at
that rung so far (itself included); otherwise it is pruned and its slot goes to the next trial.
A member is never held back waiting for others, so slots never idle.

The decisions depend on the order in which members reach a rung. The pool delivers a round's
epochs in trial-number order, and a round is one epoch for every member in the pool, so with the
same seed and pool size the decisions are the same whatever the grouping or chunking; a
different pool size changes which members meet at a rung, and so the decisions.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from caviar.core.constraints import integer
from caviar.core.errors import InvalidValue, got


@dataclass(frozen=True)
class Halving:
    """The rung schedule: ``min_epochs * eta**k`` epochs, k = 0, 1, ..."""

    min_epochs: int = 1
    eta: int = 3

    def __post_init__(self) -> None:
        integer(1).check(self.min_epochs, "search.halving.min_epochs")
        integer(2).check(self.eta, "search.halving.eta")

    @classmethod
    def from_config(cls, value: Any) -> Halving | None:
        """``None``/``false`` (off), ``true`` (defaults), or a table of min_epochs and eta."""
        if value is None or value is False:
            return None
        if value is True:
            return cls()
        if not isinstance(value, dict):
            raise InvalidValue(
                "search.halving",
                f"must be true, false or a table {{min_epochs = 1, eta = 3}}, {got(value)}",
            )
        unknown = sorted(map(str, set(value) - {"min_epochs", "eta"}))
        if unknown:
            raise InvalidValue(
                f"search.halving.{unknown[0]}", "unknown key; halving takes ['eta', 'min_epochs']"
            )
        return cls(**value)

    def to_config(self) -> dict[str, int]:
        return {"min_epochs": self.min_epochs, "eta": self.eta}

    def is_rung(self, epoch: int) -> bool:
        """Whether ``epoch`` (epochs done) is a rung."""
        rung = self.min_epochs
        while rung < epoch:
            rung *= self.eta
        return rung == epoch

    def rungs(self, max_epochs: int) -> list[int]:
        """The rungs below ``max_epochs`` (a member at its last epoch is complete, not judged)."""
        out, rung = [], self.min_epochs
        while rung < max_epochs:
            out.append(rung)
            rung *= self.eta
        return out


@dataclass
class Rungs:
    """The values recorded at each rung, and the decisions they give."""

    halving: Halving
    values: dict[int, list[float]] = field(default_factory=dict)  # rung -> sorted values

    def record(self, rung: int, value: float) -> None:
        bisect.insort(self.values.setdefault(rung, []), value)

    def keep(self, rung: int, value: float) -> bool:
        """Record ``value`` at ``rung``; whether the member goes on (higher is better)."""
        self.record(rung, value)
        recorded = self.values[rung]
        k = max(1, len(recorded) // self.halving.eta)
        return value >= recorded[-k]

    def replay(self, curves: Iterable[tuple[list[float], int]]) -> None:
        """Record the rung values of trials run before (their per-epoch objective values and
        their planned epochs), so a continued study judges against them too."""
        for values, epochs in curves:
            for rung in self.halving.rungs(epochs):
                if rung <= len(values):
                    self.record(rung, values[rung - 1])
