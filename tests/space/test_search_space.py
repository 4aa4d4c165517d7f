"""SearchSpace: the config and JSON round trip, the unit cube, and errors that name the key path."""

import json
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from caviar.space import (
    Choice,
    Fixed,
    IntLogUniform,
    IntUniform,
    LogUniform,
    OneMinusLog,
    SearchSpace,
    Uniform,
)


def exactly(message: str) -> str:
    return "^" + re.escape(message) + "$"


def every_kind() -> SearchSpace:
    """One dimension of each kind, fixed ones in between, in a deliberately unsorted order."""
    return SearchSpace(
        {
            "lr": LogUniform(1e-4, 1.0),
            "epochs": Fixed(10),
            "momentum": OneMinusLog(0.9, 0.999),
            "dropout": Uniform(0.0, 0.5),
            "layers": IntUniform(2, 4),
            "batch_size": IntLogUniform(16, 512),
            "activation": Choice(["relu", "tanh", True, 1, 1.5, None]),
            "note": Fixed("baseline"),
        }
    )


# -- round trips ------------------------------------------------------------------------------


def test_config_round_trip_gives_the_same_space_in_the_same_order():
    space = every_kind()
    again = SearchSpace.from_config(space.to_config())
    assert again == space
    assert list(again.items()) == list(space.items())
    assert again.free_names == ("lr", "momentum", "dropout", "layers", "batch_size", "activation")


def test_json_round_trip_gives_the_same_space_in_the_same_order():
    space = every_kind()
    text = space.to_json()
    again = SearchSpace.from_json(text)
    assert again == space
    assert list(again.items()) == list(space.items())
    # and option types survive: True, 1 and 1.5 stay a bool, an int and a float
    assert [type(o) for o in again["activation"].options] == [
        str,
        str,
        bool,
        int,
        float,
        type(None),
    ]
    assert json.loads(text)["epochs"] == 10


def test_config_form_as_a_toml_table_gives_it():
    space = SearchSpace.from_config(
        {
            "lr": {"scale": "log", "low": 1e-6, "high": 1e-2},
            "momentum": {"scale": "one_minus_log", "low": 0.9, "high": 0.999},
            "dropout": {"scale": "linear", "low": 0, "high": 0.5},
            "hidden_units": {"scale": "int", "low": 50, "high": 100},
            "batch_size": {"scale": "int_log", "low": 16, "high": 512},
            "activation": {"choice": ["relu", "tanh"]},
            "epochs": 20,
            "optimizer": {"fixed": "adam"},
        }
    )
    assert dict(space) == {
        "lr": LogUniform(1e-6, 1e-2),
        "momentum": OneMinusLog(0.9, 0.999),
        "dropout": Uniform(0.0, 0.5),
        "hidden_units": IntUniform(50, 100),
        "batch_size": IntLogUniform(16, 512),
        "activation": Choice(["relu", "tanh"]),
        "epochs": Fixed(20),
        "optimizer": Fixed("adam"),
    }
    assert space.n_free == 6


def test_equal_spaces_hash_alike_and_order_makes_a_different_space():
    a = SearchSpace({"x": Uniform(0.0, 1.0), "y": Uniform(0.0, 2.0)})
    b = SearchSpace({"x": Uniform(0.0, 1.0), "y": Uniform(0.0, 2.0)})
    swapped = SearchSpace({"y": Uniform(0.0, 2.0), "x": Uniform(0.0, 1.0)})
    assert a == b and hash(a) == hash(b)
    # the order names the unit cube's axes: the same point gives other values in `swapped`
    assert a.from_unit((1.0, 0.0)) != swapped.from_unit((1.0, 0.0))
    assert a != swapped


# -- the unit cube ------------------------------------------------------------------------------


def small() -> SearchSpace:
    return SearchSpace(
        {
            "lr": LogUniform(1e-4, 1.0),
            "epochs": Fixed(10),
            "units": IntUniform(2, 4),
            "act": Choice(["relu", "tanh"]),
        }
    )


def test_from_unit_reads_one_coordinate_per_free_dimension_in_order():
    params = small().from_unit((0.5, 0.5, 0.75))
    assert params == {"lr": pytest.approx(1e-2), "epochs": 10, "units": 3, "act": "tanh"}
    assert list(params) == ["lr", "epochs", "units", "act"]


def test_to_unit_gives_the_coordinates_of_a_configuration():
    unit = small().to_unit({"lr": 1e-3, "epochs": 10, "units": 4, "act": "relu"})
    assert unit == pytest.approx((0.25, 5 / 6, 0.25))


@given(st.tuples(st.floats(0, 1), st.floats(0, 1), st.floats(0, 1)))
def test_every_unit_point_gives_a_legal_configuration_that_maps_back_to_itself(unit):
    space = small()
    params = space.from_unit(unit)
    space.validate(params)
    assert space.from_unit(space.to_unit(params)) == params


def test_from_unit_needs_one_coordinate_per_free_dimension():
    with pytest.raises(
        ValueError, match=exactly("SearchSpace: a unit point needs 3 coordinates, got 2")
    ):
        small().from_unit((0.5, 0.5))


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            {"lr": 1e-3, "units": 3, "act": "relu"},
            "params: names must match the space ['lr', 'epochs', 'units', 'act']; "
            "missing ['epochs'], unknown []",
        ),
        (
            {"lr": 1e-3, "epochs": 10, "units": 3, "act": "relu", "wd": 0.1},
            "params: names must match the space ['lr', 'epochs', 'units', 'act']; "
            "missing [], unknown ['wd']",
        ),
        (
            {"lr": 1e-3, "epochs": 10, "units": 5, "act": "relu"},
            "params.units: must be an integer in [2, 4], got 5",
        ),
        (
            {"lr": 0.0, "epochs": 10, "units": 3, "act": "relu"},
            "params.lr: must be a number in [0.0001, 1.0], got 0.0",
        ),
        (
            {"lr": 1e-3, "epochs": 11, "units": 3, "act": "relu"},
            "params.epochs: must be the fixed value 10, got 11",
        ),
        (
            {"lr": 1e-3, "epochs": 10, "units": 3, "act": "gelu"},
            "params.act: must be one of ['relu', 'tanh'], got 'gelu'",
        ),
    ],
)
def test_validate_names_the_key_the_allowed_values_and_the_bad_value(params, message):
    with pytest.raises(ValueError, match=exactly(message)):
        small().validate(params)


# -- bad config ---------------------------------------------------------------------------------

BAD_CONFIGS = [
    (
        {"lr": {"scale": "log", "low": 0, "high": 1}},
        "space.lr: low must be > 0 on a log scale, got 0",
    ),
    (
        {"momentum": {"scale": "one_minus_log", "low": 0.9, "high": 1}},
        "space.momentum: high must be in (0, 1) on a 1 - beta scale, got 1",
    ),
    (
        {"units": {"scale": "int", "low": 100, "high": 50}},
        "space.units: low must be <= high, got low=100, high=50",
    ),
    (
        {"units": {"scale": "int", "low": 50.5, "high": 100}},
        "space.units: low must be an integer, got 50.5",
    ),
    ({"act": {"choice": []}}, "space.act: options must not be empty, got []"),
    (
        {"act": {"choice": ["relu", "tanh", "relu"]}},
        "space.act: options must be distinct, got ['relu', 'tanh', 'relu']",
    ),
    (
        {"act": ["relu", "tanh"]},
        "space.act: a list is not a dimension; write {choice = ['relu', 'tanh']}, "
        "got ['relu', 'tanh']",
    ),
    (
        {"lr": {"scale": "log", "low": 1e-4, "high": 1, "step": 2}},
        "space.lr: unknown key 'step'; allowed here: ['high', 'low', 'scale']",
    ),
    (
        {"act": {"choice": ["relu"], "default": "relu"}},
        "space.act: unknown key 'default'; allowed here: ['choice']",
    ),
    (
        {"epochs": {"fixed": 10, "scale": "int"}},
        "space.epochs: unknown key 'scale'; allowed here: ['fixed']",
    ),
    (
        {"lr": {"low": 1e-4, "high": 1}},
        "space.lr: a dimension needs 'scale' (with low and high), 'choice' or 'fixed', "
        "got {'low': 0.0001, 'high': 1}",
    ),
    (
        {"lr": {"scale": "exp", "low": 1e-4, "high": 1}},
        "space.lr: scale must be one of ['int', 'int_log', 'linear', 'log', 'one_minus_log'], "
        "got 'exp'",
    ),
    ({"lr": {"scale": "log", "low": 1e-4}}, "space.lr: scale 'log' needs 'high'"),
    ({"learning rate": 0.1}, "space: names must be identifiers, got 'learning rate'"),
]


@pytest.mark.parametrize(("config", "message"), BAD_CONFIGS, ids=[m for _, m in BAD_CONFIGS])
def test_bad_config_raises_value_error_with_the_key_path(config, message):
    with pytest.raises(ValueError, match=exactly(message)):
        SearchSpace.from_config(config)


def test_the_key_path_starts_with_the_owner_the_config_reader_gives():
    with pytest.raises(
        ValueError, match=exactly("study.space.lr: low must be > 0 on a log scale, got 0")
    ):
        SearchSpace.from_config({"lr": {"scale": "log", "low": 0, "high": 1}}, owner="study.space")


def test_a_space_must_be_a_mapping():
    with pytest.raises(
        ValueError, match=exactly("space: must be a mapping of name -> dimension, got ['lr']")
    ):
        SearchSpace(["lr"])


def test_values_of_different_types_are_different_dimensions() -> None:
    from caviar.space import Choice, Fixed

    assert Choice([1, 2]) != Choice([1.0, 2.0]) and Choice([1, 2]) == Choice([1, 2])
    assert Fixed(1) != Fixed(True) and Fixed(1) != Fixed(1.0) and Fixed(1) == Fixed(1)
    assert hash(Choice([True, False])) == hash(Choice([True, False]))
    assert SearchSpace({"a": Choice([1, 2])}) != SearchSpace({"a": Choice([1.0, 2.0])})
