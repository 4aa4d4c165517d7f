"""The pure functions behind the figures and tables, on hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from caviar.experiments.base import table
from caviar.experiments.batchnorm_init import scales, summarise
from caviar.experiments.bn_test_time import mean_curve
from caviar.experiments.hparam_search import ranking, value_box
from caviar.experiments.overfit import gaps
from caviar.experiments.sampling import best_so_far, decade_shares, windows
from caviar.experiments.seed_ensemble import ensemble_accuracy
from caviar.experiments.softmax import autograd_dz, dz, hardmax, softmax
from caviar.space import LogUniform, SearchSpace


def test_scales_are_the_books_logspace() -> None:
    assert scales(16)[0] == 1.0 and scales(16)[-1] == pytest.approx(1e-4)
    assert scales(16)[2] == pytest.approx(10 ** (-8 / 15))  # 0.29, where no-BN wins


def test_summarise_counts_wins_on_the_seed_mean_and_a_diverged_net_loses() -> None:
    bn = [[0.5, 0.9, 0.8], [0.3, 0.9, 0.6]]  # [seed][scale]
    plain = [[math.nan, 0.95, 0.1], [math.nan, 0.97, 0.1]]
    s = summarise(bn, plain)
    assert s["bn_mean"] == pytest.approx([0.4, 0.9, 0.7])
    assert s["plain_mean"][1:] == pytest.approx([0.96, 0.1]) and math.isnan(s["plain_mean"][0])
    assert (s["bn_wins"], s["plain_wins"]) == (2, 1)


def test_gaps_are_means_over_seeds() -> None:
    assert gaps([1.0, 0.9], [0.7, 0.8]) == pytest.approx({"train": 0.95, "test": 0.75, "gap": 0.2})


def test_ranking_puts_best_first_ties_to_the_lower_index_nan_last() -> None:
    assert ranking([0.5, math.nan, 0.9, 0.5]) == [2, 0, 3, 1]


def test_value_box_maps_unit_coordinates_to_values() -> None:
    space = SearchSpace({"lr": LogUniform(1e-6, 1e-2)})
    assert value_box([(0.5, 1.0)], space)["lr"] == pytest.approx([1e-4, 1e-2])


def test_best_so_far() -> None:
    assert best_so_far([0.2, math.nan, 0.1, 0.5])[1:] == [0.2, 0.2, 0.5]
    assert math.isnan(best_so_far([math.nan])[0])


def test_decade_shares() -> None:
    assert decade_shares([2e-4, 5e-3, 0.05, 0.5, 0.9], 1e-4, 1.0) == [0.2, 0.2, 0.2, 0.4]
    # linear on [1e-4, 1]: the top decade holds 0.9 / 0.9999 of the range
    grid = np.linspace(1e-4, 1.0, 100_001)
    assert decade_shares(grid.tolist(), 1e-4, 1.0)[-1] == pytest.approx(0.9 / 0.9999, abs=1e-4)


def test_windows() -> None:
    assert windows([0.9, 0.99, 0.999]) == pytest.approx([10, 100, 1000])


def test_softmax_hardmax_and_dz_by_hand() -> None:
    z = np.array([[0.0, math.log(3.0)]])  # probabilities 1/4, 3/4
    assert softmax(z) == pytest.approx(np.array([[0.25, 0.75]]))
    assert (hardmax(z) == np.array([[0.0, 1.0]])).all()
    assert dz(z, np.array([0])) == pytest.approx(np.array([[-0.75, 0.75]]))


def test_dz_matches_autograd() -> None:
    rng = np.random.default_rng(0)
    z, y = rng.normal(size=(7, 4)) * 3, rng.integers(0, 4, size=7)
    assert np.abs(dz(z, y) - autograd_dz(z, y)).max() < 1e-12


def test_ensemble_accuracy_by_hand() -> None:
    y = np.array([0, 1])
    a = np.array([[0.6, 0.4], [0.6, 0.4]])  # right, wrong
    b = np.array([[0.45, 0.55], [0.1, 0.9]])  # wrong, right
    s = ensemble_accuracy([a, b], y)  # average: [0.525, 0.475], [0.35, 0.65]: both right
    assert s == {"members": [0.5, 0.5], "mean_member": 0.5, "ensemble": 1.0}


def test_mean_curve_over_seeds() -> None:
    runs = [{"batch_stats": {"1": 0.1, "8": 0.7}}, {"batch_stats": {"1": 0.2, "8": 0.9}}]
    assert mean_curve(runs, [1, 8]) == pytest.approx([0.15, 0.8])


def test_table_aligns_and_formats() -> None:
    lines = table(["a", "value"], [("x", 0.5), ("long", 1e-4), ("n", math.nan)])
    assert lines[0] == "   a   value"
    assert lines[2:] == ["   x   0.500", "long  0.0001", "   n       -"]
