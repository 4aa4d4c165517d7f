"""The search as a loop over pool events: ask -> fit -> tell.

1. Ask the study for as many trials as the pool has free slots (none once the time budget is
   spent), and add them to the pool.
2. Train one round: an epoch for every member (:class:`~caviar.nn.Pool`).
3. Tell the study what the round gave: every epoch's record; each member that finished or
   diverged; each member that successive halving stops at a rung (pruned, with its curve).
   Their slots go to the next trials at once.
4. When the budget runs out mid-round, the round stops there, and the members still training go
   back to the queue for the next ``caviar tune``: every trial is complete, pruned, diverged,
   failed, or queued; none is half-told. Before that, after every round, the budget's end game
   (:mod:`caviar.search.endgame`) sends back the members whose next decision cannot come in time, so
   the others finish, and starts a new trial only if its first decision fits.

When the pool is empty but other processes hold trials the study still needs, the run waits for
them and says for whom and how long. When another process took over this run's trials (it was
stopped past the heartbeat's limit), the run says so and goes on with other trials. When the store
fails (a full disk, a corrupt row), the run stops with that error: every trial told before it is
stored, and the trials in the pool go back to the queue if the store still takes the change.

The final states of the best ``keep_models`` trials are kept beside the study
(:mod:`caviar.search.kept`), so the searched model itself can be tested, exported and loaded.

The loop drives one :class:`Engine`: a local :class:`~caviar.nn.Pool`, or pools on several Ray
workers (:class:`caviar.distributed.SpreadPool`). A round may also report members lost with a
worker that died (:class:`SpreadRound`), or to the device's memory mid-epoch: their trials go
back to the queue at once, and the next free slots train them again from their seeds.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any, TextIO

import numpy as np
import torch

from caviar.core import interrupts
from caviar.core.errors import InvalidValue
from caviar.core.records import EpochRecord, FrozenTrial, TrialState
from caviar.core.threads import ThreadGovernor
from caviar.nn import (
    InsufficientMemory,
    MemberSpec,
    MemberState,
    Pool,
    TrainingData,
    resolve_device,
)
from caviar.nn.device import matmul_precision
from caviar.nn.engine import DEFAULT_SLOTS, DTYPES, Engine, Spread
from caviar.nn.fused import wants_compile
from caviar.nn.graphs import graph_factory
from caviar.nn.memory import available_bytes, bytes_per_member, n_parameters
from caviar.nn.pool import RoundResult
from caviar.own.member import KeptModule
from caviar.search.config import UNBOUNDED, StudyConfig
from caviar.search.endgame import Running, epochs_to_decision, plan
from caviar.search.halving import Halving, Rungs
from caviar.search.kept import kept_state_path
from caviar.search.progress import Progress
from caviar.storage import StorageError
from caviar.study import Study, Trial, TrialsTakenOver

#: under a time budget, the share of it in which a first trial should be able to finish
FIRST_RESULT = 0.15
#: under a time budget, the members of the first round, which measures the pace
FIRST_ROUND_SLOTS = 4
#: seconds between notes about the same trials held elsewhere
WAIT_NOTE_EVERY = 60.0
#: trials asked of the study at once when filling free slots (about 0.25 s of asking on a CPU)
ASK_AT_ONCE = 1024


def objective(curve: list[EpochRecord], mode: str) -> float | None:
    """Validation accuracy at the last epoch (the book's ranking) or at the best epoch."""
    values = [r.val_accuracy for r in curve if np.isfinite(r.val_accuracy)]
    if not values:
        return None
    return float(values[-1] if mode == "final" else max(values))


def study_meter(
    study: Study,
    config: StudyConfig,
    *,
    stream: TextIO | None,
    enabled: bool,
    clock: Callable[[], float],
    started: float,
) -> Progress:
    """The progress line of a run of ``study``, resumed at the trials it has finished; the
    trials it plans are stored for a live dashboard (another process) to count against."""
    total = config.n_trials()
    planned = None if total == UNBOUNDED else total
    study.set_attrs({"planned_trials": planned})
    meter = Progress(
        config.name,
        planned,
        stream=stream,
        enabled=enabled,
        timeout=config.search.timeout,
        clock=clock,
        started=started,
    )
    finished = [t for t in study.trials(curves=False) if t.state.is_finished]
    best = study.best_trial
    meter.resume(len(finished), None if best is None else best.value)
    return meter


class ModelKeeper:
    """Keeps the final states of a study's best ``k`` complete trials on disk."""

    def __init__(
        self, study: Study, storage: str, k: int, preprocessing: dict[str, Any] | None = None
    ) -> None:
        self.study, self.storage, self.k = study, storage, k
        #: what was done to the raw examples, saved with each model so it can say and redo it
        self.preprocessing = preprocessing

    def offer(self, number: int, state: MemberState | KeptModule) -> None:
        """Keep trial ``number``'s state if it is among the best ``k``; drop any that fell out."""
        if self.k == 0:
            return
        best = [t.number for t in self.study.leaderboard(self.k)]
        if number not in best:
            return
        path = kept_state_path(self.storage, self.study.name, number)
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(state, KeptModule):
            state.with_preprocessing(self.preprocessing).save(path)
        else:
            replace(state, preprocessing=self.preprocessing).save(path)
        kept = [n for n in self.study.attrs.get("kept_models", []) if n != number]
        for n in kept:
            if n not in best:
                with contextlib.suppress(FileNotFoundError):
                    kept_state_path(self.storage, self.study.name, n).unlink()
        self.study.set_attrs({"kept_models": sorted([*(n for n in kept if n in best), number])})


class SearchLoop:
    """One run of a study's search over a pool of members (see the module docstring)."""

    def __init__(
        self,
        study: Study,
        config: StudyConfig,
        training: TrainingData | None,
        progress: Progress,
        *,
        clock: Callable[[], float] = time.monotonic,
        started: float | None = None,
        governor: ThreadGovernor | None = None,
        spread: Spread | None = None,
        preprocessing: dict[str, Any] | None = None,
        engine: Engine | None = None,
    ) -> None:
        self.study, self.config, self.progress = study, config, progress
        self.clock = clock
        self.started = clock() if started is None else started
        timeout = config.search.timeout
        self.deadline = None if timeout is None else self.started + timeout
        self.total = config.n_trials()
        self.mode = config.search.objective
        # spread, the driver trains nothing: its workers have devices of their own
        self.device = resolve_device(config.study.device if spread is None else "cpu")
        self.dtype = DTYPES[config.study.dtype]
        self.spread = spread
        default = (
            DEFAULT_SLOTS.get(self.device.type, 16) if spread is None else spread.default_slots
        )
        self.slots = config.search.population or default
        # with a budget and no pool size given, the pool is sized from the measured pace so
        # that a trial can finish early in the budget (see _size_pool)
        self.auto_slots = not config.search.population and timeout is not None
        self.max_slots = self.slots
        self.completed = 0  # trials completed in this run
        if self.auto_slots:  # a short first round measures the pace; the pool then grows
            self.slots = min(self.slots, FIRST_ROUND_SLOTS)
        self.halving: Halving | None = config.halving()
        self.rungs = Rungs(self.halving) if self.halving is not None else None
        #: the longest trial the space allows: the brackets share the trials by its rungs
        self.longest = max(config.space["epochs"].ends())
        self._brackets = 1 if self.halving is None else self.halving.brackets
        self.governor = governor
        self._next_adjust = 0.0
        self.training = training
        self.pool: Engine
        if spread is not None:
            self.pool = spread
        elif engine is not None:  # another kind of member (a user's module: caviar.own)
            self.pool = engine
        else:
            assert training is not None  # caviar's nets train on it
            self.pool = Pool(
                training,
                data_seed=config.seed,
                device=self.device,
                dtype=self.dtype,
                train_metrics=config.search.train_metrics,
                keep_states=True,
                compiled=wants_compile(config.study.compile, self.device),
                graphs=graph_factory(config.study.cuda_graphs, self.device),
            )
        self.keeper = ModelKeeper(
            study, config.study.storage, config.search.keep_models, preprocessing
        )
        self.running: dict[int, Trial] = {}
        self.specs: dict[int, MemberSpec] = {}
        self.curves: dict[int, list[EpochRecord]] = {}
        # the CPU thread counts each trial trained with: its float results depend on them
        # (torch's batch-norm reduction order), and ``threads = "auto"`` changes them
        self.threads_used: dict[int, set[int]] = {}
        self.budget = available_bytes(self.device) if spread is None else spread.budget
        self.judged: set[tuple[int, int]] = set()  # (trial, rung): kept there already
        # the budget's end game (caviar.search.endgame): seconds per parameter-epoch in the last
        # round, the seconds its plan leaves for new trials, and whether new trials still start
        self.pace: float | None = None
        self.spare = math.inf
        #: the least work (parameters x epochs) a trial has needed to its first decision
        self._cheapest = math.inf
        self.closed = False
        self._last_wait_note: tuple[Any, float] = ((), -float("inf"))

    # -- the loop ----------------------------------------------------------------------------
    def out_of_time(self) -> bool:
        return self.deadline is not None and self.clock() >= self.deadline

    def _should_stop(self) -> bool:
        """Asked before every mini-batch: the budget, and now and then the thread count."""
        if self.governor is not None and self.clock() >= self._next_adjust:
            threads = self.governor.adjust()
            self._next_adjust = self.clock() + 2.0
            for number in self.running:
                self.threads_used.setdefault(number, set()).add(threads)
        return self.out_of_time()

    def run(self) -> None:
        self._replay_rungs()
        try:
            with matmul_precision(self.device, self.dtype):
                while True:
                    interrupts.raise_pending()  # a Ctrl-C a finalizer swallowed
                    if not self.out_of_time():
                        self._fill()
                    if not len(self.pool):
                        if self.out_of_time() or self.closed or not self._wait_for_others():
                            break
                        continue
                    self.progress.training(len(self.pool))
                    members, round_started = len(self.pool), time.perf_counter()
                    work = sum(self._work(self.specs[n]) for n in self.pool.keys)
                    clock_started = self.clock()
                    result = self.pool.step(self._should_stop)
                    self._requeue_lost(result)
                    self._tell(result)
                    self._size_pool(members, time.perf_counter() - round_started)
                    if result.interrupted:
                        break
                    self._end_game(work, self.clock() - clock_started)
        except BaseException:
            self._give_back(quietly=True)
            raise
        self._give_back(quietly=False)

    def _give_back(self, *, quietly: bool) -> None:
        """Ctrl-C, a busy store, a device error, the budget: unfinished trials go back to the
        queue, and the next `caviar tune` trains them again from their seeds. After another
        error (``quietly``) a store that refuses this too (a full disk) does not hide that error:
        the trials then stay running under this process, and go back to the queue once it has
        exited or their heartbeat is stale."""
        try:
            self.study.release(list(self.running.values()))
        except StorageError:
            if not quietly:
                raise
        finally:
            self.running.clear()

    def _size_pool(self, members: int, seconds: float) -> None:
        """Under a time budget with the pool size left to caviar, at the pace just measured
        (one round is an epoch of every member):

        - until a first trial is complete, no more than the first round's members, and fewer
          if that many would not let the member furthest along finish within
          ``FIRST_RESULT`` of the budget: results come early;
        - from then on, the default: more members share more work per kernel.

        Always between 2 and the default."""
        if not self.auto_slots or members == 0 or seconds <= 0 or self.deadline is None:
            return
        if self.completed:
            self.slots = self.max_slots
            return
        budget = self.deadline - self.started
        room = FIRST_RESULT * budget - (self.clock() - self.started)
        left = min(
            (self.specs[n].epochs - len(self.curves[n]) for n in self.running),
            default=max((s.epochs for s in self.specs.values()), default=1),
        )
        fit = int(room / (max(left, 1) * seconds / members))
        self.slots = max(2, min(self.slots, fit))

    def _work(self, spec: MemberSpec) -> float:
        """A member's parameters: what an epoch of it costs, up to the pace."""
        assert self.training is not None  # caviar's nets: the loop was given their data
        return float(n_parameters(spec, self.training.n_inputs, self.training.n_classes))

    def _cost(self, number: int, spec: MemberSpec, done: int) -> float:
        """Seconds, at the last round's pace, until trial ``number`` (of ``spec``) with
        ``done`` epochs is next judged or complete."""
        assert self.pace is not None
        left = epochs_to_decision(done, spec.epochs, self.halving, self._bracket(number))
        return self.pace * self._work(spec) * left

    def _bracket(self, number: int) -> int:
        """Trial ``number``'s halving bracket (0 without halving)."""
        return 0 if self.halving is None else self.halving.bracket_of(number, self.longest)

    def _end_game(self, work: float, seconds: float) -> None:
        """Under a budget, after a round of ``work`` that took ``seconds``: members whose next
        decision cannot come before the deadline go back to the queue now, so the others get
        the machine, and what the rest leave bounds the new trials
        (:mod:`caviar.search.endgame`)."""
        if self.deadline is None or work <= 0 or seconds <= 0:
            return
        self.pace = seconds / work
        running = [
            Running(n, len(self.curves[n]), self._cost(n, self.specs[n], len(self.curves[n])))
            for n in self.pool.keys
            if n in self.running
        ]
        release, self.spare = plan(running, self.deadline - self.clock())
        if not release:
            return
        for number in release:
            self.pool.remove(number)
            del self.curves[number]
        self.study.release([self.running.pop(n) for n in release])
        numbers = ", ".join(map(str, release))
        which = f"trial {numbers}" if len(release) == 1 else f"trials {numbers}"
        self.progress.note(
            f"caviar: {which} cannot reach a rung or the end in the budget left; back to the "
            "queue, so the others finish"
        )

    def _admits(self, number: int, spec: MemberSpec) -> bool:
        """Whether a new trial's first decision fits in what the end game leaves (always,
        before a round has measured the pace or without a budget)."""
        if self.pace is None or self.deadline is None:
            return True
        cost = self._cost(number, spec, 0)
        if cost > self.spare:
            return False
        self.spare -= cost
        return True

    def _wait_for_others(self) -> bool:
        """Whether trials held by other processes may still give this run work (after a
        short wait); False when the study has nothing left to run."""
        others = self.study.trials([TrialState.RUNNING, TrialState.QUEUED], curves=False)
        if not others:
            return False
        self._say_who_holds()
        time.sleep(2.0)  # another process runs the trials the sampler waits for
        self.study.recover()
        return True

    def _say_who_holds(self) -> None:
        """A note on what the run waits for: when the holders change, and every minute."""
        held = self.study.held_elsewhere()
        seen = tuple((h.owner, h.numbers) for h in held)
        last_seen, last_time = self._last_wait_note
        if not held or (seen == last_seen and self.clock() - last_time < WAIT_NOTE_EVERY):
            return
        self._last_wait_note = (seen, self.clock())
        for h in held:
            self.progress.note(
                f"caviar: waiting for other processes: {h.describe(self.study.name)}"
            )

    def _taken_over(self, error: TrialsTakenOver) -> None:
        """Another process took over these trials: drop them, say so, and go on."""
        self.progress.note(f"caviar: {error}; this run goes on with other trials")
        for number in error.numbers:
            self.running.pop(number, None)
            if number in self.pool.keys:
                self.pool.remove(number)

    def _fill(self) -> None:
        """Give every free slot a trial."""
        free = self.slots - len(self.pool)
        starved = self.pace is not None and self.spare < self.pace * self._cheapest
        if self.deadline is not None and starved:
            # the end game leaves no trial seen so far the time to reach a decision; with
            # nothing running, nothing will leave more, and the search ends
            self.closed = not len(self.pool)
            return
        # in pieces, so that a pool of thousands stops asking when the budget is spent
        while free > 0 and not self.closed and not self.out_of_time():
            asked = self.study.ask(min(free, ASK_AT_ONCE), max_trials=self.total)
            if not asked:
                return
            free -= len(asked)
            for i, trial in enumerate(asked):
                spec = self._spec(trial)
                if spec is None:
                    continue
                if not self._admits(trial.number, spec):
                    # the budget's end game: it does not fit in what this round leaves, nor
                    # would a later trial; back to the queue. The next round measures the pace
                    # again (one slow round must not end the search); with nothing running,
                    # nothing will leave more time, and the search ends
                    self.closed = not len(self.pool)
                    self.study.release(asked[i:])
                    return
                first = epochs_to_decision(
                    0, spec.epochs, self.halving, self._bracket(trial.number)
                )
                self._cheapest = min(self._cheapest, self._work(spec) * first)
                self.running[trial.number] = trial
                self.specs[trial.number] = spec
                self.curves[trial.number] = []
                threads = torch.get_num_threads() if self.spread is None else self.spread.threads
                self.threads_used[trial.number] = {threads}
                self.pool.add(trial.number, spec)

    def _spec(self, trial: Trial) -> MemberSpec | None:
        """The member spec of a trial, or None after failing a trial the engine cannot run."""
        assert self.training is not None  # caviar's nets: the loop was given their data
        try:
            spec = MemberSpec.from_params(trial.params, seed=trial.seed, owner="params")
            need = bytes_per_member(
                spec,
                self.training.n_inputs,
                self.training.n_classes,
                eval_batch=self.pool.eval_batch,
                itemsize=torch.finfo(self.dtype).bits // 8,
            )
            if need > self.budget:
                raise InsufficientMemory(
                    f"the member needs {need / 2**20:.0f} MiB, more than the "
                    f"{self.budget / 2**20:.0f} MiB available on {self.device}"
                )
        except (InvalidValue, InsufficientMemory) as e:
            self.study.tell(trial, None, state=TrialState.FAILED, attrs={"error": str(e)})
            self.progress.trial_finished(TrialState.FAILED, None)
            return None
        return spec

    def _requeue_lost(self, result: RoundResult) -> None:
        """Members lost with a worker, or to the device's memory mid-epoch: their trials back
        to the queue (their partial curves dropped: :meth:`Study.release`), to train again
        from their seeds."""
        for note in result.notes:
            self.progress.note(note)
        lost = [self.running.pop(n) for n in result.lost if n in self.running]
        if not lost:
            return
        self.study.release(lost)
        for trial in lost:
            del self.curves[trial.number]
        numbers = ", ".join(str(t.number) for t in lost)
        self.progress.note(f"caviar: trials {numbers} go back to the queue, to train again")

    # -- telling -----------------------------------------------------------------------------
    def _tell(self, result: RoundResult) -> None:
        rows = [(e.key, e.record) for e in result.epochs]
        while rows:
            try:
                self.study.report_epochs(rows)
                break
            except TrialsTakenOver as error:
                self._taken_over(error)
                rows = [(n, r) for n, r in rows if n not in error.numbers]
        told = {n for n, _ in rows}
        for e in result.epochs:
            if e.key not in told:
                continue
            self.curves[e.key].append(e.record)
            if e.finished:
                self._finish(e.key, e.diverged, e.state)
            elif self._pruned_at_rung(e.key, e.record.epoch):
                self.pool.remove(e.key)
        self.progress.epochs_done(len(result.epochs), len(self.pool))

    def _pruned_at_rung(self, number: int, epoch: int) -> bool:
        """Successive halving at a rung: record the member's value there; if it falls below the
        top 1/eta, tell it pruned and report True."""
        bracket = self._bracket(number)
        if self.halving is None or self.rungs is None:
            return False
        if not self.halving.is_rung(epoch, bracket):
            return False
        if (number, epoch) in self.judged:  # trained again after a lost worker: kept before
            return False
        value = objective(self.curves[number], self.mode)
        if value is not None and self.rungs.keep(epoch, value, bracket):
            if self.spread is not None:
                self.judged.add((number, epoch))
            self._passed(number, epoch, value)
            return False
        attrs = {**self._attrs(number), "rung": epoch, "rung_value": value}
        if self._told(self.running.pop(number), None, TrialState.PRUNED, attrs):
            self.progress.trial_finished(TrialState.PRUNED, None, len(self.curves[number]))
        return True

    def _passed(self, number: int, rung: int, value: float) -> None:
        """Trial ``number`` was kept at ``rung`` with ``value``: say so in its attributes, where
        a learning sampler reads it (a running trial the rungs kept is one of the best, not one
        the constant liar should count among the worse: :mod:`caviar.samplers.tpe`). A trial
        trained again after it went back to the queue reaches the rung with the same value (a
        member's results are its own), so the note stays true."""
        if self.study.sampler.learns:
            self.study.set_trial_attrs(number, {"passed_rung": rung, "passed_value": value})

    def _told(
        self, trial: Trial, value: float | None, state: TrialState, attrs: dict[str, Any]
    ) -> bool:
        """Tell the study; False if another process took the trial over meanwhile."""
        try:
            self.study.tell(trial, value, state=state, attrs=attrs)
        except TrialsTakenOver as error:
            self._taken_over(error)
            return False
        return True

    def _attrs(self, number: int) -> dict[str, Any]:
        where = {} if self.spread is None else self.spread.placement(number)
        return {
            "device": str(self.device),
            **where,
            "dtype": self.config.study.dtype,
            "epochs_run": len(self.curves[number]),
            "pool_size": self.slots,
            "threads": sorted(self.threads_used.get(number, ())),
            "halving": None if self.halving is None else self.halving.to_config(),
            **({"bracket": self._bracket(number)} if self._brackets > 1 else {}),
        }

    def _finish(self, number: int, diverged: bool, state: MemberState | KeptModule | None) -> None:
        trial = self.running.pop(number)
        curve = self.curves[number]
        value = objective(curve, self.mode)
        attrs = self._attrs(number)
        if diverged or value is None:
            attrs["diverged_epoch"] = curve[-1].epoch if curve else None
            if self._told(trial, None, TrialState.DIVERGED, attrs):
                self.progress.trial_finished(TrialState.DIVERGED, None, len(curve))
            return
        if not self._told(trial, value, TrialState.COMPLETE, attrs):
            return
        self.completed += 1
        self.progress.trial_finished(TrialState.COMPLETE, value, len(curve))
        if state is not None:
            self.keeper.offer(number, state)

    def _replay_rungs(self) -> None:
        """Rung values of trials earlier runs finished, so halving judges against them too."""
        if self.rungs is None:
            return
        done: list[FrozenTrial] = self.study.trials(
            [TrialState.COMPLETE, TrialState.PRUNED], curves=True
        )
        history = []
        for t in done:
            values = [objective(list(t.curve[: i + 1]), self.mode) for i in range(len(t.curve))]
            clean = [v if v is not None else float("-inf") for v in values]
            epochs = int(t.params.get("epochs", len(clean)))
            history.append((clean, epochs, self._bracket(t.number)))
        self.rungs.replay(history)
