"""Dimensions: the map between unit coordinates and values, grids, and the messages of bad input.

Expected values are worked out by hand from each scale's definition (linear, log10, 1 - beta,
integer bins of width 1 in value space), never read back from the code under test.
"""

import math
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from caviar.core.errors import InvalidValue
from caviar.space import (
    Choice,
    Fixed,
    IntLogUniform,
    IntUniform,
    LogUniform,
    OneMinusLog,
    Uniform,
)


def exactly(message: str) -> str:
    """A ``match=`` pattern for this whole message and nothing else."""
    return "^" + re.escape(message) + "$"


# -- from_unit / to_unit at hand-computed points ----------------------------------------------

# (dimension, u, value): the value at unit coordinate u, worked out from the scale's definition.
KNOWN_POINTS = [
    # linear: value = low + u * (high - low)
    (Uniform(-1.0, 3.0), 0.0, -1.0),
    (Uniform(-1.0, 3.0), 0.25, 0.0),
    (Uniform(-1.0, 3.0), 1.0, 3.0),
    # log: log10 value = log10 low + u * (log10 high - log10 low); [1e-4, 1] spans 4 decades
    (LogUniform(1e-4, 1.0), 0.0, 1e-4),
    (LogUniform(1e-4, 1.0), 0.25, 1e-3),
    (LogUniform(1e-4, 1.0), 0.5, 1e-2),
    (LogUniform(1e-4, 1.0), 0.75, 1e-1),
    (LogUniform(1e-4, 1.0), 1.0, 1.0),
    # 1 - beta: -log10(1 - beta) runs over [1, 3] for beta in [0.9, 0.999]
    (OneMinusLog(0.9, 0.999), 0.0, 0.9),
    (OneMinusLog(0.9, 0.999), 0.5, 0.99),
    (OneMinusLog(0.9, 0.999), 0.25, 1.0 - 10**-1.5),
    (OneMinusLog(0.9, 0.999), 1.0, 0.999),
]


@pytest.mark.parametrize(("dim", "u", "value"), KNOWN_POINTS, ids=repr)
def test_continuous_scales_map_unit_coordinates_as_defined(dim, u, value):
    assert dim.from_unit(u) == pytest.approx(value, rel=1e-12, abs=1e-15)
    assert dim.to_unit(value) == pytest.approx(u, abs=1e-12)


def test_int_uniform_gives_each_integer_a_third_of_the_unit_interval():
    # IntUniform(2, 4): the bins [1.5, 2.5], [2.5, 3.5], [3.5, 4.5] each take a third of [0, 1]
    dim = IntUniform(2, 4)
    assert [dim.from_unit(u) for u in (0.0, 0.33, 0.34, 0.66, 0.67, 1.0)] == [2, 2, 3, 3, 4, 4]
    assert [dim.to_unit(v) for v in (2, 3, 4)] == pytest.approx([1 / 6, 1 / 2, 5 / 6])


def test_int_log_uniform_bins_are_half_integers_on_a_log_scale():
    # IntLogUniform(1, 8): log10 runs over [log10 0.5, log10 8.5]; the value 2 owns [1.5, 2.5]
    dim = IntLogUniform(1, 8)
    span = math.log10(8.5) - math.log10(0.5)
    edge = (math.log10(1.5) - math.log10(0.5)) / span  # where 1 turns into 2
    assert dim.from_unit(edge - 1e-9) == 1
    assert dim.from_unit(edge + 1e-9) == 2
    centre = (0.5 * (math.log10(1.5) + math.log10(2.5)) - math.log10(0.5)) / span
    assert dim.to_unit(2) == pytest.approx(centre)


def test_choice_splits_the_unit_interval_into_equal_parts():
    dim = Choice(["a", "b", "c", "d"])
    assert [dim.from_unit(u) for u in (0.0, 0.24, 0.25, 0.5, 0.99, 1.0)] == list("aabcdd")
    assert [dim.to_unit(v) for v in "abcd"] == [0.125, 0.375, 0.625, 0.875]


def test_fixed_takes_no_coordinate_and_always_gives_its_value():
    dim = Fixed(10)
    assert dim.n_free == 0
    assert dim.cardinality == 1
    assert [dim.from_unit(u) for u in (0.0, 0.3, 1.0)] == [10, 10, 10]


@pytest.mark.parametrize(
    "dim",
    [Uniform(0.1, 0.7), LogUniform(3e-5, 0.7), OneMinusLog(0.9, 0.9999), IntUniform(2, 9)],
    ids=repr,
)
def test_coordinates_outside_the_unit_interval_are_clipped_to_the_bounds(dim):
    assert dim.from_unit(-0.5) == dim.low
    assert dim.from_unit(1.5) == dim.high


@pytest.mark.parametrize(
    ("dim", "low", "high"),
    [
        (Uniform(0.1, 0.7), 0.1, 0.7),
        (LogUniform(3e-5, 0.7), 3e-5, 0.7),
        (LogUniform(1e-4, 0.03), 1e-4, 0.03),
        (OneMinusLog(0.9, 0.9999), 0.9, 0.9999),
        (OneMinusLog(0.95, 0.998), 0.95, 0.998),
    ],
    ids=repr,
)
def test_the_ends_of_the_unit_interval_are_exactly_the_bounds(dim, low, high):
    # closed bounds: u = 0 and u = 1 give the bounds as written, not a rounding of them
    assert dim.from_unit(0.0) == low
    assert dim.from_unit(1.0) == high


# -- round trips --------------------------------------------------------------------------------

CONTINUOUS = [
    Uniform(-1.0, 3.0),
    LogUniform(1e-6, 1e-2),
    LogUniform(3e-5, 0.7),
    OneMinusLog(0.9, 0.999),
    OneMinusLog(0.5, 0.99999),
]


@pytest.mark.parametrize("dim", CONTINUOUS, ids=repr)
@given(u=st.floats(0.0, 1.0))
def test_continuous_to_unit_inverts_from_unit(dim, u):
    value = dim.from_unit(u)
    assert dim.low <= value <= dim.high
    assert dim.to_unit(value) == pytest.approx(u, abs=1e-9)


@pytest.mark.parametrize(
    "dim", [IntUniform(2, 4), IntUniform(-3, 7), IntLogUniform(1, 8), IntLogUniform(16, 512)]
)
def test_integer_from_unit_inverts_to_unit_for_every_value(dim):
    values = range(dim.low, dim.high + 1)
    assert [dim.from_unit(dim.to_unit(v)) for v in values] == list(values)


@pytest.mark.parametrize(
    "dim", [IntUniform(2, 4), IntLogUniform(16, 512), Choice(["relu", "tanh", True, 1, None])]
)
@given(u=st.floats(0.0, 1.0))
def test_discrete_values_map_back_to_the_centre_of_their_bin(dim, u):
    value = dim.from_unit(u)
    assert dim.contains(value)
    assert dim.from_unit(dim.to_unit(value)) == value
    assert type(dim.from_unit(dim.to_unit(value))) is type(value)


def test_int_uniform_with_one_value():
    dim = IntUniform(3, 3)
    assert dim.cardinality == 1
    assert [dim.from_unit(u) for u in (0.0, 0.5, 1.0)] == [3, 3, 3]


def test_bounds_given_as_integral_floats_become_ints_on_integer_scales():
    dim = IntUniform(2.0, 4.0)
    assert (dim.low, dim.high) == (2, 4)
    assert type(dim.low) is int and type(dim.high) is int
    assert type(dim.from_unit(0.5)) is int


def test_contains_checks_type_and_closed_bounds():
    assert IntUniform(2, 4).contains(2) and IntUniform(2, 4).contains(4)
    assert not IntUniform(2, 4).contains(5)
    assert not IntUniform(2, 4).contains(3.0)
    assert not IntUniform(0, 4).contains(True)
    assert Uniform(0.0, 0.5).contains(0.5) and not Uniform(0.0, 0.5).contains(0.5000001)
    assert not Uniform(0.0, 1.0).contains(math.nan)
    assert Choice([1, True]).contains(True) and not Choice([1, 2]).contains(True)
    assert not Fixed(1).contains(1.0)


# -- grids ------------------------------------------------------------------------------------


def test_continuous_grid_spans_the_unit_interval_end_points_included():
    assert Uniform(0.0, 1.0).grid_units(5) == (0.0, 0.25, 0.5, 0.75, 1.0)
    assert Uniform(0.0, 1.0).grid_units(2) == (0.0, 1.0)
    assert Uniform(0.0, 1.0).grid_units(1) == (0.5,)


@pytest.mark.parametrize(
    ("dim", "n", "values"),
    [
        (LogUniform(1e-6, 1e-2), 5, [1e-6, 1e-5, 1e-4, 1e-3, 1e-2]),  # one point per decade
        (OneMinusLog(0.9, 0.999), 3, [0.9, 0.99, 0.999]),  # one per power of ten of 1 - beta
        (Uniform(0.0, 0.5), 3, [0.0, 0.25, 0.5]),
    ],
    ids=repr,
)
def test_continuous_grid_is_even_on_the_dimensions_scale(dim, n, values):
    assert [dim.from_unit(u) for u in dim.grid_units(n)] == pytest.approx(values, rel=1e-12)


@pytest.mark.parametrize(
    ("dim", "n", "values"),
    [
        (IntUniform(0, 9), 4, [0, 3, 6, 9]),
        (IntUniform(2, 4), 3, [2, 3, 4]),
        (IntUniform(1, 3), 5, [1, 2, 3]),  # only three values exist
        (IntUniform(1, 3), 1, [2]),
        (IntLogUniform(16, 512), 6, [16, 32, 64, 128, 256, 512]),  # powers of two
        (Choice(["a", "b", "c"]), 2, ["a", "c"]),
        (Choice(["a", "b", "c"]), 3, ["a", "b", "c"]),
        (Choice(["a", "b", "c"]), 10, ["a", "b", "c"]),
        (Choice(["a", "b", "c", "d"]), 4, ["a", "b", "c", "d"]),
    ],
    ids=repr,
)
def test_discrete_grid_gives_distinct_values_with_both_ends(dim, n, values):
    units = dim.grid_units(n)
    assert list(units) == sorted(set(units))
    assert [dim.from_unit(u) for u in units] == values


@pytest.mark.parametrize("dim", [Uniform(0.0, 1.0), IntUniform(1, 3), Choice(["a"])], ids=repr)
def test_grid_needs_at_least_one_point(dim):
    owner = type(dim).__name__
    with pytest.raises(ValueError, match=exactly(f"{owner}: grid points must be >= 1, got 0")):
        dim.grid_units(0)


# -- bad input ----------------------------------------------------------------------------------

# (how to build it, the whole message): the owner, the rule, and the bad value as given.
BAD_DIMENSIONS = [
    (lambda: LogUniform(0, 1), "LogUniform: low must be > 0 on a log scale, got 0"),
    (lambda: LogUniform(-1e-3, 1), "LogUniform: low must be > 0 on a log scale, got -0.001"),
    (
        lambda: IntLogUniform(0, 8),
        "IntLogUniform: low must be >= 1 on an integer log scale, got 0",
    ),
    (
        lambda: OneMinusLog(0, 0.99),
        "OneMinusLog: low must be in (0, 1) on a 1 - beta scale, got 0",
    ),
    (
        lambda: OneMinusLog(0.9, 1.0),
        "OneMinusLog: high must be in (0, 1) on a 1 - beta scale, got 1.0",
    ),
    (
        lambda: OneMinusLog(0.9, 1.5),
        "OneMinusLog: high must be in (0, 1) on a 1 - beta scale, got 1.5",
    ),
    (
        lambda: OneMinusLog(-0.5, 0.9),
        "OneMinusLog: low must be in (0, 1) on a 1 - beta scale, got -0.5",
    ),
    (lambda: Uniform(2, 1), "Uniform: low must be <= high, got low=2.0, high=1.0"),
    (lambda: IntUniform(5, 2), "IntUniform: low must be <= high, got low=5, high=2"),
    (lambda: LogUniform(1e-2, 1e-4), "LogUniform: low must be <= high, got low=0.01, high=0.0001"),
    (
        lambda: OneMinusLog(0.999, 0.9),
        "OneMinusLog: low must be <= high, got low=0.999, high=0.9",
    ),
    (lambda: IntUniform(1.5, 4), "IntUniform: low must be an integer, got 1.5"),
    (lambda: IntUniform(1, "4"), "IntUniform: high must be an integer, got '4'"),
    (lambda: IntLogUniform(True, 8), "IntLogUniform: low must be an integer, got True"),
    (lambda: Uniform(math.nan, 1), "Uniform: low must be a finite number, got nan"),
    (lambda: Uniform(0, math.inf), "Uniform: high must be a finite number, got inf"),
    (
        lambda: LogUniform("1e-3", 1),
        "LogUniform: low must be a finite number, got '1e-3' (YAML reads 1e-3 as text: "
        "write 1.0e-3)",
    ),
    (lambda: Choice([]), "Choice: options must not be empty, got []"),
    (lambda: Choice(["relu", "relu"]), "Choice: options must be distinct, got ['relu', 'relu']"),
    (lambda: Choice("relu"), "Choice: options must be a list of values, got 'relu'"),
    (
        lambda: Choice([[1, 2]]),
        "Choice: each option must be a string, number, boolean or null, got [1, 2]",
    ),
    (lambda: Choice([0.1, math.nan]), "Choice: each option must be finite, got nan"),
    (lambda: Fixed(math.inf), "Fixed: value must be finite, got inf"),
    (
        lambda: Fixed({"a": 1}),
        "Fixed: value must be a string, number, boolean or null, got {'a': 1}",
    ),
]


@pytest.mark.parametrize(("build", "message"), BAD_DIMENSIONS, ids=[m for _, m in BAD_DIMENSIONS])
def test_bad_dimensions_raise_value_error_naming_owner_rule_and_value(build, message):
    with pytest.raises(ValueError, match=exactly(message)) as info:
        build()
    assert isinstance(info.value, InvalidValue)


def test_invalid_value_is_a_value_error_and_keeps_its_reason_under_a_new_owner():
    assert issubclass(InvalidValue, ValueError)
    error = InvalidValue("LogUniform", "low must be > 0 on a log scale, got 0").at("space.lr")
    assert str(error) == "space.lr: low must be > 0 on a log scale, got 0"
    assert (error.owner, error.reason) == ("space.lr", "low must be > 0 on a log scale, got 0")


def test_true_and_one_are_different_options():
    dim = Choice([True, 1, 1.0])
    assert dim.cardinality == 3
    assert [dim.from_unit(u) for u in (0.1, 0.5, 0.9)] == [True, 1, 1.0]
    assert [type(dim.from_unit(u)) for u in (0.1, 0.5, 0.9)] == [bool, int, float]


def test_validate_names_the_owner_the_allowed_values_and_the_bad_value():
    with pytest.raises(
        ValueError, match=exactly("params.lr: must be a number in [0.0001, 1.0], got 2")
    ):
        LogUniform(1e-4, 1).validate(2, "params.lr")
    with pytest.raises(
        ValueError, match=exactly("params.act: must be one of ['relu', 'tanh'], got 'gelu'")
    ):
        Choice(["relu", "tanh"]).validate("gelu", "params.act")
    assert IntUniform(2, 4).validate(3, "params.n") == 3
