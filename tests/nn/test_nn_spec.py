"""MemberSpec: every bad value is a ValueError naming the hyperparameter, the allowed values and
the bad value; the learning-rate schedules match the course's formulas."""

from __future__ import annotations

import math
import re

import pytest

from caviar.core.errors import InvalidValue
from caviar.nn import HYPERPARAMETERS, MemberSpec

# name: (spec fields, the message it must raise, as a literal string)
BAD_VALUES = {
    "lr_zero": ({"lr": 0.0}, "lr: must be a number in (0, inf), got 0.0"),
    "lr_negative": ({"lr": -0.1}, "lr: must be a number in (0, inf), got -0.1"),
    "lr_nan": ({"lr": math.nan}, "lr: must be a number in (0, inf), got nan"),
    "lr_bool": ({"lr": True}, "lr: must be a number in (0, inf), got True"),
    "beta1_one": ({"beta1": 1}, "beta1: must be a number in [0, 1), got 1.0"),
    "beta2_negative": ({"beta2": -0.5}, "beta2: must be a number in [0, 1), got -0.5"),
    "eps_zero": ({"eps": 0.0}, "eps: must be a number in (0, inf), got 0.0"),
    "dropout_one": ({"dropout": 1.0}, "dropout: must be a number in [0, 1), got 1.0"),
    "weight_decay_negative": (
        {"weight_decay": -1e-3},
        "weight_decay: must be a number in [0, inf), got -0.001",
    ),
    "unknown_optimizer": (
        {"optimizer": "nesterov"},
        "optimizer: must be one of ['sgd', 'momentum', 'rmsprop', 'adam'], got 'nesterov'",
    ),
    "unknown_activation": (
        {"activation": "relu6"},
        "activation: must be one of ['relu', 'tanh', 'sigmoid'], got 'relu6'",
    ),
    "unknown_init": (
        {"init": "lecun"},
        "init: must be one of ['he', 'xavier', 'std'], got 'lecun'",
    ),
    "hidden_units_zero": (
        {"hidden_units": 0},
        "hidden_units: must be an integer in [1, inf), got 0",
    ),
    "hidden_units_float": (
        {"hidden_units": 2.5},
        "hidden_units: must be an integer in [1, inf), got 2.5",
    ),
    "n_layers_zero": ({"n_layers": 0}, "n_layers: must be an integer in [1, inf), got 0"),
    "epochs_zero": ({"epochs": 0}, "epochs: must be an integer in [1, inf), got 0"),
    "batch_norm_not_bool": ({"batch_norm": 1}, "batch_norm: must be true or false, got 1"),
    "batch_size_one_with_batch_norm": (
        {"batch_size": 1, "batch_norm": True},
        "batch_size (with batch_norm): must be an integer in [2, inf), got 1",
    ),
    "exponential_decay_rate_above_one": (
        {"lr_decay": "exponential", "decay_rate": 1.5},
        "decay_rate (with 'exponential' decay): must be a number in (0, 1], got 1.5",
    ),
    "step_decay_rate_zero": (
        {"lr_decay": "step", "decay_rate": 0.0},
        "decay_rate (with 'step' decay): must be a number in (0, 1], got 0.0",
    ),
    "bn_momentum_one": (
        {"bn_momentum": 1.0},
        "bn_momentum: must be a number in [0, 1), got 1.0",
    ),
    "seed_negative": ({"seed": -1}, "seed: must be an integer in [0, 2**63), got -1"),
}


@pytest.mark.parametrize("name", list(BAD_VALUES))
def test_bad_value_names_the_hyperparameter_the_range_and_the_value(name):
    fields, message = BAD_VALUES[name]
    with pytest.raises(ValueError, match=re.escape(f"MemberSpec.{message}")) as error:
        MemberSpec(**fields)
    assert isinstance(error.value, InvalidValue)


def test_edge_values_that_are_allowed():
    spec = MemberSpec(
        beta1=0.0,
        dropout=0.0,
        weight_decay=0.0,
        hidden_units=1,
        batch_size=2,
        batch_norm=True,
        lr_decay="exponential",
        decay_rate=1.0,
        lr=1,  # an int is accepted for a float hyperparameter, and stored as a float
    )
    assert spec.lr == 1.0 and isinstance(spec.lr, float)
    # a decay_rate above 1 is fine for inverse_time (it is a rate there, not a factor)
    assert MemberSpec(lr_decay="inverse_time", decay_rate=3.0).decay_rate == 3.0
    assert MemberSpec(batch_size=1).batch_size == 1  # without batch norm


def test_from_params_builds_the_spec():
    spec = MemberSpec.from_params({"lr": 0.1, "hidden_units": 20}, seed=4)
    assert spec == MemberSpec(seed=4, lr=0.1, hidden_units=20)


def test_from_params_with_an_unknown_name_lists_the_known_names():
    with pytest.raises(ValueError, match=r"unknown hyperparameter 'learning_rate'") as error:
        MemberSpec.from_params({"learning_rate": 0.1}, seed=0, owner="space")
    message = str(error.value)
    assert message.startswith("space: ")
    assert str(sorted(HYPERPARAMETERS)) in message
    for name in ("lr", "beta1", "hidden_units", "dropout"):
        assert repr(name) in message


def test_from_params_names_the_owner_of_a_bad_value():
    with pytest.raises(
        ValueError, match=re.escape("trial 3.lr: must be a number in (0, inf), got -1.0")
    ):
        MemberSpec.from_params({"lr": -1.0}, seed=0, owner="trial 3")


def test_every_spec_field_but_the_seed_is_a_declared_hyperparameter():
    names = [f for f in MemberSpec.__dataclass_fields__ if f != "seed"]
    assert sorted(names) == sorted(HYPERPARAMETERS)
    for name, rule in HYPERPARAMETERS.items():
        assert getattr(MemberSpec(), name) == rule.default, name


# name: (spec fields, learning rate of epochs 0..5 by hand)
SCHEDULES = {
    "none": ({"lr": 0.1}, [0.1] * 6),
    "inverse_time": (
        {"lr": 0.1, "lr_decay": "inverse_time", "decay_rate": 0.5},
        [0.1 / (1 + 0.5 * e) for e in range(6)],  # 0.1, 0.0667, 0.05, ...
    ),
    "exponential": (
        {"lr": 0.2, "lr_decay": "exponential", "decay_rate": 0.9},
        [0.2, 0.18, 0.162, 0.1458, 0.13122, 0.118098],
    ),
    "step": (
        {"lr": 0.4, "lr_decay": "step", "decay_rate": 0.5, "decay_every": 2},
        [0.4, 0.4, 0.2, 0.2, 0.1, 0.1],
    ),
}


@pytest.mark.parametrize("name", list(SCHEDULES))
def test_lr_at_follows_the_schedule(name):
    fields, expected = SCHEDULES[name]
    spec = MemberSpec(**fields)
    assert [spec.lr_at(e) for e in range(6)] == pytest.approx(expected, rel=1e-14)


def test_init_stds_and_layer_sizes():
    spec = MemberSpec(hidden_units=50, n_layers=3, init="he")
    assert spec.layer_sizes(784, 10) == [784, 50, 50, 50, 10]
    assert spec.init_stds(784, 10) == pytest.approx(
        [math.sqrt(2 / 784), math.sqrt(2 / 50), math.sqrt(2 / 50), math.sqrt(2 / 50)]
    )
