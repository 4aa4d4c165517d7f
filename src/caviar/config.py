"""The study config: typed, frozen sections read from TOML, YAML or a mapping.

Each section is a frozen dataclass whose fields carry their default, their rule (a
:class:`~caviar.constraints.Constraint`, or a rule of its own shape) and one line of help;
``[space]`` is checked against the engine's table (:data:`caviar.nn.HYPERPARAMETERS`). The same
fields validate a config and write its reference, ``docs/config.md``
(:mod:`caviar.config_reference`). Unknown keys and bad values raise
:class:`~caviar.errors.InvalidValue` naming the key path:
``space.lr: low must be > 0 on a log scale, got 0``.
"""

from __future__ import annotations

import math
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Protocol

from caviar.constraints import (
    FRACTION,
    OPTIONAL_TEXT,
    STUDY_NAME,
    TEXT,
    integer,
    number,
    one_of,
)
from caviar.errors import InvalidValue, got
from caviar.halving import Halving
from caviar.nn.spec import HYPERPARAMETERS, MemberSpec
from caviar.samplers import CoarseToFineSampler, GridSampler, RandomSampler, Sampler
from caviar.seeding import SEED
from caviar.space import SearchSpace

#: the most points a grid may have: each point is a trial; random search covers more ground
GRID_LIMIT = 1_000_000


class Rule(Protocol):
    """What a config key's value must be: a :class:`Constraint`, or a rule of its own shape."""

    def describe(self) -> str: ...

    def check(self, value: Any, owner: str) -> Any: ...


class _Threads:
    def describe(self) -> str:
        return "'auto' or an integer in [1, inf)"

    def check(self, value: Any, owner: str) -> int | None:
        if value == "auto" or value is None:  # None: "auto" as a stored config holds it
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidValue(owner, f"must be {self.describe()}, {got(value)}")
        return value


class _HalvingRule:
    def describe(self) -> str:
        return "true, false or a table {min_epochs = 1, eta = 3}"

    def check(self, value: Any, owner: str) -> dict[str, int] | None:
        halving = Halving.from_config(dict(value) if isinstance(value, Mapping) else value)
        return None if halving is None else halving.to_config()


class _Points:
    def describe(self) -> str:
        return "an integer in [1, inf), or a table of one such integer per searched name"

    def check(self, value: Any, owner: str) -> int | dict[str, int]:
        if isinstance(value, Mapping):
            return {str(k): integer(1).check(v, f"{owner}.{k}") for k, v in value.items()}
        return int(integer(1).check(value, owner))


class _PerRound:
    def describe(self) -> str:
        return "a non-empty list of integers in [1, inf), one per round"

    def check(self, value: Any, owner: str) -> tuple[int, ...] | None:
        if value is None:
            return None
        if not isinstance(value, list | tuple) or not value:
            raise InvalidValue(owner, f"must be {self.describe()}, {got(value)}")
        return tuple(integer(1).check(v, f"{owner}[{i}]") for i, v in enumerate(value))


class _Devices:
    """Devices for the pool's workers: a list, or one text of comma-separated names."""

    NAME = re.compile(r"cpu|cuda(:\d+)?")

    def describe(self) -> str:
        return "a list of 'cpu', 'cuda' or 'cuda:N' (or one text: 'cuda:0,cuda:1')"

    def check(self, value: Any, owner: str) -> tuple[str, ...]:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",")] if value.strip() else []
        if not isinstance(value, list | tuple):
            raise InvalidValue(owner, f"must be {self.describe()}, {got(value)}")
        for i, name in enumerate(value):
            if not isinstance(name, str) or not self.NAME.fullmatch(name):
                reason = f"must be 'cpu', 'cuda' or 'cuda:N', {got(name)}"
                raise InvalidValue(f"{owner}[{i}]", reason)
        return tuple(value)


class _Keep:
    def describe(self) -> str:
        return "a count in [1, inf) or a fraction in (0, 1)"

    def check(self, value: Any, owner: str) -> int | float:
        if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
            return value
        if isinstance(value, float) and 0.0 < value < 1.0:
            return value
        raise InvalidValue(owner, f"must be {self.describe()}, {got(value)}")


def setting(default: Any, rule: Rule, help: str) -> Any:
    """A config key: its default, its rule and one line of help (see docs/config.md)."""
    return field(default=default, metadata={"rule": rule, "help": help})


@dataclass(frozen=True)
class StudySection:
    """``[study]``: what the study is called, where it is kept, how it runs."""

    name: str | None = setting(None, STUDY_NAME, "default: the config file's stem, or 'demo'")
    storage: str = setting("caviar.db", TEXT, "the SQLite file holding the study")
    seed: int = setting(0, SEED, "configurations, initial weights, data order and split")
    device: str = setting("auto", TEXT, "auto | cpu | cuda | cuda:N")
    dtype: str = setting("float32", one_of("float32", "float64"), "the engine's float type")
    threads: int | None = setting(
        None, _Threads(), "CPU threads: auto (the cores other work leaves free) or N"
    )


@dataclass(frozen=True)
class DataSection:
    """``[data]``: the dataset and how it is cut."""

    dataset: str = setting("digits", TEXT, "mnist | fashion-mnist | digits | file.npz | file.csv")
    data_dir: str | None = setting(
        None, OPTIONAL_TEXT, "a folder with the IDX .gz files (mnist, fashion-mnist): no network"
    )
    cache_dir: str | None = setting(
        None, OPTIONAL_TEXT, "where downloads are kept (default ~/.cache/caviar)"
    )
    train_size: int | None = setting(
        None, integer(1, nullable=True), "the first N training examples (default: all)"
    )
    test_size: int | None = setting(
        None, integer(1, nullable=True), "the first N test examples (default: all)"
    )
    validation: float = setting(
        0.2,
        FRACTION,
        "the fraction of the training examples held out, stratified and seeded",
    )
    label_column: str = setting("label", TEXT, "csv only: the column holding the labels")


@dataclass(frozen=True)
class SearchSection:
    """``[search]``: how configurations are chosen, trained and ranked."""

    sampler: str = setting(
        "random", one_of("random", "grid", "coarse_to_fine"), "how configurations are chosen"
    )
    trials: int | None = setting(
        None, integer(1, nullable=True), "total trials (grid: default the whole grid)"
    )
    population: int = setting(
        0, integer(0), "the pool's slots, members training at once (0: 16 on a CPU, 1024 on a GPU)"
    )
    objective: str = setting(
        "final",
        one_of("final", "best"),
        "validation accuracy at the last epoch (final) or at the best epoch (best)",
    )
    points_per_dim: int | dict[str, int] = setting(
        5, _Points(), f"grid: points per searched dimension (at most {GRID_LIMIT:,} in all)"
    )
    rounds: int = setting(3, integer(1), "coarse_to_fine: rounds, trials split evenly over them")
    per_round: tuple[int, ...] | None = setting(
        None, _PerRound(), "coarse_to_fine: trials per round (their sum is the trial count)"
    )
    keep: int | float = setting(
        0.25, _Keep(), "coarse_to_fine: the best trials each round's box is drawn around"
    )
    margin: float = setting(
        0.1, number(0.0, 1.0), "coarse_to_fine: box margin, a fraction of the previous box"
    )
    timeout: float | None = setting(
        None,
        number(0.0, low_open=True, nullable=True),
        "seconds: no new work after this; unfinished trials go back to the queue",
    )
    halving: dict[str, int] | None = setting(
        None, _HalvingRule(), "successive halving (ASHA): rungs at min_epochs * eta**k epochs"
    )
    train_metrics: str = setting(
        "pass",
        one_of("pass", "full"),
        "training loss/accuracy from the epoch's batches (pass), or a full pass (full)",
    )
    keep_models: int = setting(
        5, integer(0), "the final states of the best N trials are kept beside the study"
    )
    ray: str | None = setting(
        None,
        OPTIONAL_TEXT,
        "spread the pool over a Ray cluster: auto (the running one, else a new local one) or "
        "its address (host:port, ray://host:10001); nothing: one process (docs/distributed.md)",
    )
    devices: tuple[str, ...] = setting(
        (),
        _Devices(),
        "one pool worker per entry: cpu (a CPU slot), cuda (a GPU Ray assigns), cuda:N (GPU N "
        "of this machine); without ray, a local Ray on this machine; [] with ray: one per GPU "
        "of the cluster, else one per CPU",
    )


Section = StudySection | DataSection | SearchSection

#: the config's sections, in the order a file shows them (``[space]`` is read apart)
SECTIONS: dict[str, type[StudySection] | type[DataSection] | type[SearchSection]] = {
    "study": StudySection,
    "data": DataSection,
    "search": SearchSection,
}


def read_section(raw: Mapping[str, Any], name: str) -> Any:
    """The section ``name`` of ``raw``, every key checked by its rule (unknown keys refused)."""
    table = raw.get(name, {})
    if table is None:
        table = {}
    if not isinstance(table, Mapping):
        raise InvalidValue(name, f"must be a table of keys, {got(table)}")
    cls = SECTIONS[name]
    keys = {f.name: f for f in fields(cls)}
    unknown = sorted(set(map(str, table)) - set(keys))
    if unknown:
        raise InvalidValue(f"{name}.{unknown[0]}", f"unknown key; {name} takes {sorted(keys)}")
    values = {
        key: f.metadata["rule"].check(table[key], f"{name}.{key}")
        for key, f in keys.items()
        if key in table
    }
    return cls(**values)


def _plain(value: Any) -> Any:
    """A section's value as a config file holds it (tuples as lists, tables as dicts)."""
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, Mapping):
        return dict(value)
    return value


def section_dict(section: Section) -> dict[str, Any]:
    return {f.name: _plain(getattr(section, f.name)) for f in fields(section)}


def space_from_config(table: Any) -> SearchSpace:
    """The search space: the engine's defaults, overridden by ``table``, each value checked
    against the engine's allowed range (at the bounds of a range, and every choice)."""
    if not isinstance(table, Mapping):
        raise InvalidValue("space", f"must be a table of hyperparameters, {got(table)}")
    unknown = sorted(map(str, set(table) - set(HYPERPARAMETERS)))
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
        if dim.n_free == 0:  # a fixed value: the message shows it already
            rule.check(dim.from_unit(0.0), f"space.{name}")
            continue
        count = dim.cardinality
        units = dim.grid_units(min(count, 64)) if count is not None else (0.0, 0.5, 1.0)
        for value in (dim.from_unit(u) for u in units):
            if not rule.allows(value):
                raise InvalidValue(
                    f"space.{name}",
                    f"every value must be {rule.describe()}; {dim.to_config()!r} gives {value!r}",
                )
    for u in (0.0, 0.5, 1.0):  # the engine's rules across hyperparameters, at three corners
        try:
            MemberSpec.from_params(space.from_unit([u] * space.n_free), seed=0, owner="space")
        except InvalidValue as e:
            raise InvalidValue(e.owner, f"{e.reason} (every trial would fail)") from None
    return space


#: the trial count of a search bounded only by its timeout
UNBOUNDED = 10**9


@dataclass(frozen=True)
class StudyConfig:
    """A validated study config; ``to_dict`` gives back the plain mapping it came from."""

    study: StudySection
    data: DataSection
    space: SearchSpace
    search: SearchSection
    source: str = field(default="<mapping>", compare=False)

    @property
    def name(self) -> str:
        return str(self.study.name)

    @property
    def seed(self) -> int:
        return self.study.seed

    def sampler(self) -> Sampler:
        """The configured sampler, seeded with the study seed."""
        s = self.search
        if s.sampler == "grid":
            return GridSampler(s.points_per_dim)
        if s.sampler == "coarse_to_fine":
            return CoarseToFineSampler(
                rounds=s.rounds,
                per_round=self.per_round(),
                keep=s.keep,
                margin=s.margin,
                seed=self.seed,
            )
        return RandomSampler(self.seed)

    def per_round(self) -> list[int]:
        s = self.search
        if s.per_round is not None:
            return list(s.per_round)
        trials, rounds = s.trials or 0, s.rounds
        return [trials // rounds + (1 if r < trials % rounds else 0) for r in range(rounds)]

    def n_trials(self) -> int:
        """How many trials the study runs in all: the trial count, capped by what the sampler
        can propose (a grid's size, the rounds of coarse to fine)."""
        counts = [self.sampler().capacity(self.space), self.search.trials]
        return int(min((c for c in counts if c is not None), default=UNBOUNDED))

    def halving(self) -> Halving | None:
        """The successive-halving schedule, or None when halving is off."""
        return Halving.from_config(self.search.halving)

    def to_dict(self) -> dict[str, Any]:
        space = {name: self.space[name].to_config() for name in self.space}
        return {
            "study": section_dict(self.study),
            "data": section_dict(self.data),
            "space": space,
            "search": section_dict(self.search),
        }


def config_from_mapping(
    raw: Mapping[str, Any], *, default_name: str = "demo", source: str = "<mapping>"
) -> StudyConfig:
    """Validate a config mapping (the shape a TOML/YAML file gives)."""
    if not isinstance(raw, Mapping):
        raise InvalidValue("config", f"must be a table of sections, {got(raw)}")
    known = ["study", "data", "space", "search"]
    unknown = sorted(set(map(str, raw)) - set(known))
    if unknown:
        raise InvalidValue(unknown[0], f"unknown section; a config has {known}")
    study, data, search = (read_section(raw, name) for name in ("study", "data", "search"))
    if study.name is None:
        study = replace(study, name=STUDY_NAME.check(default_name, "study.name"))
    space = space_from_config({} if raw.get("space") is None else raw["space"])
    config = StudyConfig(study, data, space, search, source)
    _check_search(config)
    return config


def _check_search(config: StudyConfig) -> None:
    s = config.search
    if s.sampler == "coarse_to_fine":
        if s.per_round is not None:
            if len(s.per_round) != s.rounds:
                raise InvalidValue(
                    "search.per_round",
                    f"must have one count per round ({s.rounds}), {got(list(s.per_round))}",
                )
            if s.trials is not None and s.trials != sum(s.per_round):
                raise InvalidValue(
                    "search.trials",
                    f"must equal the sum of per_round {list(s.per_round)} "
                    f"({sum(s.per_round)}); leave trials out, or per_round "
                    f"(then the trials are split evenly over the rounds), {got(s.trials)}",
                )
        elif s.trials is None or s.trials < s.rounds:
            raise InvalidValue(
                "search.trials", f"must be an integer >= rounds ({s.rounds}), {got(s.trials)}"
            )
    elif s.sampler == "random" and s.trials is None and s.timeout is None:
        raise InvalidValue(
            "search.trials", "must be given for random search without a timeout, got nothing"
        )
    if s.sampler == "grid":
        _check_grid(config)
    try:
        sampler = config.sampler()
        capacity = sampler.capacity(config.space)
    except InvalidValue as e:
        raise e.at(
            "search" + e.owner.removeprefix("CoarseToFineSampler").removeprefix("GridSampler")
        ) from None
    if s.sampler == "grid" and s.trials is not None and s.trials < (capacity or 0):
        raise InvalidValue(
            "search.trials",
            f"a grid of {capacity} points cut to {s.trials} trials would try only its first "
            f"rows; leave trials out, lower points_per_dim, or use random search, "
            f"{got(s.trials)}",
        )


def _check_grid(config: StudyConfig) -> None:
    """Refuse a grid too large to run before anything is built, saying its size."""
    points = config.search.points_per_dim
    names = config.space.free_names
    if isinstance(points, dict):
        unknown = sorted(set(points) - set(names))
        missing = [n for n in names if n not in points]
        if unknown or missing:
            raise InvalidValue(
                "search.points_per_dim",
                f"must name each searched dimension {list(names)} once; unknown {unknown}, "
                f"missing {missing}",
            )
    counts = [
        min(
            points[n] if isinstance(points, dict) else points,
            config.space[n].cardinality or math.inf,
        )
        for n in names
    ]
    size = math.prod(counts)
    if size > GRID_LIMIT:
        shape = " x ".join(str(int(c)) for c in counts)
        raise InvalidValue(
            "search.points_per_dim",
            f"a grid of {int(size):,} points ({shape}) is more than the {GRID_LIMIT:,} a study "
            f"may run; lower points_per_dim or use random search, {got(points)}",
        )


def read_config_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The raw mapping of a TOML (.toml) or YAML (.yaml, .yml) file, not yet validated."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".toml", ".yaml", ".yml"):
        raise InvalidValue("config", f"must be a .toml, .yaml or .yml file, {got(str(path))}")
    try:
        data = path.read_bytes()
    except OSError as e:
        raise InvalidValue("config", f"cannot read {str(path)!r}: {e.strerror}") from None
    text = _config_text(path, data)
    try:
        if suffix == ".toml":
            raw: Any = tomllib.loads(text)
        else:
            import yaml

            raw = yaml.safe_load(text) or {}
    except Exception as e:  # tomllib.TOMLDecodeError, yaml.YAMLError
        reason = " ".join(str(e).split())  # YAML's message spans lines: one line here
        raise InvalidValue(
            "config", f"{path} is not valid {suffix[1:].upper()}: {reason}"
        ) from None
    if not isinstance(raw, dict):
        raise InvalidValue("config", f"{path} must hold a table of sections, {got(raw)}")
    return raw


def _config_text(path: Path, data: bytes) -> str:
    """The file's text: UTF-8 (a UTF-8 byte order mark is allowed); anything else is refused
    with what it looks like."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise InvalidValue(
            "config",
            f"{path} is UTF-16 text (it starts with a UTF-16 byte order mark); save it as UTF-8",
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise InvalidValue(
            "config",
            f"{path} is not UTF-8 text (byte {e.start} is {data[e.start : e.start + 1]!r}); "
            f"a config is a TOML or YAML text file",
        ) from None
    if "\x00" in text:
        raise InvalidValue("config", f"{path} holds NUL bytes: it is a binary file, not a config")
    return text


def load_config(path: str | os.PathLike[str]) -> StudyConfig:
    """Read and validate a TOML or YAML config file (its name is the default study name)."""
    return config_from_mapping(
        read_config_file(path), default_name=Path(path).stem, source=str(path)
    )
