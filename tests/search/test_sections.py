"""The config's sections and the samplers share their rules and defaults: the same value gets
the same words from ``[search]`` and from the sampler, and a key left out takes the sampler's
default. Every expected value and message is written out by hand."""

from __future__ import annotations

import re
from typing import Any

import pytest

from caviar.samplers import CoarseToFineSampler, GridSampler
from caviar.search.config import config_from_mapping

SPACE = {"lr": {"scale": "log", "low": 1e-4, "high": 1e-1}}


def search(**keys: Any) -> dict[str, Any]:
    return {"space": SPACE, "search": keys}


def exactly(message: str) -> str:
    return "^" + re.escape(message) + "$"


def test_coarse_to_fine_defaults_are_the_samplers() -> None:
    config = config_from_mapping(search(sampler="coarse_to_fine", trials=7))
    assert (config.search.rounds, config.search.keep, config.search.margin) == (3, 0.25, 0.1)
    sampler = config.sampler()
    assert isinstance(sampler, CoarseToFineSampler)
    assert (sampler.rounds, sampler.per_round, sampler.keep, sampler.margin) == (
        3,
        [3, 2, 2],
        0.25,
        0.1,
    )
    plain = CoarseToFineSampler()
    assert (plain.rounds, plain.keep, plain.margin) == (3, 0.25, 0.1)


def test_grid_and_storage_defaults() -> None:
    config = config_from_mapping(search(sampler="grid"))
    assert config.search.points_per_dim == 5 and GridSampler().points_per_dim == 5
    assert config.n_trials() == 5
    assert config.study.storage == "caviar.db"


# the same bad value, the same words: once from the config, once from the sampler
SHARED = {
    "rounds 0": ("rounds", 0, "must be an integer in [1, inf), got 0"),
    "keep 1.5": ("keep", 1.5, "must be a count in [1, inf) or a fraction in (0, 1), got 1.5"),
    "keep 0": ("keep", 0, "must be a count in [1, inf) or a fraction in (0, 1), got 0"),
    "keep 'all'": ("keep", "all", "must be a count in [1, inf) or a fraction in (0, 1), got 'all'"),
    "margin 1.5": ("margin", 1.5, "must be a number in [0, 1], got 1.5"),
}


@pytest.mark.parametrize(("key", "value", "reason"), SHARED.values(), ids=SHARED)
def test_a_coarse_to_fine_setting_gets_the_same_words_from_config_and_sampler(
    key: str, value: Any, reason: str
) -> None:
    with pytest.raises(ValueError, match=exactly(f"search.{key}: {reason}")):
        config_from_mapping(search(sampler="coarse_to_fine", trials=8, **{key: value}))
    with pytest.raises(ValueError, match=exactly(f"CoarseToFineSampler.{key}: {reason}")):
        CoarseToFineSampler(**{key: value})


def test_a_bad_trial_count_in_per_round_is_named_by_its_index() -> None:
    with pytest.raises(
        ValueError, match=exactly("search.per_round[1]: must be an integer in [1, inf), got 0")
    ):
        config_from_mapping(search(sampler="coarse_to_fine", rounds=2, per_round=[4, 0]))
    with pytest.raises(
        ValueError,
        match=exactly("CoarseToFineSampler.per_round[1]: must be an integer in [1, inf), got 0"),
    ):
        CoarseToFineSampler(rounds=2, per_round=[4, 0])


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        (
            {"per_round": []},
            "search.per_round: must be a non-empty list of integers in [1, inf), one per round, "
            "got []",
        ),
        (
            {"per_round": 4},
            "search.per_round: must be a non-empty list of integers in [1, inf), one per round, "
            "got 4",
        ),
        (
            {"rounds": 3, "per_round": [4, 4]},
            "search.per_round: must have one count per round (3), got [4, 4]",
        ),
        (  # the length is named before the sum
            {"rounds": 3, "per_round": [4, 4], "trials": 10},
            "search.per_round: must have one count per round (3), got [4, 4]",
        ),
        (
            {"rounds": 2, "per_round": [4, 4], "trials": 10},
            "search.trials: must equal the sum of per_round [4, 4] (8); leave trials out, or "
            "per_round (then the trials are split evenly over the rounds), got 10",
        ),
        (
            {"rounds": 2, "per_round": [4, 2], "keep": 3},
            "search.keep (a count, at most the smallest round): must be an integer in [1, 2], "
            "got 3",
        ),
        ({"rounds": 3, "trials": 2}, "search.trials: must be an integer >= rounds (3), got 2"),
    ],
)
def test_per_round_is_checked_once_with_one_message(keys: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=exactly(message)):
        config_from_mapping(search(sampler="coarse_to_fine", **keys))


def test_per_round_given_sets_the_trial_count() -> None:
    config = config_from_mapping(search(sampler="coarse_to_fine", rounds=2, per_round=[6, 2]))
    assert config.search.per_round == (6, 2) and config.n_trials() == 8


@pytest.mark.parametrize(
    ("points", "message"),
    [
        (
            0,
            "search.points_per_dim: must be an integer in [1, inf), or a table of one such "
            "integer per searched name, got 0",
        ),
        ({"lr": 0}, "search.points_per_dim.lr: must be an integer in [1, inf), got 0"),
    ],
)
def test_points_per_dim_gets_the_samplers_words(points: Any, message: str) -> None:
    with pytest.raises(ValueError, match=exactly(message)):
        config_from_mapping(search(sampler="grid", points_per_dim=points))
    with pytest.raises(ValueError, match=exactly(message.replace("search.", "GridSampler.", 1))):
        GridSampler(points)


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        (True, {"min_epochs": 1, "eta": 3}),
        ({"eta": 2}, {"min_epochs": 1, "eta": 2}),
        ({"min_epochs": 3}, {"min_epochs": 3, "eta": 3}),
        ({}, {"min_epochs": 1, "eta": 3}),
        (False, None),
        (None, None),
    ],
)
def test_halving_is_stored_as_a_whole_table(given: Any, stored: Any) -> None:
    config = config_from_mapping(search(trials=2, halving=given))
    assert config.search.halving == stored
    assert config_from_mapping(config.to_dict()).search.halving == stored


@pytest.mark.parametrize(("given", "stored"), [("auto", None), (None, None), (3, 3)])
def test_threads_auto_is_kept_as_nothing(given: Any, stored: Any) -> None:
    config = config_from_mapping({"study": {"threads": given}, "search": {"trials": 2}})
    assert config.study.threads == stored
    assert config_from_mapping(config.to_dict()).study.threads == stored


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"search": 3}, "search: must be a table of keys, got 3"),
        (
            {"study": {"seed": 1, "sed": 2}},
            "study.sed: unknown key; study takes ['compile', 'cuda_graphs', 'device', 'dtype', "
            "'model', 'name', 'seed', 'storage', 'threads']; did you mean 'seed'?",
        ),
    ],
)
def test_a_section_is_a_table_of_its_keys(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=exactly(message)):
        config_from_mapping(raw)
