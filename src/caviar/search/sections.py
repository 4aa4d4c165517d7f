"""The sections a study config is made of: typed, frozen dataclasses whose fields carry their
default, their rule and one line of help.

One table per section, read by the one validator (:func:`read_section`) and by the config
reference (``docs/config.md``, :mod:`caviar.search.config_reference`), so the rules, the
messages and the documentation cannot drift apart. ``[space]`` is the engine's own table
(:data:`caviar.nn.HYPERPARAMETERS`), read by :mod:`caviar.search.config`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Protocol

from caviar.core.constraints import (
    FRACTION,
    OPTIONAL_TEXT,
    STUDY_NAME,
    TEXT,
    integer,
    number,
    one_of,
)
from caviar.core.errors import InvalidValue, got
from caviar.core.seeding import SEED
from caviar.search.halving import Halving

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
    """Devices for the pool's workers: a list, one text of comma-separated names, or "auto"
    (kept as ``("auto",)``; :func:`caviar.distributed.cluster.worker_devices` makes it
    concrete on the machine that runs the study)."""

    NAME = re.compile(r"cpu|cuda(:\d+)?")

    def describe(self) -> str:
        return "'auto' or a list of 'cpu', 'cuda' or 'cuda:N' (or one text: 'cuda:0,cuda:1')"

    def check(self, value: Any, owner: str) -> tuple[str, ...]:
        if isinstance(value, str) and value.strip() == "auto":
            return ("auto",)
        if isinstance(value, list | tuple) and list(value) == ["auto"]:
            return ("auto",)  # as a stored config holds it
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
        if integer(1).allows(value) or (isinstance(value, float) and FRACTION.allows(value)):
            return int(value) if isinstance(value, int) else float(value)  # a count, or a share
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
    compile: str = setting(
        "auto",
        one_of("auto", "on", "off"),
        "torch.compile the GPU path's optimizer update: auto (on a GPU) | on | off",
    )
    cuda_graphs: str = setting(
        "auto",
        one_of("auto", "on", "off"),
        "record each group's training step as a CUDA graph and replay it: auto | on (a GPU) | off",
    )
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
        "one pool worker per entry: cpu (a CPU slot), cuda (a GPU Ray assigns; without ray, "
        "this machine's default GPU), cuda:N (GPU N of this machine); without ray, worker "
        "processes of this machine (cpu,cpu: one per core, no Ray needed); auto: one per core "
        "(per GPU where the study runs on GPUs), one process where that is one worker; [] or "
        "auto with ray: one per GPU of the cluster, else one per CPU",
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
