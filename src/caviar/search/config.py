"""The study config: typed, frozen sections (:mod:`caviar.search.sections`) and a search space, read
from TOML, YAML or a mapping, and checked across keys (a grid's size, rounds and trials).

``[space]`` is checked against the engine's table (:data:`caviar.nn.HYPERPARAMETERS`). The
same tables write the reference, ``docs/config.md`` (:mod:`caviar.search.config_reference`). Unknown
keys and bad values raise :class:`~caviar.core.errors.InvalidValue` naming the key path:
``space.lr: low must be > 0 on a log scale, got 0``.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from caviar.core.constraints import STUDY_NAME
from caviar.core.errors import InvalidValue, got
from caviar.core.suggest import did_you_mean
from caviar.core.threads import check_threads
from caviar.distributed.cluster import SpreadPlan
from caviar.nn.spec import CROSS_RULES, HYPERPARAMETERS, READ_ONLY_WITH, MemberSpec
from caviar.own.space import module_space
from caviar.samplers import CoarseToFineSampler, GridSampler, RandomSampler, Sampler, TPESampler
from caviar.search.halving import Halving
from caviar.search.halving import resolve as resolve_halving
from caviar.search.sections import (
    GRID_LIMIT,
    SECTIONS,
    DataSection,
    SearchSection,
    StudySection,
    read_section,
    section_dict,
    unread_keys,
)
from caviar.space import Fixed, SearchSpace

__all__ = [
    "SECTIONS",
    "UNBOUNDED",
    "DataSection",
    "SearchSection",
    "StudyConfig",
    "StudySection",
    "config_from_mapping",
    "load_config",
    "read_config_file",
    "space_from_config",
]


def space_from_config(table: Any) -> SearchSpace:
    """The search space: the engine's defaults, overridden by ``table``, each value checked
    against the engine's allowed range (at the bounds of a range, and every choice)."""
    if not isinstance(table, Mapping):
        raise InvalidValue("space", f"must be a table of hyperparameters, {got(table)}")
    unknown = sorted(map(str, set(table) - set(HYPERPARAMETERS)))
    if unknown:
        raise InvalidValue(
            f"space.{unknown[0]}",
            f"unknown hyperparameter; known: {sorted(HYPERPARAMETERS)}"
            + did_you_mean(unknown[0], HYPERPARAMETERS),
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
    _check_cross_rules(space)
    for u in (0.0, 0.5, 1.0):  # and any other rule of the engine's, at three corners
        try:
            MemberSpec.from_params(space.from_unit([u] * space.n_free), seed=0, owner="space")
        except InvalidValue as e:
            raise InvalidValue(e.owner, f"{e.reason} (trials would fail)") from None
    return space


def _check_cross_rules(space: SearchSpace) -> None:
    """Every combination of values that decides a rule across hyperparameters (a choice's every
    value, a range's two ends) must train: otherwise some trials would fail at run time."""
    middle = space.from_unit([0.5] * space.n_free)
    for names in CROSS_RULES:
        for values in itertools.product(*(space[name].ends() for name in names)):
            params = {**middle, **dict(zip(names, values, strict=True))}
            try:
                MemberSpec.from_params(params, seed=0, owner="space")
            except InvalidValue as e:
                combination = " with ".join(
                    f"{name} = {json.dumps(value)}"
                    for name, value in zip(names, values, strict=True)
                )
                searched = [n for n in names if space[n].n_free]
                if not searched:
                    raise InvalidValue(e.owner, f"{e.reason} (every trial would fail)") from None
                raise InvalidValue(
                    e.owner,
                    f"{e.reason}: the space holds {combination}, so the trials drawn there "
                    f"would fail; narrow space.{searched[-1]}",
                ) from None


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
        if s.sampler == "tpe":
            return TPESampler(self.seed)
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
        """The successive-halving schedule, or None when halving is off ('auto' decided by the
        sampler and the space's longest trial: :func:`caviar.search.halving.resolve`)."""
        longest = max(self.space["epochs"].ends())
        return resolve_halving(self.search.halving, self.search.sampler, longest)

    def spread_plan(self) -> SpreadPlan:
        """What :mod:`caviar.distributed` needs of this study to spread its pool, on this
        machine: ``study.threads`` above what it can run is refused here
        (:func:`~caviar.core.threads.check_threads`), so the check before a run and the dry run
        (both start from the plan) refuse what the run would. A stored config read back (for
        ``caviar test``, panda) is not checked: the study may have run on a larger machine."""
        threads = self.study.threads
        return SpreadPlan(
            ray=self.search.ray,
            devices=self.search.devices,
            device=self.study.device,
            threads=None if threads is None else check_threads(threads, "study.threads"),
            dtype=self.study.dtype,
            data_seed=self.seed,
            train_metrics=self.search.train_metrics,
            keep_states=self.search.keep_models > 0,
            compile=self.study.compile,
            cuda_graphs=self.study.cuda_graphs,
        )

    def to_dict(self) -> dict[str, Any]:
        space = {name: self.space[name].to_config() for name in self.space}
        return {
            "study": section_dict(self.study),
            "data": section_dict(self.data),
            "space": space,
            "search": section_dict(self.search),
        }


def config_from_mapping(
    raw: Mapping[str, Any],
    *,
    default_name: str = "demo",
    source: str = "<mapping>",
    stored: bool = False,
) -> StudyConfig:
    """Validate a config mapping (the shape a TOML/YAML file gives). A setting that could never
    act is refused, unless the mapping is ``stored``: read back from a study, which holds every
    key, and may have been made by an older caviar."""
    if not isinstance(raw, Mapping):
        raise InvalidValue("config", f"must be a table of sections, {got(raw)}")
    known = ["study", "data", "space", "search"]
    unknown = sorted(set(map(str, raw)) - set(known))
    if unknown:
        raise InvalidValue(
            unknown[0], f"unknown section; a config has {known}" + did_you_mean(unknown[0], known)
        )
    study, data, search = (read_section(raw, name) for name in ("study", "data", "search"))
    if study.name is None:
        study = replace(study, name=STUDY_NAME.check(default_name, "study.name"))
    table = {} if raw.get("space") is None else raw["space"]
    # a user's own model has a space of its own: its keys are the builder's and the optimizer's
    space = space_from_config(table) if study.model is None else module_space(table)
    config = StudyConfig(study, data, space, search, source)
    # 'auto' is stored as what it decided: a study keeps its schedule if the default changes
    halving = config.halving()
    search = replace(search, halving=None if halving is None else halving.to_config())
    config = replace(config, search=search)
    _check_search(config)
    if not stored:
        _check_settings_act(raw, config)
    return config


def _check_settings_act(raw: Mapping[str, Any], config: StudyConfig) -> None:
    """Refuse a setting the study would never read (``per_round`` with random search, ``beta2``
    with plain gradient descent, a first rung past the last epoch): it would silently change
    nothing."""
    for name in SECTIONS:
        table = raw.get(name)
        values = section_dict(getattr(config, name))
        for key, only in unread_keys(name, table, values) if isinstance(table, Mapping) else ():
            raise InvalidValue(
                f"{name}.{key}",
                f"only read when {only.describe()}, but {name}.{only.key} is "
                f"{values[only.key]!r}, so it would change nothing; remove it or change "
                f"{name}.{only.key}",
            )
    given = raw.get("space") if config.study.model is None else None
    for name, (decider, read_with) in READ_ONLY_WITH.items():
        if not isinstance(given, Mapping) or name not in given:
            continue
        if config.space[name] == Fixed(HYPERPARAMETERS[name].default):
            continue  # the default, as ``to_dict`` writes every hyperparameter: harmless
        dim = config.space[decider]
        if not any(v in read_with for v in dim.ends()):
            shown = json.dumps(dim.to_config())
            default = "" if decider in given else " (its default)"
            raise InvalidValue(
                f"space.{name}",
                f"only read when {decider} is {' or '.join(json.dumps(v) for v in read_with)}, but "
                f"space.{decider} is {shown}{default}, so it would change nothing; remove it or "
                f"change space.{decider}",
            )
    halving = config.halving()
    longest = max(config.space["epochs"].ends())
    if halving is not None and 1 < halving.brackets > len(halving.rungs(longest)) + 1:
        most = len(halving.rungs(longest)) + 1
        raise InvalidValue(
            "search.halving.brackets",
            f"at most {most} with trials of at most {longest} epochs: bracket {most - 1} "
            f"already judges never (its first rung, epoch {halving.first_rung(most - 1)}, is "
            f"past the last epoch), and more would run the same way, got {halving.brackets}",
        )
    if halving is not None and not halving.rungs(longest):
        fix = (
            f"give min_epochs < {longest}, or more epochs"
            if longest > 1
            else "halving needs trials of 2 epochs or more"
        )
        raise InvalidValue(
            "search.halving",
            f"its first rung, at epoch {halving.min_epochs}, is never reached: trials train at "
            f"most {longest} epoch{'s' if longest > 1 else ''} (space.epochs), and halving "
            f"judges a member only before its last epoch; {fix}",
        )


def _check_search(config: StudyConfig) -> None:
    """The rules across keys; the sampler checks its own settings (``per_round`` against
    ``rounds``, ``keep`` against the smallest round), named by their keys here."""
    s = config.search
    if s.sampler == "coarse_to_fine" and s.per_round is None:
        if s.trials is None or s.trials < s.rounds:
            raise InvalidValue(
                "search.trials", f"must be an integer >= rounds ({s.rounds}), {got(s.trials)}"
            )
    elif s.sampler in ("random", "tpe") and s.trials is None and s.timeout is None:
        raise InvalidValue(
            "search.trials",
            f"must be given for {s.sampler} search without a timeout, got nothing",
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
    if (
        s.sampler == "coarse_to_fine"
        and s.per_round is not None
        and s.trials is not None
        and s.trials != capacity  # the sum of per_round
    ):
        raise InvalidValue(
            "search.trials",
            f"must equal the sum of per_round {list(s.per_round)} ({capacity}); leave trials "
            f"out, or per_round (then the trials are split evenly over the rounds), "
            f"{got(s.trials)}",
        )
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
    try:
        GridSampler(points).check_names(config.space)
    except InvalidValue as e:
        raise e.at("search.points_per_dim") from None
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
            from caviar.search import strict_yaml  # deferred: pyyaml, only for a YAML config

            raw = strict_yaml.load(text) or {}
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
