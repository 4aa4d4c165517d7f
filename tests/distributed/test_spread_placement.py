"""Where the driver places members: on the worker with the least work a round, against a
hand-worked sequence, through a transport that starts no process."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from caviar.core.records import EpochRecord
from caviar.distributed import SpreadPool, WorkerInfo, WorkerPlan
from caviar.nn import MemberSpec
from caviar.nn.engine import SpreadRound
from caviar.nn.pool import MemberEpoch


class FakeWorker:
    def __init__(self, number: int) -> None:
        self.number = number
        self.held: set[int] = set()
        self.finish: set[int] = set()  # members whose next round is their last

    def describe(self) -> WorkerInfo:
        return WorkerInfo("cpu", "here", 1000 + self.number, 1, 1 << 30, 256)

    def step(
        self, add: list[tuple[int, MemberSpec]], remove: list[int], seconds: float | None
    ) -> SpreadRound:
        self.held -= set(remove)
        self.held |= {key for key, _ in add}
        done = self.held & self.finish
        self.held -= done
        return SpreadRound(
            epochs=[MemberEpoch(k, EpochRecord(1), False, True, 0.0) for k in sorted(done)]
        )


class FakeTransport:
    lost = (ConnectionError,)
    failed_start = (ConnectionError,)

    def __init__(self) -> None:
        self.workers: list[FakeWorker] = []

    def start(self, plan: WorkerPlan) -> FakeWorker:
        self.workers.append(FakeWorker(len(self.workers)))
        return self.workers[-1]

    def call(self, handle: FakeWorker, method: str, *args: Any) -> Any:
        return getattr(handle, method)(*args)

    def get(self, pending: list[Any], timeout: float | None = None) -> list[Any]:
        return pending

    def kill(self, handle: Any) -> None:
        pass

    def where(self) -> str:
        return "nowhere"

    def close(self) -> None:
        pass


def test_members_go_to_the_worker_with_the_least_work() -> None:
    transport = FakeTransport()
    spec = MemberSpec()
    work = {0: 10.0, 1: 1.0, 2: 1.0, 3: 1.0, 4: 10.0, 5: 1.0, 6: 4.0}
    pool = SpreadPool(transport, [WorkerPlan("cpu", 1, 0)] * 2, work=lambda s: work[s.seed])
    for key in range(6):
        pool.add(key, replace(spec, seed=key))
    # by hand: 0 -> w0 (a tie at 0 work and 0 members: the first); 1, 2, 3 -> w1 (1, 2, 3 < 10);
    # 4 -> w1 (3 < 10, then 13); 5 -> w0 (10 < 13)
    assert {k: pool.members[k] for k in range(6)} == {0: 0, 1: 1, 2: 1, 3: 1, 4: 1, 5: 0}
    pool.step()
    assert [w.held for w in transport.workers] == [{0, 5}, {1, 2, 3, 4}]

    # member 4 finishes and 1 is pruned: w1 holds 2 + 3 = 2 against w0's 11, so 6 goes there
    transport.workers[1].finish = {4}
    pool.step()
    pool.remove(1)
    pool.add(6, replace(spec, seed=6))
    assert pool.members[6] == 1
    pool.step()
    assert [w.held for w in transport.workers] == [{0, 5}, {2, 3, 6}]
    assert pool.costs == {0: 10.0, 5: 1.0, 2: 1.0, 3: 1.0, 6: 4.0}
