"""The caviar job: a study config in, a finished study (and a report) out.

1. Load the data and carve the validation split (seeded, stratified; its hash goes into the
   study, and a study continued later must see the same split). The test set is not touched.
2. Open the study, or continue it: trials of a dead run go back to the queue.
3. Run the search: a pool of members, each slot taking the next trial as soon as the last one
   finished, diverged or was pruned (:mod:`caviar.search.loop`), until the trials or the time
   budget are spent.
4. Write the report.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from caviar.core.errors import InvalidValue
from caviar.core.threads import ThreadGovernor
from caviar.data import Dataset, Split, check_batch_size, load_dataset, split_for_study
from caviar.distributed import (
    SpreadPool,
    check_spread,
    connect,
    disconnect,
    is_local,
    is_spread,
    open_spread,
)
from caviar.nn import TrainingData, resolve_device
from caviar.nn.engine import DTYPES
from caviar.own.builder import resolve as resolve_builder
from caviar.own.data import PreparedModuleData
from caviar.search import warm_start
from caviar.search.config import StudyConfig, config_from_mapping, load_config
from caviar.search.loop import SearchLoop, objective, study_meter
from caviar.search.own_model import tune_module
from caviar.study import Study

__all__ = ["DTYPES", "PreparedData", "objective", "prepare_data", "tune"]


@dataclass(frozen=True)
class PreparedData:
    """The dataset, its validation split, and the tensors the engine trains on."""

    dataset: Dataset
    split: Split
    training: TrainingData

    @cached_property
    def fingerprint(self) -> str:
        """sha256 of the examples and labels (train and test), as loaded and cut (computed
        once: it reads every byte of the data)."""
        digest = hashlib.sha256()
        for array in (
            self.dataset.x_train,
            self.dataset.y_train,
            self.dataset.x_test,
            self.dataset.y_test,
        ):
            digest.update(np.ascontiguousarray(array).tobytes())
        return digest.hexdigest()

    def preprocessing(self) -> dict[str, Any]:
        """What was done to the raw examples (:mod:`caviar.data.preprocessing`), as kept
        models record it."""
        done = self.dataset.preprocessing
        assert done is not None  # a Dataset always has one once built
        return done.to_dict()

    def record(self) -> dict[str, Any]:
        """What the study keeps about its data, so a later run can check it is the same."""
        return {
            "dataset": self.dataset.name,
            "source": self.dataset.source,
            "n_classes": self.dataset.n_classes,
            "n_features": int(self.dataset.x_train.shape[1]),
            "n_train": len(self.split.train_indices),
            "n_validation": len(self.split.val_indices),
            "n_test": len(self.dataset.y_test),
            "validation": self.split.fraction,
            "split_hash": self.split.hash,
            "data_hash": self.fingerprint,
        }

    def check(self, study: Study) -> None:
        """Refuse to go on if the study was run on other data or another split."""
        recorded = study.attrs.get("data", {})
        for key, what in (("data_hash", "examples"), ("split_hash", "validation split")):
            mine = self.split.hash if key == "split_hash" else self.fingerprint
            if recorded.get(key) != mine:
                raise InvalidValue(
                    "data",
                    f"study {study.name!r} was run on other {what} (hash "
                    f"{str(recorded.get(key))[:12]}); this config gives {mine[:12]}: the "
                    f"dataset, its size, the validation fraction or the seed changed",
                )


def prepare_data(config: StudyConfig) -> PreparedData:
    """Load the dataset and cut its validation split, refusing sizes that cannot measure
    anything and warning (:class:`~caviar.data.DataWarning`) about ones that measure little."""
    d = config.data
    dataset = load_dataset(
        d.dataset,
        data_dir=d.data_dir,
        cache_dir=d.cache_dir,
        train_size=d.train_size,
        test_size=d.test_size,
        label_column=d.label_column,
        key_prefix="data.",
    )
    split = split_for_study(
        dataset, d.validation, seed=config.seed, train_size=d.train_size, key_prefix="data."
    )
    check_batch_size(largest_batch_size(config), len(split.train_indices), owner="space.batch_size")
    training = TrainingData.from_arrays(
        split.x_train, split.y_train, split.x_val, split.y_val, n_classes=dataset.n_classes
    )
    return PreparedData(dataset, split, training)


def largest_batch_size(config: StudyConfig) -> int:
    """The largest batch size the study's space can give (its fixed value, or the top of its
    range or choices)."""
    dim = config.space["batch_size"]
    count = dim.cardinality
    units = dim.grid_units(min(count, 64)) if count is not None else (1.0,)
    return int(max(dim.from_unit(u) for u in (*units, 1.0)))


def as_config(config: StudyConfig | Mapping[str, Any] | str | os.PathLike[str]) -> StudyConfig:
    """A StudyConfig from itself, a mapping, or a TOML/YAML path."""
    if isinstance(config, StudyConfig):
        return config
    if isinstance(config, Mapping):
        return config_from_mapping(config)
    return load_config(config)


def open_study(config: StudyConfig, data: PreparedData) -> Study:
    """Create the study, or load it if it exists with the same definition and data."""
    study = Study.create(
        config.name,
        config.space,
        storage=Path(config.study.storage),
        sampler=config.sampler(),
        seed=config.seed,
        attrs={"config": config.to_dict(), "data": data.record()},
        load_if_exists=True,
    )
    data.check(study)
    _check_ranking(study, config)
    study.set_attrs({"config": config.to_dict()})  # the latest run's budget and settings
    return study


#: settings outside the study's definition that still change what its values mean: a trial's
#: value is its objective, computed in its dtype, so one leaderboard cannot mix them
RANKING_KEYS = (("search", "objective"), ("study", "dtype"))


def _check_ranking(study: Study, config: StudyConfig) -> None:
    """Refuse to continue a study with another objective or dtype than its trials were run
    with, naming the difference."""
    stored = study.attrs.get("config", {})
    new = config.to_dict()
    for section, key in RANKING_KEYS:
        before = stored.get(section, {}).get(key)
        if before is not None and before != new[section][key]:
            raise InvalidValue(
                f"{section}.{key}",
                f"study {study.name!r} was run with {key} {before!r}, and its trials' values "
                f"mean that; {new[section][key]!r} would mix two rankings in one leaderboard. "
                f"Use another study name (--name), or {key} {before!r}",
            )


def check_device(config: StudyConfig) -> None:
    """The config's device exists here (an InvalidValue naming ``study.device`` if not); for a
    spread run, that Ray is installed (``search.ray``) or the local workers' devices exist."""
    plan = config.spread_plan()
    if is_spread(plan):
        check_spread(plan)
        return
    try:
        resolve_device(config.study.device)
    except InvalidValue as e:
        raise e.at("study.device") from None


@contextlib.contextmanager
def _spread(
    config: StudyConfig, data: PreparedData, started: float, clock: Callable[[], float]
) -> Iterator[SpreadPool | None]:
    """The workers the config asks for (None: one process), ended after the run."""
    plan = config.spread_plan()
    if not is_spread(plan):
        yield None
        return
    timeout = config.search.timeout
    deadline = None if timeout is None else started + timeout
    owned = not is_local(plan) and connect(plan)
    try:
        spread = open_spread(
            plan,
            data.training,
            seconds_left=lambda: None if deadline is None else deadline - clock(),
        )
        try:
            yield spread
        finally:
            spread.close()
    finally:
        if owned:
            disconnect()


def tune(
    config: StudyConfig | Mapping[str, Any] | str | os.PathLike[str],
    *,
    progress: bool = True,
    report: bool = True,
    stream: TextIO | None = None,
    clock: Callable[[], float] = time.monotonic,
    on_study: Callable[[Study], None] | None = None,
) -> Study:
    """Run (or continue) the study a config describes; returns the study.

    With ``search.timeout``, the budget counts from this call. With ``report``, the report is
    written beside the storage file (``caviar-reports/<study name>/index.html``). ``on_study``
    is called with the study once it is stored, before the first trial (the live dashboard
    starts reading the file then, not while it is being made).
    """
    started = clock()
    config = as_config(config)
    if config.study.model is not None:
        return _tune_own_model(config, progress, report, stream, clock, started, on_study)
    check_device(config)  # before any data is loaded or study created
    warm_start.check(config)
    governor = ThreadGovernor(config.study.threads)
    data = prepare_data(config)
    study = open_study(config, data)
    try:
        if on_study is not None:
            on_study(study)
        _search(study, config, data, governor, progress, stream, clock, started)
        if report:
            from caviar.report import write_report  # deferred: plotly and scikit-learn, at the end

            write_report(study)
    except BaseException:  # closed, so that the file's -wal and -shm go with the connection
        study.close()
        raise
    return study


def _tune_own_model(
    config: StudyConfig,
    progress: bool,
    report: bool,
    stream: TextIO | None,
    clock: Callable[[], float],
    started: float,
    on_study: Callable[[Study], None] | None,
) -> Study:
    """A config naming the user's model (``[study] model = "package.module:build"``): its
    candidates trained as a population of that module (:mod:`caviar.search.own_model`), on the
    config's dataset, as ``load_dataset`` gives it (examples flattened: the builder reshapes)."""
    assert config.study.model is not None
    build = resolve_builder(config.study.model, "study.model")
    for key, what in (("ray", config.search.ray), ("devices", config.search.devices)):
        if what:
            raise InvalidValue(
                f"search.{key}",
                "spreading a study of your own model over workers is not supported yet; it "
                "trains in this process (one GPU, or the CPU)",
            )
    if config.search.warm_start is not None:
        raise InvalidValue(
            "search.warm_start", "is for caviar's nets; a study of your own model starts afresh"
        )
    check_device(config)
    governor = ThreadGovernor(config.study.threads)
    data = prepare_data(config)
    dataset = data.dataset
    prepared = PreparedModuleData(data.split, dataset.n_classes, (dataset.x_test, dataset.y_test))
    return tune_module(
        config,
        build,
        prepared,
        progress=progress,
        report=report,
        stream=stream,
        clock=clock,
        started=started,
        on_study=on_study,
        governor=governor,
    )


def _search(
    study: Study,
    config: StudyConfig,
    data: PreparedData,
    governor: ThreadGovernor,
    progress: bool,
    stream: TextIO | None,
    clock: Callable[[], float],
    started: float,
) -> None:
    """Continue the study's search: the trials of a dead run back to the queue, a warm start
    on a new study, then the pool until the trials or the budget are spent."""
    study.recover()
    warmed = warm_start.begin(study, config)
    meter = study_meter(
        study, config, stream=stream, enabled=progress, clock=clock, started=started
    )
    if warmed is not None:
        meter.note(warmed)
    with _spread(config, data, started, clock) as spread:
        loop = SearchLoop(
            study,
            config,
            data.training,
            meter,
            clock=clock,
            started=started,
            governor=governor,
            spread=spread,
            preprocessing=data.preprocessing(),
        )
        try:
            loop.run()
        finally:
            meter.close()
