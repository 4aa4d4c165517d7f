"""The sections a study config is made of: typed, frozen dataclasses whose fields carry their
default, their rule and one line of help.

One table per section, read by the one validator (:func:`read_section`) and by the config
reference (``docs/config.md``, :mod:`caviar.search.config_reference`), so the rules, the
messages and the documentation cannot drift apart. ``[space]`` is the engine's own table
(:data:`caviar.nn.HYPERPARAMETERS`), read by :mod:`caviar.search.config`.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from caviar.core.constraints import (
    FRACTION,
    OPTIONAL_TEXT,
    STUDY_NAME,
    TEXT,
    Alias,
    AnyOf,
    Constraint,
    ListOf,
    Record,
    Scalar,
    integer,
    number,
    one_of,
    optional,
)
from caviar.core.seeding import SEED
from caviar.samplers.base import Sampler
from caviar.samplers.coarse_to_fine import KEEP, MARGIN, PER_ROUND, ROUNDS, CoarseToFineSampler
from caviar.samplers.grid import POINTS_PER_DIM, GridSampler
from caviar.search.halving import AUTO, HALVING
from caviar.storage.resolve import DEFAULT_STORAGE

#: the most points a grid may have: each point is a trial; random search covers more ground
GRID_LIMIT = 1_000_000

#: ``study.threads``: 'auto' (kept as None: the cores other work leaves free) or a count
THREADS = AnyOf((Alias("auto", None), integer(1)))

#: ``search.devices``: devices for the pool's workers, a list, one text of comma-separated
#: names, or 'auto' (kept as ``("auto",)``; :func:`caviar.distributed.cluster.worker_devices`
#: makes it concrete on the machine that runs the study)
DEVICES = AnyOf(
    (
        Alias("auto", ("auto",)),
        ListOf(
            Scalar("text", pattern=r"cpu|cuda(:\d+)?", words="'cpu', 'cuda' or 'cuda:N'"),
            min_len=0,
            sep=",",
        ),
    ),
    words="'auto' or a list of 'cpu', 'cuda' or 'cuda:N' (or one text: 'cuda:0,cuda:1')",
)


def _sampler_default(sampler: type[Sampler], name: str) -> Any:
    """The default of a sampler's parameter ``name``: stated once, in its signature."""
    return inspect.signature(sampler).parameters[name].default


@dataclass(frozen=True)
class OnlyWith:
    """A key read only while another key of its section has one of a few values (a sampler's
    own settings, a csv's label column): given where it is never read, it is refused."""

    key: str
    values: tuple[str, ...] = ()
    suffixes: tuple[str, ...] = ()  # or: the other key's value ends with one of these
    given: bool = False  # or: the other key is given at all

    def applies(self, value: Any) -> bool:
        if self.given:
            return value is not None
        text = str(value)
        return text in self.values or text.lower().endswith(self.suffixes)

    def describe(self) -> str:
        if self.given:
            return f"{self.key} is given"
        allowed = [*map(repr, self.values), *(f"a {s} file" for s in self.suffixes)]
        return f"{self.key} {'is' if len(allowed) == 1 else 'is one of'} {', '.join(allowed)}"


def setting(default: Any, rule: Constraint, help: str, *, only: OnlyWith | None = None) -> Any:
    """A config key: its default, its rule, one line of help (see docs/config.md), and the
    condition it is read under, if any."""
    return field(default=default, metadata={"rule": rule, "help": help, "only": only})


_GRID = OnlyWith("sampler", ("grid",))
_COARSE_TO_FINE = OnlyWith("sampler", ("coarse_to_fine",))


@dataclass(frozen=True)
class StudySection:
    """``[study]``: what the study is called, where it is kept, how it runs."""

    name: str | None = setting(None, STUDY_NAME, "default: the config file's stem, or 'demo'")
    model: str | None = setting(
        None,
        OPTIONAL_TEXT,
        "your own model: 'package.module:build', a function making an nn.Module from the "
        "trial's hyperparameters (docs/own-model.md); default: caviar's nets",
    )
    storage: str = setting(DEFAULT_STORAGE, TEXT, "the SQLite file holding the study")
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
        None,
        THREADS,
        "CPU threads: auto (the cores other work leaves free) or N, at most the cores the run "
        "may use",
    )


@dataclass(frozen=True)
class DataSection:
    """``[data]``: the dataset and how it is cut."""

    dataset: str = setting("digits", TEXT, "mnist | fashion-mnist | digits | file.npz | file.csv")
    data_dir: str | None = setting(
        None, OPTIONAL_TEXT, "a folder with the IDX .gz files (mnist, fashion-mnist): no network"
    )
    cache_dir: str | None = setting(
        None,
        OPTIONAL_TEXT,
        "where downloads are kept (default ~/.cache/caviar)",
        only=OnlyWith("dataset", ("mnist", "fashion-mnist")),
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
    label_column: str = setting(
        "label",
        TEXT,
        "csv only: the column holding the labels",
        only=OnlyWith("dataset", suffixes=(".csv",)),
    )


@dataclass(frozen=True)
class SearchSection:
    """``[search]``: how configurations are chosen, trained and ranked."""

    sampler: str = setting(
        "tpe",
        one_of("random", "grid", "coarse_to_fine", "tpe"),
        "how configurations are chosen: tpe (Optuna's TPE, learning from the finished trials; "
        "the default: with halving it found better models than random search at equal time in "
        "benchmarks/quality.py), random, grid or coarse_to_fine (the textbook's)",
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
        _sampler_default(GridSampler, "points_per_dim"),
        POINTS_PER_DIM,
        f"grid: points per searched dimension (at most {GRID_LIMIT:,} in all)",
        only=_GRID,
    )
    rounds: int = setting(
        _sampler_default(CoarseToFineSampler, "rounds"),
        ROUNDS,
        "coarse_to_fine: rounds, trials split evenly over them",
        only=_COARSE_TO_FINE,
    )
    per_round: tuple[int, ...] | None = setting(
        None,
        optional(PER_ROUND),
        "coarse_to_fine: trials per round (their sum is the trial count)",
        only=_COARSE_TO_FINE,
    )
    keep: int | float = setting(
        _sampler_default(CoarseToFineSampler, "keep"),
        KEEP,
        "coarse_to_fine: the best trials each round's box is drawn around",
        only=_COARSE_TO_FINE,
    )
    margin: float = setting(
        _sampler_default(CoarseToFineSampler, "margin"),
        MARGIN,
        "coarse_to_fine: box margin, a fraction of the previous box",
        only=_COARSE_TO_FINE,
    )
    timeout: float | None = setting(
        None,
        number(0.0, low_open=True, nullable=True),
        "seconds: no new work after this; unfinished trials go back to the queue",
    )
    halving: dict[str, int] | str | None = setting(
        AUTO,
        HALVING,
        "successive halving (ASHA): rungs at min_epochs * eta**k epochs; brackets = B hedges "
        "as Hyperband does: bracket b's rungs start at min_epochs * eta**b; auto: on with its "
        "defaults for the tpe sampler where trials reach epoch 2, off otherwise",
    )
    warm_start: str | None = setting(
        None,
        optional(STUDY_NAME),
        "a study in the same file whose best configurations are tried first, trained again; "
        "its trials inform the tpe sampler, counting less as new ones come (docs/tune.md)",
    )
    warm_start_top: int = setting(
        5,
        integer(1),
        "how many of the warm_start study's best configurations are tried first",
        only=OnlyWith("warm_start", given=True),
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
        DEVICES,
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
    table = raw.get(name)
    cls = SECTIONS[name]
    rules = Record({f.name: f.metadata["rule"] for f in fields(cls)}, words="a table of keys")
    return cls(**rules.check({} if table is None else table, name))


def unread_keys(
    name: str, table: Mapping[str, Any], values: Mapping[str, Any]
) -> list[tuple[str, OnlyWith]]:
    """The keys given in ``table`` (section ``name`` as written) that are never read where the
    keys they depend on have ``values`` (``per_round`` where ``sampler`` is 'random'), each with
    the condition it is read under. A key at its default is not counted: it changes nothing
    wherever it is, and ``to_dict`` writes every key."""
    out = []
    for f in fields(SECTIONS[name]):
        only = f.metadata["only"]
        given = only is not None and table.get(f.name, f.default) != f.default
        given = given and only.key in values
        if given and not only.applies(values[only.key]):
            out.append((f.name, only))
    return out


def _plain(value: Any) -> Any:
    """A section's value as a config file holds it (tuples as lists, tables as dicts)."""
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, Mapping):
        return dict(value)
    return value


def section_dict(section: Section) -> dict[str, Any]:
    return {f.name: _plain(getattr(section, f.name)) for f in fields(section)}
