"""Plain-objective studies, as in Optuna: ``def objective(trial) -> float`` over a caviar study.

For anything caviar cannot train itself. The objective reads its values from the trial
(``trial["lr"]``, drawn from a caviar :class:`~caviar.space.SearchSpace` on its scale), may report
intermediate values (``trial.report(value, step)``) and stop when successive halving says so
(``if trial.should_prune(): raise TrialPruned()``), and returns its value. Around it is caviar's
study: kept in SQLite trial by trial, continued after a crash, read by the report and the
dashboard (:mod:`caviar.search.objective_trial` says how a reported value is stored and judged).

How a trial ends, from what the objective did:

- returned a finite number: COMPLETE with it;
- returned NaN or an infinity: DIVERGED (``attrs["diverged"]`` says what it returned);
- returned anything else (None, a string, a list): FAILED, with one line naming what it returned
  and what is allowed (``attrs["error"]``); the study goes on;
- raised :class:`TrialPruned`: PRUNED, with the rung that stopped it and its value there;
- raised an exception of ``catch``: FAILED (``attrs["error"]``: ``"ValueError: ..."``), and the
  study goes on; any other exception: FAILED, then raised again, as Optuna does;
- was interrupted (KeyboardInterrupt, SystemExit: any exception that is not an ``Exception``):
  the trial goes back to the queue, its reported curve dropped, and the interruption is raised
  again; the next call with the same name and storage runs it again, from the same params and
  seed.
"""

from __future__ import annotations

import math
import os
import reprlib
import time
from collections.abc import Callable, Mapping
from dataclasses import fields
from typing import Any

from caviar.core.constraints import integer, one_of
from caviar.core.errors import InvalidValue, got
from caviar.core.records import Direction, TrialState
from caviar.core.seeding import check_seed
from caviar.samplers import CoarseToFineSampler, GridSampler, RandomSampler, Sampler, TPESampler
from caviar.search.halving import HALVING, Halving, resolve
from caviar.search.objective_trial import (
    METRIC,
    ObjectiveTrial,
    StepRungs,
    TrialPruned,
    real_number,
)
from caviar.search.progress import Progress
from caviar.search.sections import SearchSection
from caviar.space import SearchSpace
from caviar.study import Study, Trial, TrialsTakenOver

__all__ = ["ObjectiveTrial", "TrialPruned", "run_objective"]

#: who the messages name: the public entry, ``caviar.optimize``
OWNER = "optimize"
#: the rules of ``[search]`` that mean the same here (sampler, trials, timeout): stated once
_SEARCH = {f.name: f.metadata["rule"] for f in fields(SearchSection)}
DIRECTION = one_of(*(d.value for d in Direction))
MAX_STEPS = integer(1, nullable=True)
#: seconds between looks at the store while other processes hold the trials the sampler awaits
WAIT = 1.0
#: ``max_steps`` when it is not given: the rungs go on without end
_ENDLESS = 2**62


def make_sampler(name: str, seed: int, trials: int | None) -> Sampler:
    """The sampler ``name`` with its defaults, as ``search.sampler`` gives it: coarse to fine
    splits ``trials`` over its rounds (its own default, 3 rounds of 20, without them)."""
    name = _SEARCH["sampler"].check(name, f"{OWNER}.sampler")
    if name == "grid":
        return GridSampler()
    if name == "coarse_to_fine":
        if trials is None:
            return CoarseToFineSampler(seed=seed)
        rounds = min(trials, 3)
        per_round = [trials // rounds + (r < trials % rounds) for r in range(rounds)]
        return CoarseToFineSampler(rounds=rounds, per_round=per_round, seed=seed)
    return TPESampler(seed) if name == "tpe" else RandomSampler(seed)


def check_halving(value: Any, sampler: str, max_steps: int | None) -> Halving | None:
    """None or False (off), True (:class:`Halving`'s defaults), a :class:`Halving`, a table of
    its keys, or 'auto' (on for tpe where a trial can reach the first rung). Brackets share the
    trials by the rungs below ``max_steps``, so several need it."""
    if isinstance(value, Halving):
        halving: Halving | None = value
    else:
        HALVING.check(value, f"{OWNER}.halving")
        halving = resolve(value, sampler, max_steps or _ENDLESS)
    if halving is not None and halving.brackets > 1 and max_steps is None:
        raise InvalidValue(
            f"{OWNER}.max_steps",
            f"must be given for halving with {halving.brackets} brackets (they share the "
            "trials by the rungs below it), got None",
        )
    return halving


def _check_catch(catch: Any) -> tuple[type[Exception], ...]:
    found = catch if isinstance(catch, tuple) else (catch,)
    if not all(isinstance(c, type) and issubclass(c, Exception) for c in found):
        raise InvalidValue(
            f"{OWNER}.catch", f"must be an exception class or a tuple of them, {got(catch)}"
        )
    return found


def run_objective(
    objective: Callable[[ObjectiveTrial], float],
    space: SearchSpace | Mapping[str, Any],
    *,
    name: str = "objective",
    storage: str | os.PathLike[str] | None = "caviar.db",
    seed: int = 0,
    trials: int | None = None,
    timeout: float | None = None,
    direction: str = "maximize",
    sampler: str | Sampler = "tpe",
    halving: bool | Halving | Mapping[str, int] | str | None = None,
    catch: type[Exception] | tuple[type[Exception], ...] = (),
    progress: bool = False,
    max_steps: int | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Study:
    """Run ``objective`` on trials of the study ``name`` in ``storage`` (a SQLite file; None:
    in memory) over ``space`` (a SearchSpace, or its config form:
    ``{"lr": {"scale": "log", "low": 1e-4, "high": 1e-1}}``), and return the study (close it
    when done). How each trial ends is in the module's docstring.

    - **One trial at a time.** The study's trials number from 0; ``trials`` is how many the study
      holds in all (not per call, unlike Optuna's ``n_trials``): a second call with the same
      name runs only those not run yet. Several processes may run one study at once: they share
      its trials through the store. ``sampler``: 'tpe' (caviar's TPESampler), 'random', 'grid'
      (5 points per searched dimension: a grid's size caps the trials) or 'coarse_to_fine',
      seeded with ``seed`` (a Sampler of your own settings is taken as it is). The same seed
      gives the same proposals for the same results.
    - **A time budget.** ``timeout`` seconds from the call: no trial starts after it; a running
      objective is not interrupted. Without ``trials`` and ``timeout``, only a sampler with an
      end (grid, coarse to fine) may run.
    - **A continued study.** The stored study of that name is continued if its definition
      (space, sampler, direction, seed) is the same; trials held by a process that died go back
      to the queue (:meth:`Study.recover`) and run first, from the same params and seed.
    - **Successive halving** (``halving``: None or False off; True for :class:`Halving`'s
      defaults; a Halving; rungs counted in reported steps), judged as
      :mod:`caviar.search.objective_trial` says, against every trial the study ran before.
      ``max_steps``, the most steps a trial reports, bounds the rungs (a trial at its last step
      is not judged) and is needed for brackets; without it the rungs go on without end, and a
      trial is judged at every rung it reports at or past.
    - ``progress``: the progress line on stderr. Notes on failed trials go there always.
    """
    started = clock()
    if not callable(objective):
        raise InvalidValue(f"{OWNER}.objective", f"must be callable, {got(objective)}")
    if not isinstance(space, SearchSpace | Mapping):
        raise InvalidValue(
            f"{OWNER}.space", f"must be a SearchSpace or a table of dimensions, {got(space)}"
        )
    space = space if isinstance(space, SearchSpace) else SearchSpace(space, owner=f"{OWNER}.space")
    seed = check_seed(OWNER, seed)
    trials = _SEARCH["trials"].check(trials, f"{OWNER}.trials")
    timeout = _SEARCH["timeout"].check(timeout, f"{OWNER}.timeout")
    way = Direction(DIRECTION.check(direction, f"{OWNER}.direction"))
    max_steps = MAX_STEPS.check(max_steps, f"{OWNER}.max_steps")
    chosen = sampler if isinstance(sampler, Sampler) else make_sampler(sampler, seed, trials)
    schedule = check_halving(halving, chosen.name, max_steps)
    caught = _check_catch(catch)
    if trials is None and timeout is None and chosen.capacity(space) is None:
        raise InvalidValue(
            f"{OWNER}.trials",
            f"must be given for {chosen.name} search without a timeout (it would never end), "
            "got None",
        )
    what = f"{getattr(objective, '__module__', '?')}.{getattr(objective, '__qualname__', '?')}"
    attrs = {"objective": {"function": what, "metric": METRIC[way], "max_steps": max_steps}}
    study = Study.create(
        name,
        space,
        storage=storage,
        sampler=chosen,
        direction=way,
        seed=seed,
        attrs=attrs,
        load_if_exists=True,
    )
    try:
        study.recover()
        run = _Run(study, objective, trials, caught, schedule, max_steps)
        run.deadline = None if timeout is None else started + timeout
        run.clock = clock
        total = min((c for c in (trials, chosen.capacity(space)) if c is not None), default=None)
        run.progress = Progress(
            study.name,
            total,
            enabled=progress,
            timeout=timeout,
            clock=clock,
            started=started,
            direction=way,
            score="value",
        )
        run.run()
    except BaseException:
        study.close()
        raise
    return study


class _Run:
    """One call's trials, asked one at a time: ask -> objective -> tell."""

    deadline: float | None = None
    clock: Callable[[], float] = time.monotonic
    progress: Progress

    def __init__(
        self,
        study: Study,
        objective: Callable[[ObjectiveTrial], float],
        trials: int | None,
        catch: tuple[type[Exception], ...],
        halving: Halving | None,
        max_steps: int | None,
    ) -> None:
        self.study, self.objective, self.trials, self.catch = study, objective, trials, catch
        self.max_steps = max_steps
        self.rungs = None if halving is None else StepRungs(halving, study.direction, max_steps)

    def out_of_time(self) -> bool:
        return self.deadline is not None and self.clock() >= self.deadline

    def run(self) -> None:
        done = self.study.trials([s for s in TrialState if s.is_finished], curves=False)
        best = self.study.best_trial
        self.progress.resume(len(done), None if best is None else best.value)
        try:
            while not self.out_of_time():
                asked = self.study.ask(1, max_trials=self.trials)
                if asked:
                    self.one(asked[0])
                elif not self._wait_for_others():
                    break
        finally:
            self.progress.close()

    def _wait_for_others(self) -> bool:
        """Whether other processes hold trials whose results the sampler awaits (a coarse
        to fine round); then wait a little. False when the study has nothing left to run."""
        history = self.study.trials(curves=False)
        if self.trials is not None and len(history) >= self.trials:
            return False  # every trial is taken: those of other processes are theirs to run
        if not any(t.state in (TrialState.RUNNING, TrialState.QUEUED) for t in history):
            return False  # the sampler is exhausted
        time.sleep(WAIT)
        self.study.recover()
        return True

    def one(self, trial: Trial) -> None:
        """Run the objective on ``trial`` and tell the study how it ended."""
        if self.rungs is not None:
            self.rungs.catch_up(self.study)
            self.rungs.counted.add(trial.number)
        self.progress.training(1)
        handed = ObjectiveTrial(self.study, trial, self.rungs, self.max_steps)
        try:
            returned = self.objective(handed)
        except TrialPruned:
            self._tell(handed, None, TrialState.PRUNED)
            return
        except TrialsTakenOver as e:  # another process found this one stalled, and runs it
            self.progress.note(f"caviar: {e}; this run goes on with other trials")
            return
        except Exception as e:
            error = f"{type(e).__name__}: {e}"
            self._tell(handed, None, TrialState.FAILED, {"error": error})
            if not isinstance(e, self.catch):
                raise
            self.progress.note(f"caviar: trial {trial.number} failed: {error}")
            return
        except BaseException:
            self.study.release([trial])
            raise
        value = real_number(returned)
        if value is None:
            error = (
                f"the objective returned {reprlib.repr(returned)} ({type(returned).__name__}); "
                "it "
                "must return a real number (an int or a float; NaN or inf: diverged)"
            )
            self.progress.note(f"caviar: trial {trial.number} failed: {error}")
            self._tell(handed, None, TrialState.FAILED, {"error": error})
        elif not math.isfinite(value):
            said = {"diverged": f"the objective returned {value}"}
            self._tell(handed, None, TrialState.DIVERGED, said)
        else:
            self._tell(handed, value, TrialState.COMPLETE)

    def _tell(
        self,
        trial: ObjectiveTrial,
        value: float | None,
        state: TrialState,
        attrs: Mapping[str, Any] | None = None,
    ) -> None:
        try:
            told = trial.attrs(state) | dict(attrs or {})
            self.study.tell(trial.number, value, state=state, attrs=told)
        except TrialsTakenOver as e:
            self.progress.note(f"caviar: {e}; this run goes on with other trials")
            return
        self.progress.trial_finished(state, value, len(trial.reports))
        self.progress.training(0)
