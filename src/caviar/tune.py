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

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import torch

from caviar.config import StudyConfig, config_from_mapping, load_config
from caviar.data import Dataset, Split, load_dataset, split_validation
from caviar.errors import InvalidValue
from caviar.nn import EpochEvent, MemberSpec, Population, TrainingData, resolve_device
from caviar.progress import Progress
from caviar.study import EpochRecord, Study, Trial, TrialState

DTYPES = {"float32": torch.float32, "float64": torch.float64}


@dataclass(frozen=True)
class PreparedData:
    """The dataset, its validation split, and the tensors the engine trains on."""

    dataset: Dataset
    split: Split
    training: TrainingData

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
        }


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
    """Create the study, or load it if it exists with the same definition and data split."""
    study = Study.create(
        config.name,
        config.space,
        storage=Path(config.study["storage"]),
        sampler=config.sampler(),
        seed=config.seed,
        attrs={"config": config.to_dict(), "data": data.record()},
        load_if_exists=True,
    )
    study.set_attrs({"config": config.to_dict()})  # the latest run's budget and settings
    recorded = study.attrs.get("data", {}).get("split_hash")
    if recorded != data.split.hash:
        raise InvalidValue(
            "data",
            f"study {config.name!r} was run on another validation split (hash {recorded}); "
            f"this data gives {data.split.hash}: the dataset, its size or the seed changed",
        )
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
    """Train ``trials`` together as one population and tell the study each outcome."""
    trials, specs = specs_for(study, trials)
    if not trials:
        return
    device = resolve_device(config.study["device"])
    dtype = DTYPES[config.study["dtype"]]
    population = Population(specs, data_seed=config.seed, device=device, dtype=dtype)
    live_best: list[float] = []

    def on_epoch(event: EpochEvent) -> None:
        study.report_epochs(
            (trials[i].number, record)
            for i, record in zip(event.members, event.records, strict=True)
        )
        accuracies = [r.val_accuracy for r in event.records if np.isfinite(r.val_accuracy)]
        if accuracies:
            live_best.append(max(accuracies))
        progress.epoch_done(event.epoch, len(event.members), max(live_best, default=None))

    started = time.perf_counter()
    try:
        results = population.fit(data.training, on_epoch=on_epoch)
    except KeyboardInterrupt:
        study.release(trials)  # a later `caviar tune` runs them again
        raise
    except Exception as e:
        for trial in trials:
            study.tell(trial, None, state=TrialState.FAILED, attrs={"error": repr(e)})
        raise
    seconds = time.perf_counter() - started
    for trial, result in zip(trials, results, strict=True):
        attrs = {
            "device": str(device),
            "dtype": config.study["dtype"],
            "epochs_run": len(result.curve),
            "population_size": len(trials),
            "population_seconds": round(seconds, 3),
        }
        value = objective(result.curve, config.search["objective"])
        if result.diverged or value is None:
            attrs["diverged_epoch"] = result.diverged_epoch
            study.tell(trial, None, state=TrialState.DIVERGED, attrs=attrs)
        else:
            study.tell(trial, value, attrs=attrs)


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
    try:  # before any data is loaded or study created
        resolve_device(config.study["device"])
    except InvalidValue as e:
        raise e.at("study.device") from None
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
