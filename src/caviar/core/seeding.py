"""Seeds derived from keys, so that every random stream is a pure function of what it is for.

A trial's configuration depends on (study seed, trial number), a member's initial weights on
(member seed, "init"), and so on: never on how many workers there are, in which order results
arrive, or which other members share a population. numpy's ``SeedSequence`` does the mixing: it
is built to give independent streams for distinct entropy tuples.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from caviar.core.constraints import Scalar

# Purposes, so that the streams drawn for different uses of one seed never coincide.
TRIAL = 1
SAMPLER = 2
INIT = 3
DROPOUT = 4
DATA_ORDER = 5
SPLIT = 6


#: seeds are integers in [0, 2**63): they fit SQLite's INTEGER and torch's manual_seed
SEED_LIMIT = 2**63


#: the rule every seed meets
SEED = Scalar("integer", 0, SEED_LIMIT - 1, words="an integer in [0, 2**63)")


def check_seed(owner: str, seed: Any) -> int:
    """``seed`` if it is a legal seed, else an InvalidValue owned by ``<owner>.seed`` (or by
    ``owner`` when it names the seed already, as the config key ``study.seed`` does)."""
    if isinstance(seed, np.integer):
        seed = int(seed)
    return int(SEED.check(seed, owner if owner.endswith("seed") else f"{owner}.seed"))


def derive_seed(*keys: int) -> int:
    """A 63-bit seed that depends only on ``keys`` (non-negative integers)."""
    for key in keys:
        if isinstance(key, bool) or not isinstance(key, int | np.integer) or key < 0:
            raise ValueError(f"seed keys must be non-negative integers, got {key!r}")
    state = np.random.SeedSequence([int(k) for k in keys]).generate_state(2, dtype=np.uint32)
    return (int(state[0]) << 31) ^ int(state[1])


def generator(*keys: int) -> np.random.Generator:
    """A numpy generator seeded from ``keys``."""
    return np.random.default_rng(np.random.SeedSequence([int(k) for k in keys]))
