"""A study of the user's own model: the same ask -> fit -> tell loop as caviar's nets
(:mod:`caviar.search.loop`: the pool's slots refilled, halving, the budget and its end game,
the store, kept models), over a :class:`caviar.own.pool.ModulePool` of the modules the user's
builder makes.

Before the first trial, :func:`probe` builds the module at the space's corners and runs one
mini-batch, so that a builder that raises, an output that does not fit the labels, a loss that
is not finite or a hyperparameter nothing reads is one line before the study starts, not a
failed trial in the middle of it.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import torch
from torch import Tensor, nn

from caviar.core.errors import InvalidValue, got
from caviar.core.records import TrialState
from caviar.core.threads import ThreadGovernor
from caviar.data.splits import Split
from caviar.nn import resolve_device
from caviar.nn.engine import DTYPES
from caviar.nn.pool import RoundResult
from caviar.own.builder import Build, build_module, describe, resolve
from caviar.own.data import ModuleData, PreparedModuleData
from caviar.own.group import Loss
from caviar.own.member import KeptModule
from caviar.own.pool import ModulePool, ModuleRound, ModuleSpec
from caviar.own.space import MemberSettings
from caviar.search.config import StudyConfig
from caviar.search.loop import SearchLoop, study_meter
from caviar.space import Choice, SearchSpace
from caviar.study import Study, Trial


def cross_entropy(output: Tensor, target: Tensor) -> Tensor:
    """The default loss: softmax cross-entropy, the mean over the mini-batch."""
    return nn.functional.cross_entropy(output, target)


def module_spec(
    build: Build,
    params: Mapping[str, Any],
    seed: int,
    *,
    dtype: torch.dtype,
    device: torch.device,
) -> ModuleSpec:
    """The member a trial's hyperparameters make: the builder's module, and how to train it."""
    member = MemberSettings.from_params(params, owner="params")
    built = build_module(build, member.builder, seed, dtype=dtype, device=device)
    return ModuleSpec(
        seed=seed,
        epochs=member.epochs,
        batch_size=member.batch_size,
        optimizer=member.optimizer,
        settings=member.settings,
        module=built.module,
        params=dict(params),
    )


def probe(
    build: Build,
    space: SearchSpace,
    data: ModuleData,
    loss: Loss,
    *,
    dtype: torch.dtype,
    device: torch.device,
) -> int:
    """Build the module at the space's three corners (every unit coordinate 0, 0.5 and 1), and
    at every value of each choice (the others in the middle: a builder may read a key only for
    some values of a choice), and run a mini-batch of each through it and the loss; an
    :class:`InvalidValue` for the first thing that would make the trials drawn there fail, or
    a hyperparameter nothing reads."""
    read: set[str] = set()
    caviar_reads: set[str] = set()
    for point, where in probe_points(space):
        params = space.from_unit(point)
        member = MemberSettings.from_params(params)
        try:
            built = build_module(build, member.builder, 0, dtype=dtype, device=device)
            check_output(built.module, data, loss, member.batch_size, describe(build))
        except InvalidValue as e:
            if where is None:
                raise
            raise InvalidValue(
                e.owner,
                f"{e.reason}; with {where[0]} = {where[1]!r}, so the trials drawn there would "
                f"fail: narrow space.{where[0]}",
            ) from e
        read |= built.read
        caviar_reads |= set(params) - set(member.builder)
    unread = sorted(set(space) - read - caviar_reads)
    if unread:
        raise InvalidValue(
            f"space.{unread[0]}",
            f"neither the builder {describe(build)} nor the optimizer reads it (the builder "
            f"read {sorted(read) or 'nothing'}), so searching it would change nothing; remove it "
            "or read params[...] in the builder",
        )
    return len(probe_points(space))


def probe_config(config: StudyConfig, split: Split, n_classes: int) -> int:
    """What ``caviar tune --dry-run`` checks of a config naming a model: its builder imports,
    and :func:`probe` passes on the config's data; the points probed."""
    assert config.study.model is not None
    build = resolve(config.study.model, "study.model")
    device = resolve_device(config.study.device)
    dtype = DTYPES[config.study.dtype]
    data = ModuleData.from_split(split, n_classes, device=device, dtype=dtype)
    return probe(build, config.space, data, cross_entropy, dtype=dtype, device=device)


#: choices with more values than this are probed at the corners only
PROBED_CHOICES = 32


def probe_points(space: SearchSpace) -> list[tuple[list[float], tuple[str, Any] | None]]:
    """The unit points :func:`probe` builds: the three corners, then each value of each
    choice with the other coordinates in the middle (with the choice and its value)."""
    n = space.n_free
    points: list[tuple[list[float], tuple[str, Any] | None]] = [
        ([u] * n, None) for u in (0.5, 0.0, 1.0)
    ]
    for i, name in enumerate(space.free_names):
        dim = space[name]
        count = dim.cardinality
        if not isinstance(dim, Choice) or count is None or count > PROBED_CHOICES:
            continue
        for unit in dim.grid_units(count):
            point = [0.5] * n
            point[i] = unit
            points.append((point, (name, dim.from_unit(unit))))
    return points


def check_output(module: nn.Module, data: ModuleData, loss: Loss, batch: int, name: str) -> None:
    """One mini-batch: the output must be ``[batch, classes]`` with a score for every class
    the labels hold, and the loss a finite number."""
    n = min(batch, len(data.y_train), 32)
    x, y = data.x_train[:n].clone(), data.y_train[:n]  # a module may write into its input
    module.train()
    try:
        out = module(x)
    except Exception as e:  # the user's module: its error, said in one line
        first = str(e).splitlines()[0] if str(e) else ""
        raise InvalidValue(
            "model",
            f"the module the builder {name} makes fails on a batch of examples of shape "
            f"{list(x.shape)}: {type(e).__name__}: {first}",
        ) from e
    if not isinstance(out, Tensor) or out.ndim != 2 or out.shape[0] != n:
        shape = list(out.shape) if isinstance(out, Tensor) else type(out).__name__
        raise InvalidValue(
            "model",
            f"the module must return scores of shape [batch, classes], got {shape} for a "
            f"batch of {n}",
        )
    if out.shape[1] < data.n_classes:
        raise InvalidValue(
            "model",
            f"the module gives {out.shape[1]} scores per example, but the labels go to "
            f"{data.n_classes - 1}: it needs [batch, {data.n_classes}] (a score per class)",
        )
    value = loss(out, y)
    if not isinstance(value, Tensor) or value.numel() != 1:
        shown = f"shape {list(value.shape)}" if isinstance(value, Tensor) else got(value)
        raise InvalidValue("loss", f"must return one number (the batch's mean), got {shown}")
    if not torch.isfinite(value):
        raise InvalidValue(
            "loss",
            f"returned {float(value.detach())} on the first mini-batch with the initial weights; "
            "check the loss and the module's output",
        )


class ModuleSearch(SearchLoop):
    """The search loop over a pool of the user's module (see the module docstring)."""

    def __init__(self, *args: Any, build: Build, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.build = build
        self._kept: dict[int, KeptModule] = {}

    def _spec(self, trial: Trial) -> Any:
        """The trial's member, or None after failing a trial its builder refuses."""
        try:
            return module_spec(
                self.build, trial.params, trial.seed, dtype=self.dtype, device=self.device
            )
        except InvalidValue as e:
            self.study.tell(trial, None, state=TrialState.FAILED, attrs={"error": str(e)})
            self.progress.trial_finished(TrialState.FAILED, None)
            self.progress.note(f"caviar: trial {trial.number} failed: {e}")
            return None

    def _work(self, spec: Any) -> float:
        return float(spec.n_parameters)

    def _fill(self) -> None:
        super()._fill()
        for number, spec in self.specs.items():  # the pool holds their tensors now
            if isinstance(spec, ModuleSpec) and spec.module is not None:
                self.specs[number] = spec.taken()  # type: ignore[assignment]

    def _tell(self, result: RoundResult) -> None:
        if isinstance(result, ModuleRound):
            self._kept.update(result.kept)
            for number, error in result.failed.items():
                self._failed(number, error)
        super()._tell(result)

    def _failed(self, number: int, error: str) -> None:
        """Trial ``number``'s module failed to train, even alone: the trial failed, said in one
        line, and the study goes on."""
        trial = self.running.pop(number, None)
        if trial is None:
            return
        attrs = {**self._attrs(number), "error": error}
        self.curves.pop(number, None)
        if self._told(trial, None, TrialState.FAILED, attrs):
            self.progress.trial_finished(TrialState.FAILED, None)
            self.progress.note(f"caviar: trial {number} failed: {error}")

    def _finish(self, number: int, diverged: bool, state: Any) -> None:
        super()._finish(number, diverged, self._kept.pop(number, None))


def data_record(prepared: PreparedModuleData, dataset: str) -> dict[str, Any]:
    """What the study keeps about the user's data, so a later run can check it is the same."""
    split = prepared.split
    digest = hashlib.sha256()
    for array in (split.x_train, split.y_train, split.x_val, split.y_val):
        digest.update(np.ascontiguousarray(array).tobytes())
    return {
        "dataset": dataset,
        "n_classes": prepared.n_classes,
        "example_shape": list(split.x_train.shape[1:]),
        "n_train": len(split.train_indices),
        "n_validation": len(split.val_indices),
        "n_test": None if prepared.test is None else len(prepared.test[1]),
        "validation": split.fraction,
        "split_hash": split.hash,
        "data_hash": digest.hexdigest(),
    }


def open_module_study(config: StudyConfig, record: Mapping[str, Any]) -> Study:
    """Create the study, or continue the stored one if its definition and data are the same."""
    study = Study.create(
        config.name,
        config.space,
        storage=Path(config.study.storage),
        sampler=config.sampler(),
        seed=config.seed,
        attrs={"config": config.to_dict(), "data": dict(record)},
        load_if_exists=True,
    )
    before = study.attrs.get("config", {}).get("study", {}).get("model")
    if before != config.study.model:
        study.close()
        raise InvalidValue(
            "study.model",
            f"study {config.name!r} was run with the model {before!r}; {config.study.model!r} "
            "would mix two models in one leaderboard. Use another study name, or that model",
        )
    stored = study.attrs.get("data", {})
    for key, what in (("data_hash", "examples"), ("split_hash", "validation split")):
        if stored.get(key) != record[key]:
            study.close()
            raise InvalidValue(
                "data",
                f"study {study.name!r} was run on other {what} (hash {str(stored.get(key))[:12]}); "
                f"these give {str(record[key])[:12]}: use another study name, or the same data",
            )
    study.set_attrs({"config": config.to_dict()})
    return study


def tune_module(
    config: StudyConfig,
    build: Build,
    prepared: PreparedModuleData,
    *,
    loss: Loss | None = None,
    progress: bool = True,
    report: bool = True,
    stream: TextIO | None = None,
    clock: Callable[[], float] = time.monotonic,
    started: float | None = None,
    on_study: Callable[[Study], None] | None = None,
    governor: ThreadGovernor | None = None,
) -> Study:
    """Run (or continue) a study of the user's model: probe the builder, open the study, then
    the pool until the trials or the budget are spent, and write the report."""
    started = clock() if started is None else started
    device = resolve_device(config.study.device)
    dtype = DTYPES[config.study.dtype]
    data = ModuleData.from_split(prepared.split, prepared.n_classes, device=device, dtype=dtype)
    loss = cross_entropy if loss is None else loss
    probe(build, config.space, data, loss, dtype=dtype, device=device)
    study = open_module_study(config, data_record(prepared, config.data.dataset))
    try:
        if on_study is not None:
            on_study(study)
        study.recover()
        meter = study_meter(
            study, config, stream=stream, enabled=progress, clock=clock, started=started
        )
        pool = ModulePool(
            data, loss=loss, data_seed=config.seed, model=config.study.model, note=meter.note
        )
        loop = ModuleSearch(
            study,
            config,
            None,
            meter,
            clock=clock,
            started=started,
            governor=governor,
            engine=pool,
            build=build,
        )
        try:
            loop.run()
        finally:
            meter.close()
        if report:
            from caviar.report import write_report  # deferred: plotly and scikit-learn, at the end

            write_report(study)
    except BaseException:
        study.close()
        raise
    return study
