"""Which hyperparameter mattered: random-forest importance over the unit-cube coordinates.

The course gives a priority list (learning rate first; then momentum, mini-batch size and hidden
units; then layers and learning-rate decay). A study measures its own: a random forest is fitted
from each trial's unit-cube point to its score, and the mean decrease in impurity of each axis,
normalised to sum to 1, ranks the hyperparameters. Unit coordinates put every scale on an equal
footing (a learning rate's decades, a beta's powers of ten of 1 - beta). A diverged trial counts
as scoring like the worst complete trial, so "this range diverges" shows as importance too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from caviar.core.records import Direction, FrozenTrial, TrialState
from caviar.space import SearchSpace

MIN_TRIALS = 8


@dataclass(frozen=True)
class Importance:
    name: str
    importance: float  # share of the forest's impurity decrease, the shares sum to 1


def importance(
    space: SearchSpace,
    trials: Sequence[FrozenTrial],
    direction: Direction,
    *,
    seed: int = 0,
) -> list[Importance] | None:
    """Hyperparameters ranked by importance, or None with fewer than 8 scored trials."""
    complete = [t for t in trials if t.state is TrialState.COMPLETE and t.value is not None]
    diverged = [t for t in trials if t.state is TrialState.DIVERGED]
    if len(complete) + len(diverged) < MIN_TRIALS or not complete or space.n_free == 0:
        return None
    values = [float(t.value or 0.0) for t in complete]
    worst = min(values) if direction is Direction.MAXIMIZE else max(values)
    x = np.array([t.unit for t in [*complete, *diverged]], dtype=np.float64)
    y = np.array(values + [worst] * len(diverged))
    if np.ptp(y) == 0:
        shares = np.full(space.n_free, 1.0 / space.n_free)
    else:
        # deferred: scikit-learn, a slow import (and none at all for a study of a few trials)
        from sklearn.ensemble import RandomForestRegressor

        forest = RandomForestRegressor(n_estimators=100, min_samples_leaf=2, random_state=seed)
        shares = forest.fit(x, y).feature_importances_
    ranked = sorted(
        zip(space.free_names, shares, strict=True), key=lambda item: (-item[1], item[0])
    )
    return [Importance(name, float(share)) for name, share in ranked]
