"""Coarse to fine: sample a box at random, keep the best points, shrink the box around them.

Round 0 samples the whole unit cube. Round ``r`` samples a box computed from round ``r - 1``:

1. wait until every trial of round ``r - 1`` has finished;
2. keep its best ``keep`` completed trials (ties go to the lower trial number);
3. on each axis take the span of the kept points, widen it by ``margin`` times the width of
   round ``r - 1``'s box on each side, and clip it to [0, 1].

Boxes live in unit coordinates, so a learning rate zooms by decades and a beta by powers of ten of
``1 - beta``, and the box never leaves the original bounds. If no trial of a round completed, the
next round keeps its box. Each trial records ``round`` and ``box`` in its attributes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from caviar.core.constraints import FRACTION, AnyOf, ListOf, any_of, integer, number
from caviar.core.errors import InvalidValue, got
from caviar.core.records import Direction, FrozenTrial, TrialState
from caviar.core.seeding import SAMPLER, check_seed, generator
from caviar.samplers.base import Proposal, Sampler
from caviar.space import SearchSpace

Box = tuple[tuple[float, float], ...]

#: the rules of the settings, shared with the study config's ``[search]`` section
ROUNDS = integer(1)
TRIAL_COUNT = integer(1)
#: trials per round, one count a round (the config's ``search.per_round``)
PER_ROUND = ListOf(TRIAL_COUNT, words="a non-empty list of integers in [1, inf), one per round")
KEEP = AnyOf((integer(1), FRACTION), words="a count in [1, inf) or a fraction in (0, 1)")
MARGIN = number(0.0, 1.0)
#: the sampler's ``per_round``: also one count for every round
_COUNTS = any_of(TRIAL_COUNT, PER_ROUND)


class CoarseToFineSampler(Sampler):
    """Random search in rounds, each in a box shrunk around the previous round's best trials.

    ``per_round`` is a trial count for every round, or one count per round (e.g. a large coarse
    first round). ``keep`` is a number of trials, or a fraction in (0, 1) of each round.
    """

    name = "coarse_to_fine"

    def __init__(
        self,
        rounds: int = 3,
        per_round: int | Sequence[int] = 20,
        keep: int | float = 0.25,
        margin: float = 0.1,
        seed: int = 0,
    ) -> None:
        owner = "CoarseToFineSampler"
        self.rounds: int = ROUNDS.check(rounds, f"{owner}.rounds")
        counts = _COUNTS.check(per_round, f"{owner}.per_round")
        self.per_round = [counts] * self.rounds if isinstance(counts, int) else list(counts)
        if len(self.per_round) != self.rounds:
            raise InvalidValue(
                f"{owner}.per_round",
                f"must have one count per round ({self.rounds}), {got(per_round)}",
            )
        self.keep: int | float = KEEP.check(keep, f"{owner}.keep")
        if isinstance(self.keep, int):
            integer(1, min(self.per_round)).check(
                self.keep, f"{owner}.keep (a count, at most the smallest round)"
            )
        self.margin: float = MARGIN.check(margin, f"{owner}.margin")
        self.seed = check_seed("CoarseToFineSampler", seed)
        self._boxes: dict[int, Box] = {}  # rounds whose box is settled (their parents finished)

    def __repr__(self) -> str:
        return (
            f"CoarseToFineSampler(rounds={self.rounds}, per_round={self.per_round}, "
            f"keep={self.keep}, margin={self.margin}, seed={self.seed})"
        )

    def capacity(self, space: SearchSpace) -> int:
        return sum(self.per_round)

    def round_of(self, number: int) -> int | None:
        """The round that trial ``number`` belongs to, or None past the last round."""
        start = 0
        for r, count in enumerate(self.per_round):
            if number < start + count:
                return r
            start += count
        return None

    def _numbers(self, r: int) -> range:
        start = sum(self.per_round[:r])
        return range(start, start + self.per_round[r])

    def n_keep(self, r: int) -> int:
        """How many trials of round ``r`` shape the next box."""
        if isinstance(self.keep, int):
            return self.keep
        # rounded first: 0.14 * 50 is 7.000000000000001 in floating point, and ceil would give 8
        return max(1, math.ceil(round(self.keep * self.per_round[r], 9)))

    def box(
        self, r: int, space: SearchSpace, history: Sequence[FrozenTrial], direction: Direction
    ) -> Box | None:
        """Round ``r``'s box, or None while round ``r - 1`` still has unfinished trials."""
        if r in self._boxes:
            return self._boxes[r]
        if r == 0:
            box: Box = tuple((0.0, 1.0) for _ in range(space.n_free))
        else:
            parent = self.box(r - 1, space, history, direction)
            if parent is None:
                return None
            numbers = self._numbers(r - 1)
            by_number = {t.number: t for t in history if t.number in numbers}
            if len(by_number) < len(numbers) or any(
                not t.state.is_finished for t in by_number.values()
            ):
                return None
            done = [
                t
                for t in by_number.values()
                if t.state is TrialState.COMPLETE and t.value is not None
            ]
            done.sort(key=lambda t: (direction.sort_key(t.value or 0.0), t.number))
            kept = done[: self.n_keep(r - 1)]
            box = parent if not kept else self._shrink(parent, [t.unit for t in kept])
        self._boxes[r] = box
        return box

    def _shrink(self, parent: Box, points: Sequence[Sequence[float]]) -> Box:
        shrunk = []
        for axis, (lo, hi) in enumerate(parent):
            values = [p[axis] for p in points]
            pad = self.margin * (hi - lo)
            shrunk.append((max(0.0, min(values) - pad), min(1.0, max(values) + pad)))
        return tuple(shrunk)

    def propose(
        self,
        space: SearchSpace,
        number: int,
        history: Sequence[FrozenTrial],
        direction: Direction,
    ) -> Proposal | None:
        r = self.round_of(number)
        if r is None:
            return None
        box = self.box(r, space, history, direction)
        if box is None:
            return None
        u = generator(self.seed, SAMPLER, number).random(space.n_free)
        unit = tuple(lo + float(x) * (hi - lo) for x, (lo, hi) in zip(u, box, strict=True))
        return Proposal(unit, {"round": r, "box": [list(b) for b in box]})

    def to_config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "rounds": self.rounds,
            "per_round": self.per_round,
            "keep": self.keep,
            "margin": self.margin,
            "seed": self.seed,
        }
