"""GridSampler: the i-th trial is the i-th grid point, decoded without building the product."""

import itertools
import re
import time
import warnings

import pytest

from caviar import (
    Choice,
    Fixed,
    GridSampler,
    InMemoryStorage,
    IntLogUniform,
    IntUniform,
    LogUniform,
    OneMinusLog,
    SearchSpace,
    Study,
    Uniform,
)
from caviar.core.records import Direction
from caviar.samplers import GridWarning


def exactly(message: str) -> str:
    return "^" + re.escape(message) + "$"


def propose(sampler, space, number):
    return sampler.propose(space, number, [], Direction.MAXIMIZE)


def test_a_trillion_point_grid_decodes_any_point_at_once():
    # 12 dimensions of 10 points: 10**12 points, far too many to build
    space = SearchSpace({f"x{i}": Uniform(0.0, 9.0) for i in range(12)})
    sampler = GridSampler(points_per_dim=10)
    assert sampler.capacity(space) == 10**12
    start = time.perf_counter()
    last = propose(sampler, space, 999_999_999_999)
    past_the_end = propose(sampler, space, 10**12)
    assert time.perf_counter() - start < 1.0  # a product would not finish at all
    assert space.from_unit(last.unit) == {f"x{i}": 9.0 for i in range(12)}
    assert past_the_end is None
    # the point's digits, last axis fastest: 123_456_789_012 -> x0 = 1, x1 = 2, ..., x11 = 2
    middle = space.from_unit(propose(sampler, space, 123_456_789_012).unit)
    assert [middle[f"x{i}"] for i in range(12)] == pytest.approx(
        [1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1, 2]
    )


def test_points_come_in_product_order_last_axis_fastest():
    space = SearchSpace(
        {
            "lr": LogUniform(1e-3, 1e-1),
            "epochs": Fixed(5),
            "act": Choice(["relu", "tanh"]),
            "units": IntUniform(2, 4),
        }
    )
    sampler = GridSampler(points_per_dim={"lr": 3, "act": 2, "units": 3})
    expected = [
        {"lr": lr, "epochs": 5, "act": act, "units": units}
        for lr, act, units in itertools.product([1e-3, 1e-2, 1e-1], ["relu", "tanh"], [2, 3, 4])
    ]
    got = [space.from_unit(propose(sampler, space, n).unit) for n in range(18)]
    assert [g["lr"] for g in got] == pytest.approx([e["lr"] for e in expected], rel=1e-12)
    assert [{**g, "lr": 0} for g in got] == [{**e, "lr": 0} for e in expected]
    assert propose(sampler, space, 18) is None
    assert sampler.capacity(space) == 18


@pytest.mark.parametrize(
    ("dim", "low", "high"),
    [
        (Uniform(0.1, 0.7), 0.1, 0.7),
        (LogUniform(3e-5, 0.7), 3e-5, 0.7),
        (OneMinusLog(0.9, 0.9999), 0.9, 0.9999),
        (IntUniform(2, 9), 2, 9),
        (IntLogUniform(16, 512), 16, 512),
        (Choice(["a", "b", "c", "d", "e"]), "a", "e"),
    ],
    ids=repr,
)
def test_grid_points_include_both_end_points(dim, low, high):
    space = SearchSpace({"x": dim})
    sampler = GridSampler(points_per_dim=4)
    values = [space.from_unit(propose(sampler, space, n).unit)["x"] for n in range(4)]
    assert values[0] == low
    assert values[-1] == high
    assert len(set(values)) == 4


def test_a_study_runs_the_whole_grid_once_then_gets_no_more_trials():
    space = SearchSpace({"x": Uniform(0.0, 1.0), "k": IntUniform(1, 3)})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GridWarning)
        study = Study.create("grid", space, sampler=GridSampler(3), storage=InMemoryStorage())
    trials = study.ask(100)
    assert [(t.params["x"], t.params["k"]) for t in trials] == list(
        itertools.product([0.0, 0.5, 1.0], [1, 2, 3])
    )
    assert [t.attrs["grid_index"] for t in trials] == list(range(9))
    for t in trials:
        study.tell(t, 1.0)
    assert study.ask(1) == []


def test_warns_when_a_dimension_has_fewer_values_than_asked():
    space = SearchSpace({"layers": IntUniform(1, 3)})
    with pytest.warns(
        GridWarning, match=exactly("grid: 'layers' has only 3 distinct values, not 5")
    ):
        Study.create("few", space, sampler=GridSampler(5), storage=InMemoryStorage())


def test_warns_that_a_grid_tries_few_distinct_values_of_each_dimension():
    space = SearchSpace({"lr": LogUniform(1e-4, 1.0), "dropout": Uniform(0.0, 0.5)})
    with pytest.warns(GridWarning, match=re.escape("grid: 25 trials try only 5 distinct values")):
        Study.create("grid", space, sampler=GridSampler(5), storage=InMemoryStorage())


def test_no_warning_for_a_one_dimensional_grid_with_enough_values():
    space = SearchSpace({"lr": LogUniform(1e-4, 1.0), "epochs": Fixed(3)})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Study.create("one", space, sampler=GridSampler(5), storage=InMemoryStorage())


def test_a_space_with_nothing_to_search_has_one_point():
    space = SearchSpace({"epochs": Fixed(3)})
    sampler = GridSampler(4)
    assert propose(sampler, space, 0).unit == ()
    assert propose(sampler, space, 1) is None


EITHER = "an integer in [1, inf), or a table of one such integer per searched name"


@pytest.mark.parametrize(
    ("points", "message"),
    [
        (0, f"GridSampler.points_per_dim: must be {EITHER}, got 0"),
        (2.5, f"GridSampler.points_per_dim: must be {EITHER}, got 2.5"),
        (True, f"GridSampler.points_per_dim: must be {EITHER}, got True"),
        ({"x": 3, "y": 0}, "GridSampler.points_per_dim.y: must be an integer in [1, inf), got 0"),
    ],
)
def test_bad_points_per_dim(points, message):
    with pytest.raises(ValueError, match=exactly(message)):
        GridSampler(points)


def test_points_per_dim_by_name_must_name_each_searched_dimension():
    space = SearchSpace({"x": Uniform(0.0, 1.0), "y": Uniform(0.0, 1.0), "z": Fixed(1)})
    sampler = GridSampler({"x": 3, "z": 2})
    with pytest.raises(
        ValueError,
        match=exactly(
            "GridSampler.points_per_dim: must name each searched dimension ['x', 'y'] once; "
            "unknown ['z'], missing ['y']"
        ),
    ):
        sampler.capacity(space)


def test_config_round_trip():
    sampler = GridSampler({"x": 3, "y": 4})
    again = GridSampler.from_config(sampler.to_config())
    assert isinstance(again, GridSampler)
    assert again.points_per_dim == {"x": 3, "y": 4}
