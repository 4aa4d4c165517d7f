"""Random search, the default: the course's first rule of tuning (never a blind grid)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from caviar.core.records import Direction, FrozenTrial
from caviar.core.seeding import SAMPLER, check_seed, generator
from caviar.samplers.base import Proposal, Sampler
from caviar.space import SearchSpace


class RandomSampler(Sampler):
    """Each trial's point is uniform in the unit cube, drawn from its own seeded stream."""

    name = "random"

    def __init__(self, seed: int = 0) -> None:
        self.seed = check_seed("RandomSampler", seed)

    def __repr__(self) -> str:
        return f"RandomSampler(seed={self.seed})"

    def propose(
        self,
        space: SearchSpace,
        number: int,
        history: Sequence[FrozenTrial],
        direction: Direction,
    ) -> Proposal:
        u = generator(self.seed, SAMPLER, number).random(space.n_free)
        return Proposal(tuple(float(x) for x in u))

    def to_config(self) -> dict[str, Any]:
        return {"name": self.name, "seed": self.seed}
