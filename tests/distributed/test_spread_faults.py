"""Workers that die while starting, or all of them mid-run: the pool stops with one resumable
error (:class:`WorkersLost`, a :class:`RunStopped`) that says what happened, through a
transport that starts no process; and a worker process the system refuses to start is named."""

from __future__ import annotations

import errno
import subprocess
from collections.abc import Collection
from typing import Any

import pytest
import torch

from caviar.core.errors import RunStopped
from caviar.distributed import SpreadPool, WorkerInfo, WorkerPlan, WorkersLost
from caviar.distributed.local_workers import LocalTransport, WorkerDied
from caviar.distributed.spread import StartTimeout
from caviar.nn import MemberSpec, TrainingData
from caviar.nn.engine import SpreadRound

CPU = WorkerPlan("cpu", 1, 0)


class Died(ConnectionError):
    """What this fake transport raises for a worker that died under a call."""


class DyingTransport:
    """Workers numbered from 0 in the order started (pid 1000 + number). ``dead_at_start``:
    the numbers whose process dies before it answers ``describe``; ``dead_in_step``: those
    that die under their first round; ``unstartable``: those whose process cannot start."""

    lost = (Died,)
    failed_start = (Died,)

    def __init__(
        self,
        dead_at_start: Collection[int] = (),
        dead_in_step: Collection[int] = (),
        unstartable: Collection[int] = (),
        timeout: bool = False,
    ) -> None:
        self.dead_at_start, self.dead_in_step = dead_at_start, dead_in_step
        self.unstartable, self.timeout = unstartable, timeout
        self.started = 0
        self.killed: list[int] = []

    def start(self, plan: WorkerPlan) -> int:
        number, self.started = self.started, self.started + 1
        if number in self.unstartable:
            raise Died(f"a worker process on {plan.device} could not start: out of processes")
        return number

    def call(self, handle: int, method: str, *args: Any) -> tuple[int, str]:
        return handle, method

    def get(self, pending: list[tuple[int, str]], timeout: float | None = None) -> list[Any]:
        if self.timeout:
            raise StartTimeout
        answers: list[Any] = []
        for number, method in pending:
            dies = self.dead_at_start if method == "describe" else self.dead_in_step
            if number in dies:
                raise Died(f"the worker process {1000 + number} on cpu was killed by signal 9")
            if method == "describe":
                answers.append(WorkerInfo("cpu", "here", 1000 + number, 1, 1 << 30, 256))
            else:
                answers.append(SpreadRound())
        return answers

    def kill(self, handle: int) -> None:
        self.killed.append(handle)

    def where(self) -> str:
        return "they are fakes"

    def close(self) -> None:
        pass


def test_a_worker_killed_while_starting_stops_the_pool_in_one_resumable_line() -> None:
    with pytest.raises(WorkersLost) as stopped:
        SpreadPool(DyingTransport(dead_at_start={1}), [CPU, CPU])
    assert (
        str(stopped.value) == "the worker process 1001 on cpu was killed by signal 9 while starting"
    )
    assert isinstance(stopped.value, RunStopped)
    assert isinstance(stopped.value.__cause__, Died)  # the transport's own error, kept


def test_a_worker_process_that_cannot_start_stops_the_pool_saying_so() -> None:
    with pytest.raises(WorkersLost) as stopped:
        SpreadPool(DyingTransport(unstartable={0}), [CPU, CPU])
    assert str(stopped.value) == "a worker process on cpu could not start: out of processes"


def test_workers_that_never_answer_stop_the_pool_as_a_resumable_error() -> None:
    with pytest.raises(RunStopped, match=r"^the workers \[cpu \(1 CPU, 0 GPU\)\] did not start"):
        SpreadPool(DyingTransport(timeout=True), [CPU], start_timeout=0.5)


def test_every_worker_lost_with_the_replacements_spent_says_how_the_last_was_lost() -> None:
    """Two workers die in their first round; the two replacements allowed die while starting:
    none is left, and the error names the last loss."""
    transport = DyingTransport(dead_at_start={2, 3}, dead_in_step={0, 1})
    pool = SpreadPool(transport, [CPU, CPU], replacements=2)
    pool.add(0, MemberSpec(seed=0))
    pool.add(1, MemberSpec(seed=1))
    with pytest.raises(WorkersLost) as stopped:
        pool.step()
    assert str(stopped.value) == (
        "every worker was lost (the last: the worker process 1001 on cpu was killed by "
        "signal 9), and none could be started again"
    )
    assert transport.started == 4 and transport.killed == [0, 1]
    assert isinstance(stopped.value, RunStopped)


def test_a_lost_worker_with_a_replacement_that_cannot_start_leaves_the_others_training() -> None:
    transport = DyingTransport(dead_in_step={0}, unstartable={2})
    pool = SpreadPool(transport, [CPU, CPU], replacements=1)
    pool.add(0, MemberSpec(seed=0))
    pool.add(1, MemberSpec(seed=1))
    result = pool.step()
    assert result.lost == [0] and list(pool.workers) == [1]
    assert result.notes == [
        "caviar: the worker on cpu on here (pid 1000) was lost (Died); no new worker could "
        "start, the others carry on"
    ]


def test_a_worker_process_the_system_refuses_is_a_dead_worker_named_with_why(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """fork() failing (EAGAIN: the limit on processes) is a worker lost, not an OSError."""
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(40, 5, generator=g), torch.arange(40) % 3
    data = TrainingData.from_arrays(x[:30], y[:30], x[30:], y[30:])
    t = LocalTransport(
        data, threads=1, dtype="float32", data_seed=0, train_metrics="pass", keep_states=False
    )

    def refused(*args: Any, **kwargs: Any) -> Any:
        raise OSError(errno.EAGAIN, "Resource temporarily unavailable")

    monkeypatch.setattr(subprocess, "Popen", refused)
    try:
        with pytest.raises(WorkerDied) as died:
            t.start(CPU)
        assert str(died.value) == (
            "a worker process on cpu could not start: Resource temporarily unavailable"
        )
        assert t.started == []
    finally:
        t.close()
