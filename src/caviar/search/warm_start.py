"""Warm start: re-tune a stale study, beginning from what an older one learned.

The course's advice: intuitions about hyperparameters go stale when the data or the machine
changes, so re-test them every few months. ``search.warm_start = "OLD"`` (``caviar tune CONFIG
--warm-start OLD``) names a study in the same file; when the new study starts:

1. the old study's best ``warm_start_top`` complete configurations (within the new space) are
   queued first, as trials 0, 1, ..., trained again on the new data, each recording the old
   trial and its old value (``attrs["warm_start"]``);
2. the old study's finished trials that lie within the new space are recorded in the new study
   (``attrs["warm_start"]["prior"]``), so a continued run needs the old study no more, and on
   every run they are handed to the sampler: TPE counts them as trials finished before its own
   (marked as from another study), and as its own trials come, Optuna's default weights count
   the oldest less, so the old study's weigh less and less. Random, grid and coarse to fine do
   not learn from trials; they only get the queued configurations.

A warm start applies to a new study only (given to a study with trials, it is refused), and not
to a grid, whose trials are its points.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from caviar.core.errors import InvalidValue
from caviar.core.records import FrozenTrial, TrialState
from caviar.search.config import StudyConfig
from caviar.space import SearchSpace
from caviar.storage.sqlite import SQLiteStorage
from caviar.study import Study

KEY = "search.warm_start"


def check(config: StudyConfig) -> None:
    """Refuse, before anything is written, a warm start that cannot be: from this study itself,
    into a grid, or from a study the file does not hold."""
    old, storage = config.search.warm_start, config.study.storage
    if old is None:
        return
    if old == config.name:
        raise InvalidValue(KEY, f"must name another study than this one, got {old!r}")
    if config.search.sampler == "grid":
        raise InvalidValue(
            KEY,
            "a grid's trials are its points, so it cannot take an old study's configurations "
            "first; use random, coarse_to_fine or tpe",
        )
    if not os.path.isfile(storage):
        raise InvalidValue(KEY, f"no study {old!r}: there is no study file at {storage!r} yet")
    names = SQLiteStorage(storage, read_only=True).study_names()
    if old not in names:
        others = [n for n in names if n != config.name]
        raise InvalidValue(KEY, f"no study {old!r} in {storage!r}; the studies there: {others}")


def begin(study: Study, config: StudyConfig) -> str | None:
    """Queue the old study's best configurations and record its trials in ``study`` if it is
    new; hand the recorded trials to the sampler. A line saying what was done, or None."""
    old = config.search.warm_start
    recorded = study.attrs.get("warm_start")
    if old is None and recorded is None:
        return None
    if recorded is None:
        recorded = _record(study, config, str(old))
    study.sampler.learn_from(prior_trials(study.space, recorded["prior"]))
    queued = len(recorded["queued"])
    used = (
        f"{len(recorded['prior'])} of its finished trials inform the {study.sampler.name} sampler"
        if study.sampler.learns
        else f"the {study.sampler.name} sampler does not learn from trials"
    )
    skipped = recorded["outside"]
    outside = f"; {skipped} lay outside this space" if skipped else ""
    return (
        f"caviar: warm start from study {recorded['study']!r}: its best {queued} "
        f"configuration{'s' if queued != 1 else ''} go first; {used}{outside}"
    )


def _record(study: Study, config: StudyConfig, old: str) -> dict[str, Any]:
    """The first run's work (:func:`check` has run): queue the best, record the old trials."""
    mine = study.trials(curves=False)
    if mine:
        raise InvalidValue(
            KEY,
            f"study {study.name!r} already has {len(mine)} trials; a warm start begins a new "
            f"study: give another --name",
        )
    source = Study.load(old, study.storage)
    finished = [t for t in source.trials(curves=False) if t.state.is_finished]
    inside = [t for t in finished if _within(study.space, t.params)]
    complete = [t for t in inside if t.state is TrialState.COMPLETE and t.value is not None]
    direction = source.direction
    complete.sort(key=lambda t: (direction.sort_key(t.value or 0.0), t.number))
    best = complete[: config.search.warm_start_top]
    study.enqueue(
        (
            {name: t.params[name] for name in study.space.free_names},
            {
                "proposed_by": "warm start",
                "warm_start": {"study": old, "trial": t.number, "value": t.value},
            },
        )
        for t in best
    )
    recorded = {
        "study": old,
        "queued": [t.number for t in best],
        "outside": len(finished) - len(inside),
        "prior": [_prior(study.space, t) for t in inside],
    }
    study.set_attrs({"warm_start": recorded})
    return recorded


def _within(space: SearchSpace, params: Mapping[str, Any]) -> bool:
    """Whether every searched value of ``params`` is legal in ``space``."""
    return all(name in params and space[name].contains(params[name]) for name in space.free_names)


def _prior(space: SearchSpace, t: FrozenTrial) -> dict[str, Any]:
    """An old trial as the new study keeps it: its point in the new space and how it ended."""
    return {
        "trial": t.number,
        "params": {name: t.params[name] for name in space.free_names},
        "state": t.state.value,
        "value": t.value,
        "rung": t.attrs.get("rung"),
        "rung_value": t.attrs.get("rung_value"),
    }


def prior_trials(space: SearchSpace, prior: Sequence[Mapping[str, Any]]) -> list[FrozenTrial]:
    """The recorded old trials as frozen trials of ``space``, numbered by their old numbers."""
    fixed = space.from_unit([0.5] * space.n_free)
    out = []
    for p in prior:
        params = {**fixed, **p["params"]}
        attrs = {"warm_start": True, "rung": p["rung"], "rung_value": p["rung_value"]}
        out.append(
            FrozenTrial(
                number=int(p["trial"]),
                state=TrialState(p["state"]),
                params=params,
                unit=space.to_unit(params),
                seed=0,
                value=p["value"],
                attrs={k: v for k, v in attrs.items() if v is not None},
            )
        )
    return out
