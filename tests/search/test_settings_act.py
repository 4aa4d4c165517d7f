"""A config is refused when part of it could never act, before anything trains: a combination of
values a rule across hyperparameters forbids (trials drawn there would fail at run time), a key
the chosen sampler or dataset never reads, a hyperparameter the engine never reads under the
space's values, a halving rung past the last epoch. A config read back from a study (every key
written, perhaps by an older caviar) is not refused for unread keys. Messages written by hand."""

from __future__ import annotations

import re
from typing import Any

import pytest

from caviar.core.errors import InvalidValue
from caviar.search.config import config_from_mapping

LR = {"scale": "log", "low": 1e-3, "high": 1e-1}


def config(space: dict[str, Any] | None = None, **sections: dict[str, Any]) -> dict[str, Any]:
    raw: dict[str, Any] = {"space": {"lr": LR, "epochs": 2, **(space or {})}}
    raw["search"] = {"trials": 4, **sections.pop("search", {})}
    raw.update(sections)
    return raw


def exactly(message: str) -> str:
    return "^" + re.escape(message) + "$"


# --- combinations a rule across hyperparameters forbids ---------------------------------------

#: name: (the space's hyperparameters, the message); the three corners the check used to try
#: (every free value at its low end, middle, high end) miss each of these combinations
FORBIDDEN_COMBINATIONS = {
    "batch norm on a batch of one, among choices": (
        {"batch_norm": {"choice": [False, True]}, "batch_size": {"choice": [1, 64]}},
        "space.batch_size (with batch_norm): must be an integer in [2, inf), got 1: the space "
        "holds batch_norm = true with batch_size = 1, so the trials drawn there would fail; "
        "narrow space.batch_size",
    ),
    "the choice's order reversed": (
        {"batch_norm": {"choice": [True, False]}, "batch_size": {"choice": [64, 1]}},
        "space.batch_size (with batch_norm): must be an integer in [2, inf), got 1: the space "
        "holds batch_norm = true with batch_size = 1, so the trials drawn there would fail; "
        "narrow space.batch_size",
    ),
    "batch norm fixed on, a range of batch sizes from one": (
        {"batch_norm": True, "batch_size": {"scale": "int", "low": 1, "high": 64}},
        "space.batch_size (with batch_norm): must be an integer in [2, inf), got 1: the space "
        "holds batch_norm = true with batch_size = 1, so the trials drawn there would fail; "
        "narrow space.batch_size",
    ),
    "a decay factor above one for step decay, among other decays": (
        {
            "lr_decay": {"choice": ["inverse_time", "step", "none"]},
            "decay_rate": {"scale": "log", "low": 0.1, "high": 2.0},
        },
        "space.decay_rate (with 'step' decay): must be a number in (0, 1], got 2.0: the space "
        'holds lr_decay = "step" with decay_rate = 2.0, so the trials drawn there would fail; '
        "narrow space.decay_rate",
    ),
}


@pytest.mark.parametrize(
    ("space", "message"), FORBIDDEN_COMBINATIONS.values(), ids=FORBIDDEN_COMBINATIONS
)
def test_a_combination_no_trial_can_train_is_refused(space: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidValue, match=exactly(message)):
        config_from_mapping(config(space))


@pytest.mark.parametrize(
    "space",
    [
        {"batch_norm": {"choice": [False, True]}, "batch_size": {"choice": [2, 64]}},
        {"batch_norm": False, "batch_size": {"choice": [1, 64]}},
        {
            "lr_decay": {"choice": ["inverse_time", "none"]},
            "decay_rate": {"scale": "log", "low": 0.1, "high": 5},
        },
        {"lr_decay": "exponential", "decay_rate": {"scale": "log", "low": 0.1, "high": 1.0}},
    ],
)
def test_combinations_that_all_train_are_accepted(space: dict[str, Any]) -> None:
    config_from_mapping(config(space))


# --- keys the sampler or the dataset never reads ----------------------------------------------

UNREAD_KEYS = {
    "per_round with random search": (
        {"search": {"sampler": "random", "trials": 4, "per_round": [2, 2]}},
        "search.per_round: only read when sampler is 'coarse_to_fine', but search.sampler is "
        "'random', so it would change nothing; remove it or change search.sampler",
    ),
    "rounds with a grid": (
        {"search": {"sampler": "grid", "trials": None, "rounds": 4}},
        "search.rounds: only read when sampler is 'coarse_to_fine', but search.sampler is "
        "'grid', so it would change nothing; remove it or change search.sampler",
    ),
    "points_per_dim with coarse to fine": (
        {"search": {"sampler": "coarse_to_fine", "points_per_dim": 7}},
        "search.points_per_dim: only read when sampler is 'grid', but search.sampler is "
        "'coarse_to_fine', so it would change nothing; remove it or change search.sampler",
    ),
    "a label column for an embedded dataset": (
        {"data": {"dataset": "digits", "label_column": "y"}},
        "data.label_column: only read when dataset is a .csv file, but data.dataset is "
        "'digits', so it would change nothing; remove it or change data.dataset",
    ),
    "a cache folder for data that is never downloaded": (
        {"data": {"dataset": "digits", "cache_dir": "/tmp/somewhere"}},
        "data.cache_dir: only read when dataset is one of 'mnist', 'fashion-mnist', but "
        "data.dataset is 'digits', so it would change nothing; remove it or change data.dataset",
    ),
}


@pytest.mark.parametrize(("sections", "message"), UNREAD_KEYS.values(), ids=UNREAD_KEYS)
def test_a_key_that_is_never_read_is_refused(sections: dict[str, Any], message: str) -> None:
    raw = config(**sections)
    raw["search"] = {k: v for k, v in raw["search"].items() if v is not None}
    with pytest.raises(InvalidValue, match=exactly(message)):
        config_from_mapping(raw)


def test_a_key_at_its_default_is_not_counted_as_given() -> None:
    """``to_dict`` writes every key: a config saved that way reads back."""
    first = config_from_mapping(config())
    assert config_from_mapping(first.to_dict()) == first
    config_from_mapping(config(search={"rounds": 3, "keep": 0.25}, data={"label_column": "label"}))


def test_a_stored_config_is_not_refused_for_keys_it_never_read() -> None:
    """A study made before this check holds per_round with random search: it must still load."""
    raw = config(search={"per_round": [2, 2]}, space={"beta2": 0.5, "optimizer": "sgd"})
    stored = config_from_mapping(raw, stored=True)
    assert stored.search.per_round == (2, 2)
    assert stored.space["beta2"].from_unit(0.5) == 0.5


def test_a_coarse_to_fine_key_with_coarse_to_fine_is_read() -> None:
    raw = config(search={"sampler": "coarse_to_fine", "rounds": 2, "per_round": [2, 2]})
    raw["search"].pop("trials")
    assert config_from_mapping(raw).per_round() == [2, 2]


# --- hyperparameters the engine never reads under the space's values -------------------------

UNREAD_HYPERPARAMETERS = {
    "beta2 with plain gradient descent": (
        {"optimizer": "sgd", "beta2": 0.99},
        'space.beta2: only read when optimizer is "rmsprop" or "adam", but space.optimizer is '
        '"sgd", so it would change nothing; remove it or change space.optimizer',
    ),
    "beta1 searched with RMSprop": (
        {"optimizer": "rmsprop", "beta1": {"scale": "one_minus_log", "low": 0.8, "high": 0.99}},
        'space.beta1: only read when optimizer is "momentum" or "adam", but space.optimizer is '
        '"rmsprop", so it would change nothing; remove it or change space.optimizer',
    ),
    "eps among optimizers none of which reads it": (
        {"optimizer": {"choice": ["sgd", "momentum"]}, "eps": 1e-4},
        'space.eps: only read when optimizer is "rmsprop" or "adam", but space.optimizer is '
        '{"choice": ["sgd", "momentum"]}, so it would change nothing; remove it or change '
        "space.optimizer",
    ),
    "a batch norm setting without batch norm (its default)": (
        {"bn_momentum": 0.99},
        "space.bn_momentum: only read when batch_norm is true, but space.batch_norm is false "
        "(its default), so it would change nothing; remove it or change space.batch_norm",
    ),
    "init_std with He initialisation": (
        {"init": "he", "init_std": 0.1},
        'space.init_std: only read when init is "std", but space.init is "he", so it would '
        "change nothing; remove it or change space.init",
    ),
    "decay_every without step decay": (
        {"lr_decay": {"choice": ["none", "exponential"]}, "decay_every": 5},
        'space.decay_every: only read when lr_decay is "step", but space.lr_decay is '
        '{"choice": ["none", "exponential"]}, so it would change nothing; remove it or change '
        "space.lr_decay",
    ),
    "a decay rate without decay": (
        {"decay_rate": 0.5},
        'space.decay_rate: only read when lr_decay is "inverse_time" or "exponential" or '
        '"step", but space.lr_decay is "none" (its default), so it would change nothing; remove '
        "it or change space.lr_decay",
    ),
}


@pytest.mark.parametrize(
    ("space", "message"), UNREAD_HYPERPARAMETERS.values(), ids=UNREAD_HYPERPARAMETERS
)
def test_a_hyperparameter_the_engine_never_reads_is_refused(
    space: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidValue, match=exactly(message)):
        config_from_mapping(config(space))


@pytest.mark.parametrize(
    "space",
    [
        {"optimizer": {"choice": ["sgd", "adam"]}, "beta2": 0.99},  # read by the adam trials
        {"batch_norm": {"choice": [False, True]}, "bn_eps": 1e-3},
        {"init": "std", "init_std": 0.1},
        {"lr_decay": "step", "decay_every": 1, "decay_rate": 0.5},
        {"optimizer": "sgd", "beta2": 0.999},  # its default: harmless, and what to_dict writes
    ],
)
def test_a_hyperparameter_read_by_some_trials_is_accepted(space: dict[str, Any]) -> None:
    config_from_mapping(config(space))


# --- halving whose first rung is never reached ------------------------------------------------

HALVING = {
    "min_epochs past the epochs": (
        {"epochs": 2},
        {"min_epochs": 100},
        "search.halving: its first rung, at epoch 100, is never reached: trials train at most 2 "
        "epochs (space.epochs), and halving judges a member only before its last epoch; give "
        "min_epochs < 2, or more epochs",
    ),
    "min_epochs at the last epoch": (
        {"epochs": {"scale": "int", "low": 1, "high": 3}},
        {"min_epochs": 3, "eta": 2},
        "search.halving: its first rung, at epoch 3, is never reached: trials train at most 3 "
        "epochs (space.epochs), and halving judges a member only before its last epoch; give "
        "min_epochs < 3, or more epochs",
    ),
    "one epoch a trial": (
        {"epochs": 1},
        True,
        "search.halving: its first rung, at epoch 1, is never reached: trials train at most 1 "
        "epoch (space.epochs), and halving judges a member only before its last epoch; halving "
        "needs trials of 2 epochs or more",
    ),
}


@pytest.mark.parametrize(("space", "halving", "message"), HALVING.values(), ids=HALVING)
def test_halving_that_never_judges_is_refused(
    space: dict[str, Any], halving: Any, message: str
) -> None:
    with pytest.raises(InvalidValue, match=exactly(message)):
        config_from_mapping(config(space, search={"halving": halving}))


def test_halving_reached_by_the_longest_trials_is_accepted() -> None:
    epochs = {"scale": "int", "low": 1, "high": 4}  # the 4-epoch trials are judged at 3
    raw = config({"epochs": epochs}, search={"halving": {"min_epochs": 3}})
    assert config_from_mapping(raw).halving() is not None
