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

from caviar.core.constraints import Alias, AnyOf, Record, integer

#: the rules of a schedule's two numbers
MIN_EPOCHS = integer(1)
ETA = integer(2)


@dataclass(frozen=True)
class Halving:
    """The rung schedule: ``min_epochs * eta**k`` epochs, k = 0, 1, ... (its defaults, stated
    here, are those of ``search.halving = true`` and of ``caviar tune --halving``)."""

    min_epochs: int = 1
    eta: int = 3

    def __post_init__(self) -> None:
        MIN_EPOCHS.check(self.min_epochs, "search.halving.min_epochs")
        ETA.check(self.eta, "search.halving.eta")

    @classmethod
    def from_config(cls, value: Any) -> Halving | None:
        """``None``/``false`` (off), ``true`` (defaults), or a table of min_epochs and eta (a
        key left out takes its default), checked by :data:`HALVING`."""
        table = HALVING.check(value, "search.halving")
        return None if table is None else cls(**table)

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


_DEFAULTS = Halving().to_config()

#: ``search.halving``: off (false, or nothing), on with the defaults (true), or a table of
#: min_epochs and eta, a key left out taking its default; read as that table, or None when off
HALVING = AnyOf(
    (
        Alias(True, _DEFAULTS),
        Alias(False, None),
        Record({"min_epochs": MIN_EPOCHS, "eta": ETA}, _DEFAULTS),
    ),
    words="true, false or a table {"
    + ", ".join(f"{key} = {value}" for key, value in _DEFAULTS.items())
    + "}",
    nullable=True,
)
