"""The driver side: pools on several Ray workers, driven as one pool.

:class:`SpreadPool` has the :class:`~caviar.nn.Pool` interface the search loop drives (add,
remove, step), so the loop, the study store and the halving rungs stay in the driver, unchanged:

1. ``add`` places a new member on the worker holding the fewest (ties: the first), ``remove``
   takes one out; both travel with the next round's call, one call per worker a round.
2. ``step`` launches every worker's round at once and gathers them all (synchronous rounds),
   then merges the records in trial-number order: the loop sees what one pool of the same size
   would give, so the rungs judge members wherever they ran, and a study on N workers gives the
   same trials as one process (in float64 on the CPU, bit for bit; see the tests).
3. A worker that dies mid-round (its process killed, its node gone) loses the members it held:
   they come back as :attr:`SpreadRound.lost`, the loop puts their trials back in the queue, and
   they train again from their seeds. A fresh worker takes the lost one's place (at most
   ``replacements`` times a run); if none can start, the others carry on.

Workers are actors this driver owns: when the driver dies, Ray ends them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from caviar.config import StudyConfig
from caviar.distributed.cluster import WorkerPlan, import_ray, plan_workers
from caviar.distributed.workers import PoolWorker, WorkerInfo
from caviar.engines import DEFAULT_SLOTS, SpreadRound
from caviar.nn import MemberSpec, TrainingData

#: seconds a new worker may take to start (its process, imports, data on its device)
START_TIMEOUT = 120.0


class WorkersLost(RuntimeError):
    """No worker is left to train on."""


@dataclass
class _Worker:
    plan: WorkerPlan
    handle: Any  # a Ray actor handle
    info: WorkerInfo
    keys: set[int] = field(default_factory=set)  # members it holds (or gets next round)
    add: list[tuple[int, MemberSpec]] = field(default_factory=list)
    remove: list[int] = field(default_factory=list)


class SpreadPool:
    """Pools on Ray workers, driven as one (see the module docstring)."""

    def __init__(
        self,
        start: Callable[[WorkerPlan], Any],
        plans: list[WorkerPlan],
        *,
        seconds_left: Callable[[], float | None] = lambda: None,
        replacements: int | None = None,
        start_timeout: float = START_TIMEOUT,
    ) -> None:
        self.ray = import_ray()
        self._start, self.seconds_left, self.start_timeout = start, seconds_left, start_timeout
        self.replacements = 2 * len(plans) if replacements is None else replacements
        handles = [start(plan) for plan in plans]
        infos = self._ready(handles, plans)
        self.workers = {
            i: _Worker(p, h, info)
            for i, (p, h, info) in enumerate(zip(plans, handles, infos, strict=True))
        }
        self._next_id = len(plans)
        self.members: dict[int, int] = {}  # key -> worker id
        self.placed: dict[int, WorkerInfo] = {}  # key -> where it trained last
        self.eval_batch = min(info.eval_batch for info in infos)
        self.budget = min(info.budget for info in infos)  # a member may land on any worker
        self.threads = max(info.threads for info in infos)
        self.default_slots = sum(DEFAULT_SLOTS.get(info.device.split(":")[0], 16) for info in infos)

    def _ready(self, handles: list[Any], plans: list[WorkerPlan]) -> list[WorkerInfo]:
        """Wait for new workers to start; their descriptions."""
        try:
            infos: list[WorkerInfo] = self.ray.get(
                [h.describe.remote() for h in handles], timeout=self.start_timeout
            )
        except self.ray.exceptions.GetTimeoutError:
            for h in handles:
                self._kill(h)
            wanted = ", ".join(
                f"{p.device} ({p.num_cpus:g} CPU, {p.num_gpus:g} GPU)" for p in plans
            )
            raise WorkersLost(
                f"Ray did not start the workers [{wanted}] within {self.start_timeout:g} s; the "
                f"cluster has {self.ray.cluster_resources()}"
            ) from None
        return infos

    # -- the Pool interface ------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.members)

    @property
    def keys(self) -> list[int]:
        return sorted(self.members)

    def add(self, key: int, spec: MemberSpec) -> None:
        if key in self.members:
            raise ValueError(f"member {key} is in the pool already")
        wid = min(self.workers, key=lambda i: (len(self.workers[i].keys), i))
        worker = self.workers[wid]
        worker.keys.add(key)
        worker.add.append((key, spec))
        self.members[key] = wid
        self.placed[key] = worker.info

    def remove(self, key: int) -> None:
        worker = self.workers[self.members.pop(key)]
        worker.keys.discard(key)
        unsent = [(k, s) for k, s in worker.add if k != key]
        if len(unsent) == len(worker.add):
            worker.remove.append(key)
        worker.add = unsent

    def placement(self, key: int) -> dict[str, Any]:
        """Where member ``key`` trained: its device and its worker, for the trial's record."""
        info = self.placed[key]
        return {"device": info.device, "worker": f"{info.host} (pid {info.pid})"}

    def step(self, should_stop: Callable[[], bool] | None = None) -> SpreadRound:
        """One round on every worker at once (``should_stop`` is the driver's: the workers
        stop at the budget's end by their own clocks, from the seconds left now)."""
        seconds = self.seconds_left()
        calls = {}
        for wid, w in self.workers.items():
            if w.keys or w.remove:
                calls[wid] = w.handle.step.remote(w.add, w.remove, seconds)
                w.add, w.remove = [], []
        result = SpreadRound()
        for wid, ref in calls.items():
            try:
                part = self.ray.get(ref)
            except (self.ray.exceptions.RayActorError, self.ray.exceptions.WorkerCrashedError) as e:
                self._lost(wid, e, result)
                continue
            result.epochs.extend(part.epochs)
            result.interrupted.extend(part.interrupted)
            gone = [e.key for e in part.epochs if e.finished] + part.interrupted
            for key in gone:
                self.workers[wid].keys.discard(key)
                del self.members[key]
        result.epochs.sort(key=lambda e: e.key)
        result.interrupted.sort()
        result.lost.sort()
        if not self.workers:
            raise WorkersLost("every Ray worker was lost, and none could be started again")
        return result

    # -- faults ------------------------------------------------------------------------------
    def _lost(self, wid: int, error: Exception, result: SpreadRound) -> None:
        """Worker ``wid`` died: its members are lost; a fresh worker takes its place."""
        worker = self.workers.pop(wid)
        self._kill(worker.handle)
        result.lost.extend(sorted(worker.keys))
        for key in worker.keys:
            del self.members[key]
        note = f"caviar: the worker on {worker.info.describe()} was lost ({type(error).__name__})"
        if self.replacements > 0:
            self.replacements -= 1
            handle = self._start(worker.plan)
            try:
                (info,) = self._ready([handle], [worker.plan])
            except (WorkersLost, self.ray.exceptions.RayError):
                note += "; no new worker could start, the others carry on"
            else:
                self.workers[self._next_id] = _Worker(worker.plan, handle, info)
                self._next_id += 1
                note += f"; a new one runs on {info.describe()}"
        result.notes.append(note)

    def _kill(self, handle: Any) -> None:
        with contextlib.suppress(Exception):  # it may be dead already
            self.ray.kill(handle, no_restart=True)

    def close(self) -> None:
        """End every worker."""
        for w in self.workers.values():
            self._kill(w.handle)
        self.workers.clear()


def open_spread(
    config: StudyConfig,
    training: TrainingData,
    *,
    seconds_left: Callable[[], float | None] = lambda: None,
) -> SpreadPool:
    """Start the workers ``config`` asks for on the connected Ray (:func:`connect`)."""
    ray = import_ray()
    plans = plan_workers(config, ray.cluster_resources())
    data = ray.put(training)  # once in the object store, shared by every worker
    actor = ray.remote(PoolWorker)
    threads = config.study.threads or 1

    def start(plan: WorkerPlan) -> Any:
        return actor.options(num_cpus=plan.num_cpus, num_gpus=plan.num_gpus, max_restarts=0).remote(
            data,
            device=plan.device,
            dtype=config.study.dtype,
            data_seed=config.seed,
            train_metrics=config.search.train_metrics,
            threads=threads if plan.device == "cpu" else 1,
            keep_states=config.search.keep_models > 0,
        )

    return SpreadPool(start, plans, seconds_left=seconds_left)
