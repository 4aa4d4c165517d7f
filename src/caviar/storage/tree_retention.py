"""The rule that keeps a run's snapshots under its disk budget, stated once for every tree store.

Retention drops the oldest snapshots first (by the time they were stored; ties by branch, then
epoch) until the run's fit its budget, and never these: the root's first (where the run started:
replay needs it when the run started from a kept trial), every epoch a branch grew from (a
rollback's source), and each branch's latest (where it goes on from). Protected snapshots may
keep a run over its budget. A store records each one dropped, so the run says what it lost.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple


class StoredSnapshot(NamedTuple):
    """What retention needs to know of a stored snapshot: where it is, its bytes, its time."""

    branch: int
    epoch: int
    size: int
    time: float


def beyond_budget(
    snapshots: Iterable[StoredSnapshot], budget: int, grown_from: Iterable[tuple[int, int]]
) -> list[StoredSnapshot]:
    """The snapshots of one run to drop, oldest first, so that the rest fit ``budget`` bytes
    as far as the protected ones allow; ``grown_from``: every branch's ``(parent, from_epoch)``.
    """
    ordered = sorted(snapshots, key=lambda s: (s.time, s.branch, s.epoch))
    total = sum(s.size for s in ordered)
    if total <= budget:
        return []
    # 1. protected: the root's first, every epoch a branch grew from, each branch's latest
    keep = set(grown_from)
    root = [s.epoch for s in ordered if s.branch == 0]
    if root:
        keep.add((0, min(root)))
    latest: dict[int, int] = {}
    for s in ordered:
        latest[s.branch] = max(latest.get(s.branch, s.epoch), s.epoch)
    keep |= set(latest.items())
    # 2. the oldest of the others go until the rest fit
    dropped = []
    for s in ordered:
        if total <= budget:
            break
        if (s.branch, s.epoch) not in keep:
            dropped.append(s)
            total -= s.size
    return dropped
