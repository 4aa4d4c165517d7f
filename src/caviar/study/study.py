"""Study: ask for configurations, tell results, read the leaderboard. Backed by a storage.

The core is ask/tell, so any training loop can drive it::

    study = Study.create("demo", space, storage="caviar.db")
    for trial in study.ask(16):
        for epoch in ...:
            study.report(trial, EpochRecord(epoch, val_accuracy=...))
        study.tell(trial, value=val_accuracy)

Every process that runs trials is an *owner* (host, pid and a random token). Trials it holds
carry its heartbeat. :meth:`recover` re-queues trials whose owner died (same host, pid gone) or
whose heartbeat is stale, so a study killed at any moment continues where it stopped; until then
:meth:`held_elsewhere` says who holds them and for how long (:mod:`caviar.study.owners`).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import sys
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from caviar.core.constraints import STUDY_NAME, integer
from caviar.core.errors import InvalidValue
from caviar.core.records import Direction, EpochRecord, FrozenTrial, Trial, TrialState
from caviar.core.seeding import TRIAL, check_seed, derive_seed
from caviar.core.version import __version__
from caviar.samplers import RandomSampler, Sampler
from caviar.space import SearchSpace
from caviar.storage.base import (
    DuplicateStudyError,
    DuplicateTrialError,
    StaleTrialError,
    Storage,
    StudyRecord,
)
from caviar.storage.resolve import open_storage
from caviar.storage.sqlite import SQLiteStorage
from caviar.study.owners import LIVE_OWNERS as _LIVE_OWNERS
from caviar.study.owners import HeldTrials, TrialsTakenOver, owner_is_alive, owner_is_dead
from caviar.study.owners import new_owner as _new_owner

__all__ = ["HeldTrials", "RoundSummary", "Study", "Trial", "TrialsTakenOver", "owner_is_dead"]

#: seconds without a heartbeat after which another process re-queues a running trial
STALE_AFTER = 300.0


@dataclass(frozen=True)
class RoundSummary:
    """One coarse-to-fine round: its box in unit coordinates and how it went."""

    index: int
    box: tuple[tuple[float, float], ...]
    numbers: tuple[int, ...]
    n_complete: int
    best_value: float | None


def versions() -> dict[str, str]:
    """Library versions recorded with every study, so a result can be reproduced."""
    import numpy  # deferred: a study that only reads need not load numpy or torch
    import torch

    return {
        "caviar": __version__,
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "torch": torch.__version__,
    }


class Study:
    """A named search over a space, with its sampler, direction and seed, kept in a storage."""

    def __init__(
        self,
        record: StudyRecord,
        storage: Storage,
        *,
        heartbeat_interval: float = 30.0,
    ) -> None:
        self._record = record
        self.storage = storage
        self.space = SearchSpace.from_config(record.space)
        self.sampler = Sampler.from_config(record.sampler)
        self.direction = Direction(record.direction)
        self.owner = _new_owner()
        self._held: set[int] = set()
        self._held_lock = threading.Lock()
        self._heartbeat_interval = heartbeat_interval
        self._last_beat = time.time()  # the last heartbeat sent, or when holding began
        self._longest_silence = 0.0  # the longest time between heartbeats while holding
        self._heartbeat_thread: threading.Thread | None = None
        self._stop = threading.Event()

    # -- creation ----------------------------------------------------------------------------
    @classmethod
    def create(
        cls,
        name: str,
        space: SearchSpace | Mapping[str, Any],
        *,
        storage: Storage | str | os.PathLike[str] | None = None,
        sampler: Sampler | None = None,
        direction: str | Direction = Direction.MAXIMIZE,
        seed: int = 0,
        attrs: Mapping[str, Any] | None = None,
        load_if_exists: bool = False,
    ) -> Study:
        """A new study; with ``load_if_exists``, the stored one if its definition is the same."""
        name = STUDY_NAME.check(name, "Study.name")
        seed = check_seed("Study", seed)
        space = space if isinstance(space, SearchSpace) else SearchSpace(space)
        sampler = sampler if sampler is not None else RandomSampler(seed)
        sampler.check(space)
        backend = open_storage(storage)
        record = StudyRecord(
            name=name,
            direction=Direction(direction).value,
            space=space.to_config(),
            sampler=sampler.to_config(),
            seed=seed,
            attrs={"versions": versions(), **dict(attrs or {})},
        )
        try:
            backend.create_study(record)
        except DuplicateStudyError:
            if not load_if_exists:
                raise
            stored = backend.load_study(name)
            differences = _differences(
                {k: getattr(stored, k) for k in ("space", "sampler", "direction", "seed")},
                {k: getattr(record, k) for k in ("space", "sampler", "direction", "seed")},
            )
            if differences:
                raise InvalidValue(
                    f"study {name!r}",
                    f"exists in {backend!r} with another definition: {'; '.join(differences)}. "
                    f"Use another study name, or the stored definition",
                ) from None
        return cls._opened(name, backend, own=backend is not storage)

    @classmethod
    def load(cls, name: str, storage: Storage | str | os.PathLike[str]) -> Study:
        backend = open_storage(storage)
        return cls._opened(name, backend, own=backend is not storage)

    @classmethod
    def _opened(cls, name: str, backend: Storage, *, own: bool) -> Study:
        """Study ``name`` of ``backend``, refused if its rows were changed outside caviar so
        that it cannot go on as it was (a trial missing, a complete trial with no value:
        :meth:`Storage.check_study`). A refused study's storage is closed if it was opened
        here (``own``), so that its file is left as it was found."""
        try:
            backend.check_study(name)
            return cls(backend.load_study(name), backend)
        except BaseException:
            if own:
                backend.close()
            raise

    @classmethod
    def open_file(
        cls,
        name: str,
        path: str | os.PathLike[str],
        *,
        read_only: bool = False,
        owner: str = "storage",
    ) -> Study:
        """Study ``name`` in the SQLite study file at ``path``, which must exist: the one way
        the commands, the model loaders and panda open a stored study. ``read_only`` for those
        that only look (nothing is written, not even SQLite's WAL switch, so a foreign or
        read-only file is left as it is); no file there is an InvalidValue naming ``owner``."""
        if not os.path.isfile(path):
            raise InvalidValue(owner, f"no study file at {str(path)!r}")
        return cls._opened(name, SQLiteStorage(path, read_only=read_only), own=True)

    # -- properties --------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self._record.name

    @property
    def seed(self) -> int:
        return self._record.seed

    @property
    def attrs(self) -> Mapping[str, Any]:
        return self.storage.load_study(self.name).attrs

    def set_attrs(self, attrs: Mapping[str, Any]) -> None:
        self.storage.set_study_attrs(self.name, attrs)

    def set_trial_attrs(self, number: int, attrs: Mapping[str, Any]) -> None:
        """Merge ``attrs`` into trial ``number``'s attributes, in any state (what a running
        trial has shown so far, e.g. a rung it passed)."""
        self.storage.set_trial_attrs(self.name, number, attrs)

    def __repr__(self) -> str:
        return f"Study({self.name!r}, storage={self.storage!r})"

    # -- ask / tell --------------------------------------------------------------------------
    def ask(self, n: int = 1, *, max_trials: int | None = None) -> list[Trial]:
        """Up to ``n`` trials to run: queued ones first, then new proposals.

        Fewer come back when the sampler is exhausted or waits for running trials to finish,
        or when the study holds ``max_trials`` trials (numbers 0 .. max_trials - 1) already.
        """
        integer(1).check(n, "Study.ask.n")
        frozen = self.storage.claim_queued(self.name, self.owner, n)
        while len(frozen) < n:
            want = n - len(frozen)
            history = self.storage.get_trials(self.name, curves=False)
            first = history[-1].number + 1 if history else 0
            last = first + want if max_trials is None else min(first + want, max_trials)
            new: list[Trial] = []
            for number in range(first, last):
                proposal = self.sampler.propose(self.space, number, history, self.direction)
                if proposal is None:
                    break
                new.append(
                    Trial(
                        number=number,
                        params=self.space.from_unit(proposal.unit),
                        unit=proposal.unit,
                        seed=derive_seed(self.seed, TRIAL, number),
                        attrs=dict(proposal.attrs),
                    )
                )
            if not new:
                break
            try:
                frozen += self.storage.create_trials(self.name, new, owner=self.owner)
            except DuplicateTrialError:
                continue  # another process took these numbers: read the history again
            if len(new) < want:
                break  # the sampler has no more to give now
        self._hold(t.number for t in frozen)
        return [Trial(t.number, t.params, t.unit, t.seed, t.attrs) for t in frozen]

    def enqueue(
        self, configurations: Iterable[tuple[Mapping[str, Any], Mapping[str, Any]]]
    ) -> list[FrozenTrial]:
        """Queue trials at given configurations, each ``(params, attrs)``, numbered after the
        study's last trial: :meth:`ask` hands them out before any new proposal. ``params`` name
        the space's searched dimensions (its fixed values are added); each must be legal."""
        history = self.storage.get_trials(self.name, curves=False)
        first = history[-1].number + 1 if history else 0
        new = []
        for number, (params, attrs) in enumerate(configurations, start=first):
            full = self.space.from_unit([0.5] * self.space.n_free)  # the fixed values
            full.update({name: params[name] for name in self.space.free_names})
            new.append(
                Trial(
                    number=number,
                    params=full,
                    unit=self.space.to_unit(full),
                    seed=derive_seed(self.seed, TRIAL, number),
                    attrs=dict(attrs),
                )
            )
        return self.storage.create_trials(self.name, new, owner=None) if new else []

    def tell(
        self,
        trial: Trial | int,
        value: float | None = None,
        *,
        state: TrialState | str = TrialState.COMPLETE,
        attrs: Mapping[str, Any] | None = None,
    ) -> FrozenTrial:
        """Finish a trial. A complete trial needs a finite ``value``; others may have none."""
        number = trial if isinstance(trial, int) else trial.number
        state = TrialState(state)
        if state is TrialState.COMPLETE and (value is None or not math.isfinite(value)):
            raise InvalidValue(
                "Study.tell.value",
                f"must be a finite number for a complete trial (state='diverged' or 'failed' "
                f"otherwise), got {value!r}",
            )
        try:
            finished = self.storage.finish_trial(
                self.name, number, state, value, owner=self.owner, attrs=attrs
            )
        except StaleTrialError:
            taken = self._taken_over([number])
            if taken is None:
                raise
            raise taken from None
        self._release([number])
        return finished

    def report(self, trial: Trial | int, record: EpochRecord) -> None:
        """Record one learning-curve point of a running trial."""
        self.report_epochs([(trial, record)])

    def report_epochs(self, rows: Iterable[tuple[Trial | int, EpochRecord]]) -> None:
        """Record many learning-curve points in one transaction."""
        batch = [(t if isinstance(t, int) else t.number, r) for t, r in rows]
        try:
            self.storage.add_epochs(self.name, batch, owner=self.owner)
        except StaleTrialError:
            taken = self._taken_over(n for n, _ in batch)
            if taken is None:
                raise
            raise taken from None

    def _taken_over(self, numbers: Iterable[int]) -> TrialsTakenOver | None:
        """Trials this process held that run under it no more: another process re-queued them
        (None if there are none: the trial was told already, or never held)."""
        with self._held_lock:
            held = sorted(set(numbers) & self._held)
        now = self.storage.get_trials(self.name, numbers=held, curves=False) if held else []
        lost = tuple(t.number for t in now if t.owner != self.owner)
        if not lost:
            return None
        self._release(lost)
        silence = max(self._longest_silence, time.time() - self._last_beat)
        paused = silence > 2 * self._heartbeat_interval
        return TrialsTakenOver(self.name, lost, self.owner, silence, paused)

    def release(self, trials: Iterable[Trial | int]) -> None:
        """Put trials this process holds back in the queue (e.g. on Ctrl-C)."""
        numbers = [t if isinstance(t, int) else t.number for t in trials]
        try:
            for number in numbers:
                with contextlib.suppress(StaleTrialError):
                    self.storage.requeue(self.name, number, self.owner)
        finally:  # trials it could not requeue (a full disk) go stale and another run takes them
            self._release(numbers)

    # -- recovery and heartbeats -------------------------------------------------------------
    def recover(self, *, stale_after: float = STALE_AFTER) -> list[int]:
        """Re-queue running trials whose owner died or whose heartbeat is ``stale_after`` old."""
        now = time.time()
        requeued = []
        for t in self.storage.get_trials(self.name, states=[TrialState.RUNNING], curves=False):
            if t.owner is None or t.owner == self.owner:
                continue
            stale = t.heartbeat is None or now - t.heartbeat > stale_after
            if owner_is_dead(t.owner) or stale:
                try:
                    self.storage.requeue(self.name, t.number, t.owner)
                    requeued.append(t.number)
                except StaleTrialError:
                    pass  # it finished or moved meanwhile
        return requeued

    def held_elsewhere(self, *, stale_after: float = STALE_AFTER) -> list[HeldTrials]:
        """Running trials of other live owners, by owner: what a run that needs them waits for,
        and how long until :meth:`recover` re-queues them if their heartbeat stops."""
        now = time.time()
        by_owner: dict[str, list[FrozenTrial]] = {}
        for t in self.storage.get_trials(self.name, states=[TrialState.RUNNING], curves=False):
            if t.owner is not None and t.owner != self.owner:
                by_owner.setdefault(t.owner, []).append(t)
        held = []
        for owner, trials in by_owner.items():
            beats = [t.heartbeat for t in trials if t.heartbeat is not None]
            age = None if not beats else now - max(beats)
            alive = owner_is_alive(owner)
            if alive is False or age is None or age > stale_after:
                continue  # recover() re-queues these now
            numbers = tuple(t.number for t in trials)
            held.append(HeldTrials(owner, numbers, alive, age, stale_after - age))
        return held

    def heartbeat(self) -> None:
        """Stamp the time on every trial this process holds."""
        with self._held_lock:
            held = sorted(self._held)
        now = time.time()
        if held:
            self._longest_silence = max(self._longest_silence, now - self._last_beat)
            self.storage.heartbeat(self.name, held, self.owner)
        self._last_beat = now

    def _hold(self, numbers: Iterable[int]) -> None:
        with self._held_lock:
            if not self._held:
                self._last_beat = time.time()  # silence counts from here
            self._held.update(numbers)
            start = bool(self._held) and self._heartbeat_thread is None
        if start:
            self._heartbeat_thread = threading.Thread(
                target=self._beat, name=f"caviar-heartbeat-{self.name}", daemon=True
            )
            self._heartbeat_thread.start()

    def _release(self, numbers: Iterable[int]) -> None:
        with self._held_lock:
            self._held.difference_update(numbers)

    def _beat(self) -> None:
        while not self._stop.wait(self._heartbeat_interval):
            try:
                self.heartbeat()
            except Exception as e:  # a busy or closed store must not kill the run
                print(f"caviar: heartbeat failed: {e}", file=sys.stderr)

    def close(self) -> None:
        """Stop the heartbeat thread and close the storage."""
        self._stop.set()
        _LIVE_OWNERS.discard(self.owner)
        if self._heartbeat_thread is not None:
            self._heartbeat_thread.join()
            self._heartbeat_thread = None
        self.storage.close()

    # -- results -----------------------------------------------------------------------------
    def trials(
        self, states: Iterable[TrialState] | None = None, *, curves: bool = True
    ) -> list[FrozenTrial]:
        return self.storage.get_trials(self.name, states=states, curves=curves)

    def leaderboard(self, k: int | None = None, *, curves: bool = False) -> list[FrozenTrial]:
        """Complete trials, best first (ties: lower number first)."""
        done = [t for t in self.trials([TrialState.COMPLETE], curves=curves) if t.value is not None]
        done.sort(key=lambda t: (self.direction.sort_key(t.value or 0.0), t.number))
        return done if k is None else done[:k]

    @property
    def best_trial(self) -> FrozenTrial | None:
        board = self.leaderboard(1)
        if not board:
            return None
        (best,) = self.storage.get_trials(self.name, numbers=[board[0].number])
        return best

    def rounds(self) -> list[RoundSummary]:
        """Coarse-to-fine rounds as recorded on the trials (empty for other samplers)."""
        groups: dict[int, list[FrozenTrial]] = {}
        for t in self.trials(curves=False):
            if "round" in t.attrs:
                groups.setdefault(int(t.attrs["round"]), []).append(t)
        summaries = []
        for index in sorted(groups):
            members = groups[index]
            values = [
                t.value for t in members if t.state is TrialState.COMPLETE and t.value is not None
            ]
            best = None
            for v in values:
                if best is None or self.direction.better(v, best):
                    best = v
            summaries.append(
                RoundSummary(
                    index=index,
                    box=tuple((float(lo), float(hi)) for lo, hi in members[0].attrs["box"]),
                    numbers=tuple(t.number for t in members),
                    n_complete=len(values),
                    best_value=best,
                )
            )
        return summaries


def _normalised(value: Any) -> Any:
    """Compare definitions the way the store keeps them (JSON: tuples become lists)."""
    return json.loads(json.dumps(value))


def _differences(stored: Mapping[str, Any], given: Mapping[str, Any], path: str = "") -> list[str]:
    """``key.path: stored X, given Y`` for every leaf where two JSON-like mappings differ."""
    found = []
    for key in sorted(set(stored) | set(given), key=str):
        where = f"{path}.{key}" if path else str(key)
        a, b = _normalised(stored.get(key)), _normalised(given.get(key))
        if isinstance(a, dict) and isinstance(b, dict):
            found += _differences(a, b, where)
        elif a != b or type(a) is not type(b):
            found.append(f"{where}: stored {a!r}, given {b!r}")
    return found
