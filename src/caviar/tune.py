"""The caviar job: a study config in, a finished study (and a report) out.

1. Load the data and carve the validation split (seeded, stratified; its hash goes into the
   study, and a study continued later must see the same split). The test set is not touched.
2. Open the study, or continue it: trials of a dead run go back to the queue.
3. Ask the sampler for as many trials as it can offer (a whole random search, one
   coarse-to-fine round), train them together as one population, stream every member's learning
   curve into the study, and tell each trial its objective (or that it diverged).
4. Repeat until the budget is spent; write the report.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import torch

from caviar.config import StudyConfig, config_from_mapping, load_config
from caviar.data import Dataset, Split, load_dataset, split_validation
from caviar.errors import InvalidValue
from caviar.nn import EpochEvent, MemberSpec, Population, TrainingData, resolve_device
from caviar.progress import Progress
from caviar.records import EpochRecord, TrialState
from caviar.study import Study, Trial

DTYPES = {"float32": torch.float32, "float64": torch.float64}


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
    d = config.data
    dataset = load_dataset(
        d["dataset"],
        data_dir=d["data_dir"],
        cache_dir=d["cache_dir"],
        train_size=d["train_size"],
        test_size=d["test_size"],
        label_column=d["label_column"],
    )
    split = split_validation(dataset.x_train, dataset.y_train, d["validation"], seed=config.seed)
    training = TrainingData.from_arrays(
        split.x_train, split.y_train, split.x_val, split.y_val, n_classes=dataset.n_classes
    )
    return PreparedData(dataset, split, training)


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
        storage=Path(config.study["storage"]),
        sampler=config.sampler(),
        seed=config.seed,
        attrs={"config": config.to_dict(), "data": data.record()},
        load_if_exists=True,
    )
    data.check(study)
    study.set_attrs({"config": config.to_dict()})  # the latest run's budget and settings
    return study


def objective(curve: list[EpochRecord], mode: str) -> float | None:
    """Validation accuracy at the last epoch (the book's ranking) or at the best epoch."""
    values = [r.val_accuracy for r in curve if np.isfinite(r.val_accuracy)]
    if not values:
        return None
    return float(values[-1] if mode == "final" else max(values))


def specs_for(study: Study, trials: list[Trial]) -> tuple[list[Trial], list[MemberSpec]]:
    """Member specs for trials; a configuration the engine refuses fails its trial."""
    kept, specs = [], []
    for trial in trials:
        try:
            specs.append(MemberSpec.from_params(trial.params, seed=trial.seed, owner="params"))
            kept.append(trial)
        except InvalidValue as e:
            study.tell(trial, None, state=TrialState.FAILED, attrs={"error": str(e)})
    return kept, specs


def run_population(
    study: Study,
    trials: list[Trial],
    config: StudyConfig,
    data: PreparedData,
    progress: Progress,
) -> None:
    """Train ``trials`` together as one population; tell the study each outcome as soon as the
    member finishes (or diverges), so a crash loses only unfinished members."""
    trials, specs = specs_for(study, trials)
    if not trials:
        return
    device = resolve_device(config.study["device"])
    dtype = DTYPES[config.study["dtype"]]
    population = Population(specs, data_seed=config.seed, device=device, dtype=dtype)
    curves: list[list[EpochRecord]] = [[] for _ in trials]
    told: set[int] = set()
    live_best: list[float] = []
    started = time.perf_counter()

    def finish(i: int, diverged_epoch: int | None) -> None:
        attrs: dict[str, Any] = {
            "device": str(device),
            "dtype": config.study["dtype"],
            "epochs_run": len(curves[i]),
            "population_size": len(trials),
            "seconds_in_population": round(time.perf_counter() - started, 3),
        }
        value = objective(curves[i], config.search["objective"])
        if diverged_epoch is not None or value is None:
            attrs["diverged_epoch"] = diverged_epoch
            study.tell(trials[i], None, state=TrialState.DIVERGED, attrs=attrs)
        else:
            study.tell(trials[i], value, attrs=attrs)
        told.add(i)

    def on_epoch(event: EpochEvent) -> None:
        fresh = [
            (i, r, d)
            for i, r, d in zip(event.members, event.records, event.diverged, strict=True)
            if i not in told
        ]
        for i, record, _ in fresh:
            del curves[i][record.epoch - 1 :]  # a chunk retried after running out of memory
            curves[i].append(record)
        study.report_epochs((trials[i].number, record) for i, record, _ in fresh)
        for i, record, diverged in fresh:
            if diverged or record.epoch == specs[i].epochs:
                finish(i, record.epoch if diverged else None)
        live_best.extend(r.val_accuracy for _, r, _ in fresh if np.isfinite(r.val_accuracy))
        progress.epoch_done(event.epoch, len(event.members), max(live_best, default=None))

    try:
        results = population.fit(data.training, on_epoch=on_epoch)
        for i, result in enumerate(results):  # members the events did not finish
            if i not in told:
                finish(i, result.diverged_epoch if result.diverged else None)
    except BaseException:
        # Ctrl-C, a busy store, a device error: not the trials' fault. Unfinished trials go back
        # to the queue and the next `caviar tune` trains them again from their seeds.
        study.release(t for i, t in enumerate(trials) if i not in told)
        raise


def check_device(config: StudyConfig) -> None:
    """The config's device exists here (an InvalidValue naming ``study.device`` if not)."""
    try:
        resolve_device(config.study["device"])
    except InvalidValue as e:
        raise e.at("study.device") from None


def tune(
    config: StudyConfig | Mapping[str, Any] | str | os.PathLike[str],
    *,
    progress: bool = True,
    report: bool = True,
    stream: TextIO | None = None,
) -> Study:
    """Run (or continue) the study a config describes; returns the study.

    With ``report``, the report is written beside the storage file
    (``caviar-reports/<study name>/index.html``).
    """
    config = as_config(config)
    check_device(config)  # before any data is loaded or study created
    data = prepare_data(config)
    study = open_study(config, data)
    study.recover()
    total = config.n_trials()
    meter = Progress(config.name, total, stream=stream, enabled=progress)
    population = config.search["population"] or total
    try:
        while True:
            trials = study.ask(population, max_trials=total)
            if not trials:
                others = study.trials([TrialState.RUNNING, TrialState.QUEUED], curves=False)
                if not others:
                    break
                time.sleep(2.0)  # another process runs the trials this round waits for
                study.recover()
                continue
            done = study.trials(curves=False)
            meter.population(
                sum(t.state.is_finished for t in done),
                len(trials),
                [int(t.params["epochs"]) for t in trials],
            )
            run_population(study, trials, config, data, meter)
            finished = [t for t in study.trials(curves=False) if t.state.is_finished]
            best = study.best_trial
            meter.trials_finished(
                len(finished),
                sum(t.state is TrialState.DIVERGED for t in finished),
                None if best is None else best.value,
            )
    finally:
        meter.close()
    if report:
        from caviar.report import write_report

        write_report(study)
    return study
