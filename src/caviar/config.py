"""The study config: one documented schema, read from TOML, YAML or a mapping.

::

    [study]                    # all optional
    name = "book"              # default: the config file's stem, or "demo"
    storage = "caviar.db"      # SQLite file holding the study
    seed = 0                   # configurations, initial weights, data order and split
    device = "auto"            # auto | cpu | cuda | cuda:N
    dtype = "float32"          # float32 | float64
    threads = "auto"           # CPU threads: auto (the cores other work leaves free) or N

    [data]
    dataset = "mnist"          # mnist | fashion-mnist | digits | path/to/file.npz | file.csv
    data_dir = "..."           # local IDX .gz files (mnist / fashion-mnist): no network
    train_size = 500           # the first N training examples
    test_size = 10000          # the first N test examples
    validation = 0.2           # fraction of the training examples held out, stratified
    label_column = "label"     # csv only

    [space]                    # any engine hyperparameter: a value, or a dimension
    lr = { scale = "log", low = 1e-6, high = 1e-2 }
    beta1 = { scale = "one_minus_log", low = 0.9, high = 0.999 }
    hidden_units = { scale = "int", low = 50, high = 100 }
    activation = { choice = ["relu", "tanh"] }
    epochs = 50

    [search]
    sampler = "random"         # random | grid | coarse_to_fine
    trials = 100               # total trials (grid: taken from the grid)
    population = 0             # the pool's slots, members training at once (0: 16 CPU, 1024 GPU)
    objective = "final"        # validation accuracy at the last epoch, or the "best" epoch
    points_per_dim = 5         # grid: an int, or a table name -> int
    rounds = 3                 # coarse_to_fine: rounds, trials split evenly over them ...
    per_round = [40, 30, 30]   # ... or given per round (their sum is the trial count)
    keep = 0.25                # coarse_to_fine: best trials kept per round (count or fraction)
    margin = 0.1               # coarse_to_fine: box margin, a fraction of the previous box
    timeout = 150              # seconds: no new work after this; unfinished trials requeued
    halving = { min_epochs = 1, eta = 3 }  # successive halving (ASHA) at min_epochs * eta**k
    train_metrics = "pass"     # training loss/accuracy from the epoch's batches, or a "full" pass
    keep_models = 5            # the final state of the best N trials is kept beside the study

Hyperparameters left out of ``[space]`` take the engine's defaults (``caviar.nn.HYPERPARAMETERS``)
and are recorded as fixed values, so every trial carries its complete configuration. Unknown
keys and bad values raise :class:`~caviar.errors.InvalidValue` naming the key path, e.g.
``space.lr: low must be > 0 on a log scale, got 0``.
"""

from __future__ import annotations

import math
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from caviar.errors import InvalidValue, got
from caviar.halving import Halving
from caviar.nn.spec import HYPERPARAMETERS, MemberSpec
from caviar.samplers import CoarseToFineSampler, GridSampler, RandomSampler, Sampler
from caviar.seeding import check_seed
from caviar.space import SearchSpace


@dataclass(frozen=True)
class Key:
    """One config key: its default and the check its value must pass."""

    default: Any
    check: Callable[[str, Any], Any]


def _integer(low: int, high: float = math.inf) -> Callable[[str, Any], int]:
    def check(path: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            bound = f"[{low}, {high}]" if high != math.inf else f">= {low}"
            raise InvalidValue(path, f"must be an integer {bound}, {got(value)}")
        return value

    return check


def _optional(check: Callable[[str, Any], Any]) -> Callable[[str, Any], Any]:
    return lambda path, value: None if value is None else check(path, value)


def _one_of(*options: str) -> Callable[[str, Any], str]:
    def check(path: str, value: Any) -> str:
        if value not in options:
            raise InvalidValue(path, f"must be one of {list(options)}, {got(value)}")
        return str(value)

    return check


def _text(path: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidValue(path, f"must be a non-empty string, {got(value)}")
    return value


def _name(path: str, value: Any) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}", value):
        raise InvalidValue(
            path,
            f"must be 1-100 letters, digits, '.', '_' or '-', not starting with '.', {got(value)}",
        )
    return value


def _fraction(path: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1:
        raise InvalidValue(path, f"must be a number in (0, 1), {got(value)}")
    return float(value)


def _number(path: str, value: Any) -> int | float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidValue(path, f"must be a number, {got(value)}")
    return value


def _positive(path: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < math.inf:
        raise InvalidValue(path, f"must be a number of seconds > 0, {got(value)}")
    return float(value)


def _threads(path: str, value: Any) -> int | None:
    if value == "auto":
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidValue(path, f"must be 'auto' or an integer >= 1, {got(value)}")
    return value


def _halving(path: str, value: Any) -> dict[str, int] | None:
    try:
        halving = Halving.from_config(dict(value) if isinstance(value, Mapping) else value)
    except InvalidValue as e:
        raise InvalidValue(path if e.owner == "search.halving" else e.owner, e.reason) from None
    return None if halving is None else halving.to_config()


def _points(path: str, value: Any) -> int | dict[str, int]:
    if isinstance(value, Mapping):
        return {str(k): _integer(1)(f"{path}.{k}", v) for k, v in value.items()}
    return _integer(1)(path, value)


def _per_round(path: str, value: Any) -> list[int]:
    if not isinstance(value, list) or not value:
        raise InvalidValue(path, f"must be a non-empty list of trial counts, {got(value)}")
    return [_integer(1)(f"{path}[{i}]", v) for i, v in enumerate(value)]


SECTIONS: dict[str, dict[str, Key]] = {
    "study": {
        "name": Key(None, _optional(_name)),
        "storage": Key("caviar.db", _text),
        "seed": Key(0, check_seed),
        "device": Key("auto", _text),
        "dtype": Key("float32", _one_of("float32", "float64")),
        "threads": Key(None, _optional(_threads)),
    },
    "data": {
        "dataset": Key("digits", _text),
        "data_dir": Key(None, _optional(_text)),
        "cache_dir": Key(None, _optional(_text)),
        "train_size": Key(None, _optional(_integer(1))),
        "test_size": Key(None, _optional(_integer(1))),
        "validation": Key(0.2, _fraction),
        "label_column": Key("label", _text),
    },
    "search": {
        "sampler": Key("random", _one_of("random", "grid", "coarse_to_fine")),
        "trials": Key(None, _optional(_integer(1))),
        "population": Key(0, _integer(0)),
        "objective": Key("final", _one_of("final", "best")),
        "points_per_dim": Key(5, _points),
        "rounds": Key(3, _integer(1)),
        "per_round": Key(None, _optional(_per_round)),
        "keep": Key(0.25, _number),
        "margin": Key(0.1, _number),
        "timeout": Key(None, _optional(_positive)),
        "halving": Key(None, _halving),
        "train_metrics": Key("pass", _one_of("pass", "full")),
        "keep_models": Key(5, _integer(0)),
    },
}


def _section(raw: Mapping[str, Any], name: str) -> dict[str, Any]:
    table = raw.get(name, {})
    if not isinstance(table, Mapping):
        raise InvalidValue(name, f"must be a table of keys, {got(table)}")
    keys = SECTIONS[name]
    unknown = sorted(set(table) - set(keys))
    if unknown:
        raise InvalidValue(f"{name}.{unknown[0]}", f"unknown key; {name} takes {sorted(keys)}")
    return {
        k: key.check(f"{name}.{k}", table[k]) if k in table else key.default
        for k, key in keys.items()
    }


def space_from_config(table: Any) -> SearchSpace:
    """The search space: the engine's defaults, overridden by ``table``, each value checked
    against the engine's allowed range (at the bounds of a range, and every choice)."""
    if not isinstance(table, Mapping):
        raise InvalidValue("space", f"must be a table of hyperparameters, {got(table)}")
    unknown = sorted(set(table) - set(HYPERPARAMETERS))
    if unknown:
        raise InvalidValue(
            f"space.{unknown[0]}", f"unknown hyperparameter; known: {sorted(HYPERPARAMETERS)}"
        )
    given = SearchSpace(table, owner="space")
    merged = {name: hp.default for name, hp in HYPERPARAMETERS.items()}
    merged.update(given.to_config())
    space = SearchSpace(merged, owner="space")
    for name, dim in given.items():
        rule = HYPERPARAMETERS[name]
        count = dim.cardinality
        units = dim.grid_units(min(count, 64)) if count is not None else (0.0, 0.5, 1.0)
        values = [dim.from_unit(u) for u in units]
        for value in values:
            try:
                rule.check(value, f"space.{name}")
            except InvalidValue as e:
                raise InvalidValue(
                    f"space.{name}", f"{e.reason} (a value of {dim.to_config()!r})"
                ) from None
    for u in (0.0, 0.5, 1.0):  # the engine's rules across hyperparameters, at three corners
        try:
            MemberSpec.from_params(space.from_unit([u] * space.n_free), seed=0, owner="space")
        except InvalidValue as e:
            raise InvalidValue("space", f"{e.reason} (every trial would fail)") from None
    return space


#: the trial count of a search bounded only by its timeout
UNBOUNDED = 10**9


@dataclass(frozen=True)
class StudyConfig:
    """A validated study config; ``to_dict`` gives back the plain mapping it came from."""

    study: dict[str, Any]
    data: dict[str, Any]
    space: SearchSpace
    search: dict[str, Any]
    source: str = field(default="<mapping>", compare=False)

    @property
    def name(self) -> str:
        return str(self.study["name"])

    @property
    def seed(self) -> int:
        return int(self.study["seed"])

    def sampler(self) -> Sampler:
        """The configured sampler, seeded with the study seed."""
        s = self.search
        if s["sampler"] == "grid":
            return GridSampler(s["points_per_dim"])
        if s["sampler"] == "coarse_to_fine":
            return CoarseToFineSampler(
                rounds=s["rounds"],
                per_round=self.per_round(),
                keep=s["keep"],
                margin=s["margin"],
                seed=self.seed,
            )
        return RandomSampler(self.seed)

    def per_round(self) -> list[int]:
        s = self.search
        if s["per_round"] is not None:
            return list(s["per_round"])
        trials, rounds = s["trials"], s["rounds"]
        return [trials // rounds + (1 if r < trials % rounds else 0) for r in range(rounds)]

    def n_trials(self) -> int:
        """How many trials the study runs in all: the trial count, capped by what the sampler
        can propose (a grid's size, the rounds of coarse to fine)."""
        counts = [self.sampler().capacity(self.space), self.search["trials"]]
        return int(min((c for c in counts if c is not None), default=UNBOUNDED))

    def halving(self) -> Halving | None:
        """The successive-halving schedule, or None when halving is off."""
        return Halving.from_config(self.search["halving"])

    def to_dict(self) -> dict[str, Any]:
        space = {name: self.space[name].to_config() for name in self.space}
        return {
            "study": dict(self.study),
            "data": dict(self.data),
            "space": space,
            "search": dict(self.search),
        }


def config_from_mapping(
    raw: Mapping[str, Any], *, default_name: str = "demo", source: str = "<mapping>"
) -> StudyConfig:
    """Validate a config mapping (the shape a TOML/YAML file gives)."""
    if not isinstance(raw, Mapping):
        raise InvalidValue("config", f"must be a table of sections, {got(raw)}")
    unknown = sorted(set(raw) - {*SECTIONS, "space"})
    if unknown:
        raise InvalidValue(
            unknown[0], f"unknown section; a config has {sorted({*SECTIONS, 'space'})}"
        )
    study, data, search = (_section(raw, name) for name in ("study", "data", "search"))
    study["name"] = study["name"] or default_name
    space = space_from_config(raw.get("space", {}))
    config = StudyConfig(study, data, space, search, source)
    _check_search(config)
    return config


def _check_search(config: StudyConfig) -> None:
    s = config.search
    if s["sampler"] == "coarse_to_fine":
        if s["per_round"] is not None:
            if len(s["per_round"]) != s["rounds"]:
                raise InvalidValue(
                    "search.per_round",
                    f"must have one count per round ({s['rounds']}), {got(s['per_round'])}",
                )
            if s["trials"] is not None and s["trials"] != sum(s["per_round"]):
                raise InvalidValue(
                    "search.trials",
                    f"must equal the sum of per_round ({sum(s['per_round'])}), {got(s['trials'])}",
                )
        elif s["trials"] is None or s["trials"] < s["rounds"]:
            raise InvalidValue(
                "search.trials", f"must be >= rounds ({s['rounds']}), {got(s['trials'])}"
            )
    elif s["sampler"] == "random" and s["trials"] is None and s["timeout"] is None:
        raise InvalidValue(
            "search.trials", "must be given for random search without a timeout, got nothing"
        )
    try:
        sampler = config.sampler()
        capacity = sampler.capacity(config.space)
    except InvalidValue as e:
        raise e.at("search") from None
    if s["sampler"] == "grid" and s["trials"] is not None and s["trials"] < (capacity or 0):
        raise InvalidValue(
            "search.trials",
            f"a grid of {capacity} points cut to {s['trials']} trials would try only its first "
            f"rows; leave trials out, lower points_per_dim, or use random search, "
            f"{got(s['trials'])}",
        )


def read_config_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The raw mapping of a TOML (.toml) or YAML (.yaml, .yml) file, not yet validated."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".toml", ".yaml", ".yml"):
        raise InvalidValue("config", f"must be a .toml, .yaml or .yml file, {got(str(path))}")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise InvalidValue("config", f"cannot read {str(path)!r}: {e.strerror}") from None
    try:
        if suffix == ".toml":
            raw: Any = tomllib.loads(text)
        else:
            import yaml

            raw = yaml.safe_load(text) or {}
    except Exception as e:  # tomllib.TOMLDecodeError, yaml.YAMLError
        raise InvalidValue("config", f"{path} is not valid {suffix[1:].upper()}: {e}") from None
    if not isinstance(raw, dict):
        raise InvalidValue("config", f"{path} must hold a table of sections, {got(raw)}")
    return raw


def load_config(path: str | os.PathLike[str]) -> StudyConfig:
    """Read and validate a TOML or YAML config file (its name is the default study name)."""
    return config_from_mapping(
        read_config_file(path), default_name=Path(path).stem, source=str(path)
    )
