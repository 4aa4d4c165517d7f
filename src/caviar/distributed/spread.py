"""The driver side: pools on several workers, driven as one pool.

:class:`SpreadPool` has the :class:`~caviar.nn.Pool` interface the search loop drives (add,
remove, step), so the loop, the study store and the halving rungs stay in the driver, unchanged:

1. ``add`` places a new member on the worker with the least work a round (the parameters of
   the members it holds: what an epoch of them costs; ties: the fewest members, then the
   first), so that the workers end their rounds together; ``remove`` takes one out. Both travel
   with the next round's call, one call per worker a round. Where a member trains changes none
   of its numbers.
2. ``step`` launches every worker's round at once and gathers them all (synchronous rounds),
   then merges the records in trial-number order: the loop sees what one pool of the same size
   would give, so the rungs judge members wherever they ran, and a study on N workers gives the
   same trials as one process (in float32 and float64 on the CPU, bit for bit; see the tests).
3. A worker that dies mid-round (its process killed, its node gone) loses the members it held:
   they come back as :attr:`SpreadRound.lost`, the loop puts their trials back in the queue, and
   they train again from their seeds. A fresh worker takes the lost one's place (at most
   ``replacements`` times a run); if none can start, the others carry on. With none left, or
   one lost while the pool starts, the run stops: :class:`WorkersLost`, a
   :class:`~caviar.core.errors.RunStopped` that the same command continues.

How the driver reaches its workers is a :class:`Transport`: Ray actors on a cluster
(:mod:`caviar.distributed.ray_workers`, ``--ray``), or processes of this machine
(:mod:`caviar.distributed.local_workers`, ``--devices`` alone). Either way the workers end
with their driver.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from caviar.core.errors import RunStopped
from caviar.distributed.cluster import WorkerPlan
from caviar.distributed.workers import WorkerInfo
from caviar.nn import MemberSpec
from caviar.nn.engine import DEFAULT_SLOTS, SpreadRound

#: seconds a new worker may take to start (its process, imports, data on its device)
START_TIMEOUT = 120.0


class StartTimeout(RuntimeError):
    """Workers did not answer within the time they have to start."""


class Transport(Protocol):
    """How the driver starts, calls and ends its workers (each one a
    :class:`~caviar.distributed.workers.PoolWorker` in another process)."""

    #: what :meth:`get` raises when a worker died under the call
    lost: tuple[type[Exception], ...]
    #: what starting a replacement may raise, besides :class:`StartTimeout`
    failed_start: tuple[type[Exception], ...]

    def start(self, plan: WorkerPlan) -> Any:
        """A new worker for ``plan``: its handle (it may still be starting)."""

    def call(self, handle: Any, method: str, *args: Any) -> Any:
        """Call a worker's method without waiting: what :meth:`get` takes."""

    def get(self, pending: list[Any], timeout: float | None = None) -> list[Any]:
        """The results of pending calls, in order (:class:`StartTimeout` after ``timeout`` s)."""

    def kill(self, handle: Any) -> None:
        """End a worker, dead or alive."""

    def where(self) -> str:
        """Where workers start, for a message saying they did not."""

    def close(self) -> None:
        """End every worker this transport started."""


class WorkersLost(RunStopped):
    """No worker is left to train on, or the workers did not start: the run stops with the
    study in order, and the same command continues it."""


def _reason(error: BaseException) -> str:
    """What a transport said of a lost worker, in one line (Ray's messages run to many)."""
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


@dataclass
class _Worker:
    plan: WorkerPlan
    handle: Any  # the transport's handle
    info: WorkerInfo
    keys: set[int] = field(default_factory=set)  # members it holds (or gets next round)
    add: list[tuple[int, MemberSpec]] = field(default_factory=list)
    remove: list[int] = field(default_factory=list)


class SpreadPool:
    """Pools on workers, driven as one (see the module docstring)."""

    def __init__(
        self,
        transport: Transport,
        plans: list[WorkerPlan],
        *,
        seconds_left: Callable[[], float | None] = lambda: None,
        work: Callable[[MemberSpec], float] = lambda spec: 1.0,
        replacements: int | None = None,
        start_timeout: float = START_TIMEOUT,
    ) -> None:
        self.transport, self.seconds_left, self.work = transport, seconds_left, work
        self.start_timeout = start_timeout
        self.replacements = 2 * len(plans) if replacements is None else replacements
        # a worker lost here (killed, out of memory) stops the run as any other loss of the
        # workers does, in one line (the transport's own error is its cause)
        try:
            handles = [transport.start(plan) for plan in plans]
        except transport.lost as e:
            raise WorkersLost(_reason(e)) from e
        try:
            infos = self._ready(handles, plans)
        except transport.lost as e:
            raise WorkersLost(f"{_reason(e)} while starting") from e
        self.last_lost: str | None = None  # how the last worker lost mid-run was lost
        self.workers = {
            i: _Worker(p, h, info)
            for i, (p, h, info) in enumerate(zip(plans, handles, infos, strict=True))
        }
        self._next_id = len(plans)
        self.members: dict[int, int] = {}  # key -> worker id
        self.costs: dict[int, float] = {}  # key -> its work a round
        self.placed: dict[int, WorkerInfo] = {}  # key -> where it trained last
        self.eval_batch = min(info.eval_batch for info in infos)
        self.budget = min(info.budget for info in infos)  # a member may land on any worker
        self.threads = max(info.threads for info in infos)
        self.default_slots = sum(DEFAULT_SLOTS.get(info.device.split(":")[0], 16) for info in infos)

    def _ready(self, handles: list[Any], plans: list[WorkerPlan]) -> list[WorkerInfo]:
        """Wait for new workers to start; their descriptions."""
        t = self.transport
        try:
            infos: list[WorkerInfo] = t.get(
                [t.call(h, "describe") for h in handles], timeout=self.start_timeout
            )
        except StartTimeout:
            for h in handles:
                t.kill(h)
            wanted = ", ".join(
                f"{p.device} ({p.num_cpus:g} CPU, {p.num_gpus:g} GPU)" for p in plans
            )
            raise WorkersLost(
                f"the workers [{wanted}] did not start within {self.start_timeout:g} s; {t.where()}"
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
        wid = min(self.workers, key=lambda i: (self._load(i), len(self.workers[i].keys), i))
        worker = self.workers[wid]
        worker.keys.add(key)
        worker.add.append((key, spec))
        self.members[key] = wid
        self.costs[key] = self.work(spec)
        self.placed[key] = worker.info

    def _load(self, wid: int) -> float:
        return sum(self.costs[k] for k in self.workers[wid].keys)

    def remove(self, key: int) -> None:
        del self.costs[key]
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
        seconds, t = self.seconds_left(), self.transport
        calls = {}
        for wid, w in self.workers.items():
            if w.keys or w.remove:
                calls[wid] = t.call(w.handle, "step", w.add, w.remove, seconds)
                w.add, w.remove = [], []
        result = SpreadRound()
        for wid, pending in calls.items():
            try:
                (part,) = t.get([pending])
            except t.lost as e:
                self._lost(wid, e, result)
                continue
            result.epochs.extend(part.epochs)
            result.interrupted.extend(part.interrupted)
            result.lost.extend(part.lost)
            result.notes.extend(part.notes)
            gone = [e.key for e in part.epochs if e.finished] + part.interrupted + part.lost
            for key in gone:
                self.workers[wid].keys.discard(key)
                del self.members[key], self.costs[key]
        result.epochs.sort(key=lambda e: e.key)
        result.interrupted.sort()
        result.lost.sort()
        if not self.workers:
            raise WorkersLost(
                f"every worker was lost (the last: {self.last_lost}), and none could be "
                "started again"
            )
        return result

    # -- faults ------------------------------------------------------------------------------
    def _lost(self, wid: int, error: Exception, result: SpreadRound) -> None:
        """Worker ``wid`` died: its members are lost; a fresh worker takes its place."""
        worker = self.workers.pop(wid)
        self.transport.kill(worker.handle)
        result.lost.extend(sorted(worker.keys))
        for key in worker.keys:
            del self.members[key], self.costs[key]
        self.last_lost = _reason(error)
        note = f"caviar: the worker on {worker.info.describe()} was lost ({type(error).__name__})"
        if self.replacements > 0:
            self.replacements -= 1
            t = self.transport
            failed: tuple[type[Exception], ...] = (WorkersLost, *t.lost, *t.failed_start)
            try:
                handle = t.start(worker.plan)
                (info,) = self._ready([handle], [worker.plan])
            except failed:
                note += "; no new worker could start, the others carry on"
            else:
                self.workers[self._next_id] = _Worker(worker.plan, handle, info)
                self._next_id += 1
                note += f"; a new one runs on {info.describe()}"
        result.notes.append(note)

    def close(self) -> None:
        """End every worker (the transport hangs up on all of them at once)."""
        self.transport.close()
        self.workers.clear()
