"""The study config: defaults, the examples, and one message per kind of mistake."""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path

import pytest

from caviar.nn import HYPERPARAMETERS
from caviar.samplers import CoarseToFineSampler, GridSampler, RandomSampler
from caviar.search.config import config_from_mapping, load_config
from caviar.search.demo import DEMO
from caviar.space import Fixed, LogUniform

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_unspecified_hyperparameters_take_the_engine_defaults_as_fixed_values() -> None:
    config = config_from_mapping(
        {"space": {"lr": {"scale": "log", "low": 1e-4, "high": 1e-1}}, "search": {"trials": 3}}
    )
    assert config.space.free_names == ("lr",)
    assert config.space["lr"] == LogUniform(1e-4, 1e-1)
    assert set(config.space) == set(HYPERPARAMETERS)
    assert config.space["optimizer"] == Fixed("adam")
    assert config.space["hidden_units"] == Fixed(100)
    assert config.name == "demo" and config.study.storage == "caviar.db"


def test_the_demo_file_is_the_embedded_demo() -> None:
    with open(EXAMPLES / "demo.toml", "rb") as f:
        assert tomllib.load(f) == DEMO


SEARCHES = [p for p in sorted(EXAMPLES.glob("*.*")) if p.suffix in (".toml", ".yaml")]


@pytest.mark.parametrize(
    "path", [p for p in SEARCHES if not p.stem.startswith("panda")], ids=lambda p: p.name
)
def test_every_example_config_loads(path: Path) -> None:
    config = load_config(path)
    assert config.n_trials() >= 1
    assert config.space.n_free >= 2


def test_the_panda_example_is_one_model() -> None:
    from caviar.panda.epochs import panda_config

    config = panda_config(EXAMPLES / "panda.toml")
    assert config.space.n_free == 0 and config.name == "panda"


def test_the_book_example_is_the_books_search() -> None:
    config = load_config(EXAMPLES / "book.toml")
    assert config.data.dataset == "mnist" and config.data.train_size == 500
    assert config.data.validation == 0.2
    assert config.space["lr"] == LogUniform(1e-6, 1e-2)
    assert config.space["weight_decay"] == LogUniform(1e-8, 1e-4)
    fixed = {
        "hidden_units": 100,
        "n_layers": 6,
        "optimizer": "sgd",
        "batch_size": 100,
        "epochs": 50,
    }
    assert {k: config.space[k].from_unit(0.5) for k in fixed} == fixed
    assert isinstance(config.sampler(), RandomSampler) and config.n_trials() == 100


def test_yaml_and_toml_give_the_same_config(tmp_path: Path) -> None:
    (tmp_path / "a.toml").write_text(
        '[space]\nlr = { scale = "log", low = 1e-4, high = 1e-1 }\n[search]\ntrials = 7\n'
    )
    (tmp_path / "a.yaml").write_text(
        "space:\n  lr: {scale: log, low: 1.0e-4, high: 1.0e-1}\nsearch:\n  trials: 7\n"
    )
    assert load_config(tmp_path / "a.toml") == load_config(tmp_path / "a.yaml")
    assert load_config(tmp_path / "a.toml").name == "a"  # the file's stem


def test_samplers_from_the_search_section() -> None:
    space = {
        "lr": {"scale": "log", "low": 1e-4, "high": 1e-1},
        "dropout": {"scale": "linear", "low": 0.0, "high": 0.5},
    }
    grid = config_from_mapping({"space": space, "search": {"sampler": "grid", "points_per_dim": 4}})
    assert isinstance(grid.sampler(), GridSampler) and grid.n_trials() == 16
    bigger = config_from_mapping(
        {"space": space, "search": {"sampler": "grid", "trials": 50, "points_per_dim": 3}}
    )
    assert bigger.n_trials() == 9  # a budget larger than the grid runs the grid
    with pytest.raises(ValueError, match=r"^search\.trials: a grid of 25 points cut to 5 trials"):
        config_from_mapping({"space": space, "search": {"sampler": "grid", "trials": 5}})
    c2f = config_from_mapping(
        {"space": space, "search": {"sampler": "coarse_to_fine", "trials": 10, "rounds": 3}}
    )
    sampler = c2f.sampler()
    assert isinstance(sampler, CoarseToFineSampler) and sampler.per_round == [4, 3, 3]
    given = config_from_mapping(
        {"space": space, "search": {"sampler": "coarse_to_fine", "rounds": 2, "per_round": [6, 2]}}
    )
    assert given.n_trials() == 8


BAD = {
    "log low zero": (
        {"space": {"lr": {"scale": "log", "low": 0, "high": 1}}},
        r"^space\.lr: low must be > 0 on a log scale, got 0$",
    ),
    "beta outside (0, 1)": (
        {"space": {"beta1": {"scale": "one_minus_log", "low": 0.9, "high": 1.0}}},
        r"^space\.beta1: high must be in \(0, 1\) on a 1 - beta scale, got 1\.0$",
    ),
    "range beyond the engine's": (
        {"space": {"dropout": {"scale": "linear", "low": 0.0, "high": 1.0}}},
        r"^space\.dropout: every value must be a number in \[0, 1\); .* gives 1\.0$",
    ),
    "float scale for an integer": (
        {"space": {"hidden_units": {"scale": "linear", "low": 10, "high": 20}}},
        r"^space\.hidden_units: every value must be an integer in \[1, inf\); .* gives 10\.0$",
    ),
    "bad choice": (
        {"space": {"optimizer": {"choice": ["adam", "lbfgs"]}}},
        r"^space\.optimizer: every value must be one of .* gives 'lbfgs'$",
    ),
    "unknown hyperparameter": (
        {"space": {"learning_rate": 0.1}},
        r"^space\.learning_rate: unknown hyperparameter; known: \[",
    ),
    "unknown section": ({"serch": {}}, r"^serch: unknown section"),
    "unknown key": ({"search": {"trails": 3}}, r"^search\.trails: unknown key"),
    "trials zero": (
        {"search": {"trials": 0}},
        r"^search\.trials: must be an integer in \[1, inf\), got 0$",
    ),
    "tpe, the default, needs trials": (
        {"search": {}},
        r"^search\.trials: must be given for tpe search",
    ),
    "random needs trials": (
        {"search": {"sampler": "random"}},
        r"^search\.trials: must be given for random search",
    ),
    "validation fraction": (
        {"data": {"validation": 1.5}, "search": {"trials": 2}},
        r"^data\.validation: must be a number in \(0, 1\), got 1\.5$",
    ),
    "dtype": (
        {"study": {"dtype": "float16"}, "search": {"trials": 2}},
        r"^study\.dtype: must be one of \['float32', 'float64'\], got 'float16'; did you mean "
        r"'float64'\?$",
    ),
    "per_round length": (
        {"search": {"sampler": "coarse_to_fine", "rounds": 3, "per_round": [4, 4]}},
        r"^search\.per_round: must have one count per round \(3\)",
    ),
    "every trial would fail": (
        {"space": {"lr_decay": "exponential", "decay_rate": 2.0}, "search": {"trials": 2}},
        r"^space\.decay_rate \(with 'exponential' decay\): must be a number in \(0, 1\], got 2\.0 "
        r"\(every trial would fail\)$",
    ),
    "name as a path": (
        {"study": {"name": "../x"}, "search": {"trials": 2}},
        r"^study\.name: must be 1-100 letters",
    ),
    "c2f keep too large": (
        {"search": {"sampler": "coarse_to_fine", "rounds": 2, "trials": 8, "keep": 9}},
        r"^search\.keep \(a count, at most the smallest round\): must be an integer in \[1, 4\], "
        r"got 9$",
    ),
}


@pytest.mark.parametrize("raw, message", BAD.values(), ids=BAD.keys())
def test_bad_configs_name_the_key_path(raw: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        config_from_mapping(raw)


def test_bad_files(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"must be a \.toml, \.yaml or \.yml file"):
        load_config(tmp_path / "study.json")
    with pytest.raises(ValueError, match=r"cannot read"):
        load_config(tmp_path / "missing.toml")
    (tmp_path / "broken.toml").write_text("[space\n")
    with pytest.raises(ValueError, match=r"is not valid TOML"):
        load_config(tmp_path / "broken.toml")


def test_to_dict_round_trips() -> None:
    config = config_from_mapping(copy.deepcopy(DEMO))
    again = config_from_mapping(config.to_dict())
    assert again == config
