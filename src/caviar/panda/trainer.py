"""A panda run: one model trained epoch by epoch, its tree of branches kept in the study file.

The trainer's loop, at every epoch boundary:

1. apply the pending commands, in the order they were given (:meth:`PandaRun.apply_commands`):
   a rollback restores its branch's snapshot first (``fresh``: optimizer buffers zeroed), then
   the changes for that branch replace values in its spec, so a restored optimizer never
   overrides a new learning rate (the learning rate, like every hyperparameter, lives in the
   spec, not in the optimizer's state); pause, resume and stop set the status;
2. if the run is running and has epochs left, train one epoch (:mod:`caviar.panda.epochs`);
3. store the epoch's record and the full state after it (:meth:`PandaTree.add_epoch`), then
   go back to 1.

Controls (the page, ``caviar panda set``) only record commands (:mod:`caviar.panda.controller`),
so any process may give them; the trainer picks them up at the next boundary. Only one trainer
trains a run: :meth:`PandaRun.train` holds the run's lock in the study file
(:mod:`caviar.panda.lock`) and stops if another trainer takes it over.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from caviar.core.errors import InvalidValue
from caviar.core.records import EpochRecord
from caviar.nn import MemberSpec, MemberState
from caviar.panda.controller import PandaController
from caviar.panda.epochs import EpochEngine, spec_from_config
from caviar.panda.lock import RunLock
from caviar.panda.replay import replay, stored_curve
from caviar.panda.tree import PandaTree
from caviar.search.config import StudyConfig, config_from_mapping
from caviar.search.kept import kept_state, read_state
from caviar.storage.tree_rows import StoredEpoch
from caviar.storage.tree_sqlite import SQLiteTreeStore
from caviar.study import Study

#: the disk budget of a run's snapshots, by default
SNAPSHOT_BUDGET_MB = 512
_STATUS_OF = {"pause": "paused", "resume": "running", "stop": "stopped"}


class PandaRun:
    """A panda run, reopened by name from a store (see :meth:`create`, :meth:`from_trial`)."""

    def __init__(self, tree: PandaTree, name: str, *, engine: EpochEngine | None = None) -> None:
        self.tree, self.name = tree, name
        row = tree.run(name)
        self.run_id = row.run_id
        self.config: StudyConfig = config_from_mapping(
            row.config, source=f"panda run {name!r}", stored=True
        )
        self.engine = engine or EpochEngine(self.config)
        self.changed = threading.Condition()  # notified after every change this process makes
        self.status = row.status
        self.branch = row.branch
        self.spec, self.state = self._position(row.branch)
        #: this process's hold on the run while it trains (see :meth:`hold`)
        self.lock: RunLock | None = None

    # -- creating and reopening --------------------------------------------------------------
    @classmethod
    def create(
        cls,
        config: StudyConfig,
        *,
        name: str | None = None,
        storage: str | os.PathLike[str] | None = None,
        state: MemberState | None = None,
        seed: int | None = None,
        source: dict[str, Any] | None = None,
        snapshot_budget_mb: float = SNAPSHOT_BUDGET_MB,
    ) -> PandaRun:
        """The run ``name`` (default: the config's name) in ``storage`` (default: the config's
        study file), created from ``config`` (its space all plain values; ``seed``: the
        member's, default the config's), or reopened if it exists with the same definition.
        ``state`` starts it from a trained member instead of initial weights."""
        name = name or config.name
        tree = PandaTree(storage or config.study.storage)
        spec = spec_from_config(config, seed=seed)
        if name in tree.run_names():
            _check_same(tree, name, config, spec)
            return cls(tree, name)
        if snapshot_budget_mb <= 0:
            raise InvalidValue("snapshot_budget_mb", f"must be > 0, got {snapshot_budget_mb!r}")
        engine = EpochEngine(config)
        first = engine.initial_state(spec) if state is None else state
        engine.check(spec, first)
        first = first.with_spec(spec)  # e.g. a kept state given more epochs
        tree.create_run(
            name,
            config=config.to_dict(),
            spec=spec.to_dict(),
            source=source or {"kind": "config"},
            budget=int(snapshot_budget_mb * 2**20),
            first=first,
        )
        return cls(tree, name, engine=engine)

    @classmethod
    def open(cls, name: str, storage: str | os.PathLike[str]) -> PandaRun:
        """The existing run ``name`` in ``storage``."""
        return cls(PandaTree(storage), name)

    @classmethod
    def from_trial(
        cls,
        study: str,
        trial: int,
        *,
        storage: str | os.PathLike[str],
        name: str | None = None,
        epochs: int | None = None,
        use_state: bool = True,
        snapshot_budget_mb: float = SNAPSHOT_BUDGET_MB,
    ) -> PandaRun:
        """A run from trial ``trial`` of ``study``: its configuration and seed, on the study's
        data, and its kept final state when the study kept one (``use_state``). From a kept
        state, ``epochs`` (in all) defaults to as many again as the trial ran."""
        loaded = Study.open_file(study, storage, read_only=True, owner="--from")
        try:
            found = [t for t in loaded.trials(curves=False) if t.number == trial]
            if not found:
                numbers = [t.number for t in loaded.trials(curves=False)]
                raise InvalidValue(f"study {study!r}", f"has no trial {trial}; trials: {numbers}")
            params, seed = dict(found[0].params), found[0].seed
            stored = dict(loaded.attrs.get("config", {}))
            kept = kept_state(loaded, trial) if use_state else None
        finally:
            loaded.close()
        state = None if kept is None else read_state(kept)
        if state is not None:
            params["epochs"] = epochs or state.epoch + int(params.get("epochs", 1))
        elif epochs is not None:
            params["epochs"] = epochs
        search = {"trials": 1, "train_metrics": stored.get("search", {}).get("train_metrics")}
        raw = {
            "study": {**stored.get("study", {}), "name": name or f"{study}-trial-{trial}"},
            "data": stored.get("data", {}),
            "space": params,
            "search": {k: v for k, v in search.items() if v is not None},
        }
        raw["study"]["storage"] = str(storage)
        # a trial's stored params and data section hold every key, read or not
        config = config_from_mapping(raw, source=f"{study}:{trial}", stored=True)
        source = {
            "kind": "trial",
            "study": study,
            "trial": trial,
            "state": None if kept is None else str(kept),
        }
        return cls.create(
            config, state=state, seed=seed, source=source, snapshot_budget_mb=snapshot_budget_mb
        )

    def hold(self) -> RunLock | None:
        """Hold the run for this trainer (:mod:`caviar.panda.lock`), or raise
        :class:`~caviar.panda.lock.RunHeld` naming the trainer that holds it. None for a tree
        that is not a study file (it lives in this process only). :meth:`train` holds the run
        itself; hold it first to refuse before serving a page, and release it after."""
        if self.lock is None and isinstance(self.tree.store, SQLiteTreeStore):
            self.lock = RunLock(self.tree.store.path, self.name).take()
        return self.lock

    def release(self) -> None:
        """Free the run for another trainer."""
        if self.lock is not None:
            self.lock.release()
            self.lock = None

    @property
    def taken_over(self) -> bool:
        """Whether another trainer took this run over while this one held it."""
        return self.lock is not None and self.lock.lost.is_set()

    def controller(self) -> PandaController:
        """The controls of this run, waking this run's trainer when they record a command."""
        return PandaController(self.tree, self.name, changed=self.changed)

    # -- where the run stands ----------------------------------------------------------------
    @property
    def epoch(self) -> int:
        """Epochs done on the branch being trained, counted from the root."""
        return self.state.epoch

    @property
    def finished(self) -> bool:
        return self.state.diverged or self.state.epoch >= self.spec.epochs

    def _position(self, branch: int) -> tuple[MemberSpec, MemberState]:
        """A branch's spec and its latest state (its start, before its first epoch)."""
        (b,) = [b for b in self.tree.branches(self.run_id) if b.id == branch]
        last = self.tree.last_epoch(self.run_id, branch)
        if last is not None:
            state = self.tree.snapshot(self.run_id, branch, last)
        elif b.parent is None:
            state = self.tree.snapshot(self.run_id, branch, self.tree.first_snapshot(self.run_id))
        else:
            state = self.tree.snapshot(self.run_id, b.parent, int(b.from_epoch or 0))
            if b.mode == "fresh":
                state = state.fresh_optimizer()
        return MemberSpec(**b.spec), state

    # -- the loop ----------------------------------------------------------------------------
    def apply_commands(self) -> int:
        """Apply the pending commands at this boundary (see the module docstring); how many."""
        row = self.tree.run(self.name)
        status, count = row.status, 0
        applied: list[tuple[int, int, Any]] = []
        for c in self.tree.commands(self.run_id, pending=True):
            if c.key == "rollback":
                self._flush(applied, status)  # the old branch's changes, before it is left
                count += len(applied)
                applied = [(c.id, c.epoch, self.branch)]
                self.branch = int(c.new)
                self.spec, self.state = self._position(self.branch)
            elif c.key in _STATUS_OF:
                applied.append((c.id, self.epoch, status))
                status = _STATUS_OF[c.key]
            elif c.branch == self.branch:  # a change for an abandoned branch stays pending
                values = {**self.spec.to_dict(), c.key: c.new}
                try:
                    spec = MemberSpec(**values)
                except InvalidValue:
                    continue  # checked when it was given; never a crash at the boundary
                applied.append((c.id, self.epoch, getattr(self.spec, c.key)))
                self.spec = spec
        if status in ("running", "finished"):
            status = "finished" if self.finished else "running"
        if applied or status != row.status or self.branch != row.branch:
            self._flush(applied, status)
        count += len(applied)
        self.status = status
        return count

    def _flush(self, applied: list[tuple[int, int, Any]], status: str) -> None:
        self.tree.boundary(
            self.run_id, applied, status=status, branch=self.branch, spec=self.spec.to_dict()
        )
        self._notify()

    def step(self) -> EpochRecord | None:
        """One boundary and, if the run is running, one epoch stored with its snapshot; the
        epoch's record (None when nothing was trained)."""
        self.apply_commands()
        if self.status != "running":
            return None
        trained = self.engine.train_epoch(self.spec, self.state)
        self.state = trained.state
        point = StoredEpoch(trained.record, time.time())
        self.tree.add_epoch(self.run_id, self.branch, point, trained.state)
        self._notify()
        self.apply_commands()
        return trained.record

    def train(
        self,
        *,
        until: Callable[[], bool] | None = None,
        exit_when_finished: bool = False,
        poll: float = 0.25,
    ) -> None:
        """Train until a ``stop`` command (or ``until()`` says so, or the run is finished with
        ``exit_when_finished``); while paused or finished, wait for commands. A stopped run
        given to this method resumes (recorded as a ``resume`` command). Run it in a thread
        beside a server, or on its own. It holds the run while it trains (:meth:`hold`; a
        :class:`~caviar.panda.lock.RunHeld` if another trainer does), and returns if another
        trainer takes it over (:attr:`taken_over`)."""
        with self._held():
            if self.tree.run(self.name).status == "stopped":
                self.controller().resume()
            while (until is None or not until()) and not self.taken_over:
                record = self.step()
                if self.status == "stopped" or (exit_when_finished and self.status == "finished"):
                    return
                if record is None:
                    with self.changed:
                        self.changed.wait(poll)

    @contextlib.contextmanager
    def _held(self) -> Iterator[None]:
        """The run held while the block runs; released after unless it was held before."""
        if self.lock is not None:
            yield
            return
        self.hold()
        try:
            yield
        finally:
            self.release()

    def replay(self, branch: int) -> list[EpochRecord]:
        """Branch ``branch`` trained again from the root with its commands: its curve along
        its lineage, equal to :meth:`stored_curve` bit for bit on the CPU (see
        :mod:`caviar.panda.replay`)."""
        return replay(self.tree, self.name, branch, self.engine)

    def stored_curve(self, branch: int) -> list[EpochRecord]:
        """The stored curve along ``branch``'s lineage, from the root."""
        return stored_curve(self.tree, self.run_id, branch)

    def _notify(self) -> None:
        with self.changed:
            self.changed.notify_all()


def _check_same(tree: PandaTree, name: str, config: StudyConfig, spec: MemberSpec) -> None:
    """Reopening a run: its data, dtype and root spec must be what the config gives."""
    row = tree.run(name)
    stored = config_from_mapping(row.config, stored=True)
    for key, before, now in (
        ("data", stored.to_dict()["data"], config.to_dict()["data"]),
        ("study.dtype", stored.study.dtype, config.study.dtype),
        ("study.seed", stored.seed, config.seed),
        ("space", row.spec, spec.to_dict()),
    ):
        if before != now:
            raise InvalidValue(
                f"panda run {name!r}",
                f"exists in {tree.where} with another {key} ({before!r}, not {now!r}); "
                f"give the run another name, or the same config",
            )
