"""The engine reads each hyperparameter of ``READ_ONLY_WITH`` exactly where the table says: two
members that differ only in it train to the same bits under every other value of the deciding
hyperparameter, and apart under each value the table names. The config refuses a setting the
engine would never read by this table, so a wrong entry would refuse a good config or let a
useless one through."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
import torch
from _nn_support import assert_states_equal, curve_array

from caviar.nn import MemberSpec, Population
from caviar.nn.spec import HYPERPARAMETERS, READ_ONLY_WITH

#: a value far from the base member's, so that reading it changes the training
ALTERED = {
    "beta1": 0.5,
    "beta2": 0.9,
    "eps": 0.1,
    "init_std": 0.5,
    "decay_rate": 0.25,
    "decay_every": 2,
    "bn_momentum": 0.5,
    "bn_eps": 0.1,
}

#: every value the deciding hyperparameters can take
DECIDERS = {
    "optimizer": ("sgd", "momentum", "rmsprop", "adam"),
    "init": ("he", "xavier", "std"),
    "lr_decay": ("none", "inverse_time", "exponential", "step"),
    "batch_norm": (False, True),
}

CASES = [
    pytest.param(name, value, id=f"{name} with {decider} = {value}")
    for name, (decider, _) in READ_ONLY_WITH.items()
    for value in DECIDERS[decider]
]


def test_the_tables_cover_every_entry() -> None:
    assert set(ALTERED) == set(READ_ONLY_WITH)
    for decider, values in DECIDERS.items():
        assert all(HYPERPARAMETERS[decider].allows(v) for v in values)


@pytest.mark.parametrize(("name", "value"), CASES)
def test_a_hyperparameter_is_read_where_the_table_says(name: str, value: Any, data) -> None:
    decider, read_with = READ_ONLY_WITH[name]
    # the defaults (a factor of 1, a step every 10 epochs) would hide the decay in 3 epochs
    base = MemberSpec(
        seed=5,
        n_layers=1,
        hidden_units=6,
        batch_size=30,
        epochs=3,
        lr=0.05,
        decay_rate=0.5,
        decay_every=1,
    )
    base = replace(base, **{decider: value})
    other = replace(base, **{name: ALTERED[name]})
    results = Population([base, other], dtype=torch.float64, device="cpu").fit(
        data, keep_states=True
    )
    same_curve = torch.equal(curve_array(results[0]), curve_array(results[1]))
    if value in read_with:
        assert not same_curve, f"{name} is read with {decider} = {value}"
    else:
        assert same_curve, f"{name} is not read with {decider} = {value}"
        assert_states_equal(results[0].state, results[1].state, exact=True)
