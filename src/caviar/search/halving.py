"""Successive halving in a pool: stop the members that fall behind at a rung, hand their slot on.

Asynchronous successive halving (ASHA, Li et al. 2020), in its stopping form: rungs sit at
``min_epochs * eta**k`` epochs. When a member reaches a rung, its objective there is recorded,
and it goes on only if it is among the best ``max(1, n // eta)`` of the ``n`` values recorded at
that rung so far (itself included); otherwise it is pruned and its slot goes to the next trial.
A member is never held back waiting for others, so slots never idle.

With ``brackets = B`` (Hyperband's hedge, asynchronous as in Li et al.), bracket ``b`` starts its
rungs at ``min_epochs * eta**b``: bracket 0 judges earliest, the last may judge never (a plain
run to the end). An early rung that only measures noise then costs a bracket, not the search.
Each trial's bracket follows from its number alone; the brackets share the trials as Hyperband
shares its budget, ``eta**s / (s + 1)`` for a bracket with ``s`` rungs, so that each bracket
spends about the same epochs. A bracket judges its members among themselves.

The decisions depend on the order in which members reach a rung. The pool delivers a round's
epochs in trial-number order, and a round is one epoch for every member in the pool, so with the
same seed and pool size the decisions are the same whatever the grouping or chunking; a
different pool size changes which members meet at a rung, and so the decisions.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from caviar.core.constraints import Alias, AnyOf, Record, integer

#: the rules of a schedule's numbers
MIN_EPOCHS = integer(1)
ETA = integer(2)
BRACKETS = integer(1)
#: the golden ratio's fraction: n * GOLDEN mod 1 spreads the trial numbers evenly over [0, 1)
GOLDEN = (math.sqrt(5.0) - 1.0) / 2.0


@dataclass(frozen=True)
class Halving:
    """The rung schedule: ``min_epochs * eta**k`` epochs, k = 0, 1, ... (its defaults, stated
    here, are those of ``search.halving = true`` and of ``caviar tune --halving``)."""

    min_epochs: int = 1
    eta: int = 3
    brackets: int = 1

    def __post_init__(self) -> None:
        MIN_EPOCHS.check(self.min_epochs, "search.halving.min_epochs")
        ETA.check(self.eta, "search.halving.eta")
        BRACKETS.check(self.brackets, "search.halving.brackets")

    @classmethod
    def from_config(cls, value: Any) -> Halving | None:
        """``None``/``false`` (off), ``true`` (defaults), or a table of min_epochs and eta (a
        key left out takes its default), checked by :data:`HALVING`."""
        table = HALVING.check(value, "search.halving")
        if table == AUTO:
            raise ValueError("'auto' is decided by the sampler and the space: see resolve()")
        return None if table is None else cls(**table)

    def to_config(self) -> dict[str, int]:
        """The table form (``brackets`` only when there are several: a one-bracket schedule
        reads and stores as it always has)."""
        table = {"min_epochs": self.min_epochs, "eta": self.eta}
        return table if self.brackets == 1 else {**table, "brackets": self.brackets}

    def first_rung(self, bracket: int = 0) -> int:
        return int(self.min_epochs * self.eta**bracket)

    def is_rung(self, epoch: int, bracket: int = 0) -> bool:
        """Whether ``epoch`` (epochs done) is a rung of ``bracket``."""
        rung = self.first_rung(bracket)
        while rung < epoch:
            rung *= self.eta
        return rung == epoch

    def rungs(self, max_epochs: int, bracket: int = 0) -> list[int]:
        """The rungs of ``bracket`` below ``max_epochs`` (a member at its last epoch is
        complete, not judged)."""
        out, rung = [], self.first_rung(bracket)
        while rung < max_epochs:
            out.append(rung)
            rung *= self.eta
        return out

    def shares(self, longest: int) -> list[float]:
        """Each bracket's share of the trials, for trials of at most ``longest`` epochs:
        Hyperband's ``eta**s / (s + 1)`` for a bracket of ``s`` rungs, normalized."""
        weights = [
            self.eta ** len(r) / (len(r) + 1)
            for r in (self.rungs(longest, b) for b in range(self.brackets))
        ]
        return [w / sum(weights) for w in weights]

    def bracket_of(self, number: int, longest: int) -> int:
        """Trial ``number``'s bracket: ``number * GOLDEN mod 1`` falls in its share (a sequence
        that spreads any run of consecutive numbers over the brackets in their shares)."""
        if self.brackets == 1:
            return 0
        u, edge = (number * GOLDEN) % 1.0, 0.0
        for bracket, share in enumerate(self.shares(longest)):
            edge += share
            if u < edge:
                return bracket
        return self.brackets - 1


@dataclass
class Rungs:
    """The values recorded at each rung, and the decisions they give."""

    halving: Halving
    #: (bracket, rung) -> the values recorded there, sorted
    values: dict[tuple[int, int], list[float]] = field(default_factory=dict)

    def record(self, rung: int, value: float, bracket: int = 0) -> None:
        bisect.insort(self.values.setdefault((bracket, rung), []), value)

    def keep(self, rung: int, value: float, bracket: int = 0) -> bool:
        """Record ``value`` at ``rung`` of ``bracket``; whether the member goes on (higher is
        better)."""
        self.record(rung, value, bracket)
        recorded = self.values[(bracket, rung)]
        k = max(1, len(recorded) // self.halving.eta)
        return value >= recorded[-k]

    def replay(self, curves: Iterable[tuple[list[float], int, int]]) -> None:
        """Record the rung values of trials run before (their per-epoch objective values, their
        planned epochs and their bracket), so a continued study judges against them too."""
        for values, epochs, bracket in curves:
            for rung in self.halving.rungs(epochs, bracket):
                if rung <= len(values):
                    self.record(rung, values[rung - 1], bracket)


_DEFAULTS = Halving().to_config()
#: the default of ``search.halving``: decided by the sampler and the space (:func:`resolve`)
AUTO = "auto"


def resolve(value: Any, sampler: str, longest: int) -> Halving | None:
    """The schedule ``search.halving = value`` gives (checked by :data:`HALVING`) with
    ``sampler`` and trials of at most ``longest`` epochs. 'auto' is halving with its defaults
    for the tpe sampler (the pair beat random search in benchmarks/quality.py) where a trial can
    reach the first rung, and none otherwise: random, grid and coarse to fine stay the
    textbook's, every trial trained to its end, and one-epoch trials have nothing to judge."""
    if HALVING.check(value, "search.halving") == AUTO:
        schedule = Halving()
        return schedule if sampler == "tpe" and schedule.rungs(longest) else None
    return Halving.from_config(value)


#: ``search.halving``: 'auto' (the default: on with the defaults for the tpe sampler where the
#: space's epochs reach the first rung, else off; see :func:`resolve`), off (false, or nothing), on
#: with the defaults (true), or a table of min_epochs, eta and brackets, a key left out taking its
#: default; read as that table, None when off, or 'auto'

HALVING = AnyOf(
    (
        Alias(AUTO, AUTO),
        Alias(True, _DEFAULTS),
        Alias(False, None),
        Record({"min_epochs": MIN_EPOCHS, "eta": ETA, "brackets": BRACKETS}, _DEFAULTS),
    ),
    words="'auto', true, false or a table {"
    + ", ".join(f"{key} = {value}" for key, value in _DEFAULTS.items())
    + "}",
    nullable=True,
)
