"""The last rounds of a time budget: spend them on work that can finish.

Under ``search.timeout`` the round running at the deadline is cut, and its members go back to
the queue with their epochs lost. So after every round the search loop plans the time left, at
the pace that round measured:

- each member's cost is the time to its next decision: its next rung under successive halving
  (where it is judged), else its last epoch (where it is complete);
- members furthest along come first: they hold the most work, and under halving they are the
  ones the rungs kept. A member whose next decision does not fit in what the members before it
  leave goes back to the queue at once, so the others get the machine;
- a new trial starts only if its first decision fits in what is left after all of them. Not
  now is not never: the next round measures the pace again, so one slow round (another process
  took the machine) does not end the search. With nothing running, nothing will leave more
  time, and the search ends.

Adding up costs is exact whatever the rounds' order: a round costs the sum of its members'
epochs, so the kept members all reach their decisions after the sum of their costs.
An epoch's cost is taken as proportional to the member's parameters (each weight takes part in
the same few products per example), scaled by the seconds per parameter the last round took.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from caviar.search.halving import Halving


def epochs_to_decision(done: int, epochs: int, halving: Halving | None, bracket: int = 0) -> int:
    """Epochs a member with ``done`` of its ``epochs`` trains before it is next judged (its next
    rung in its ``bracket``) or complete."""
    stop = epochs
    if halving is not None:
        stop = min([r for r in halving.rungs(epochs, bracket) if r > done] + [epochs])
    return max(stop - done, 0)


@dataclass(frozen=True)
class Running:
    """A member in the pool: its key, epochs done and seconds to its next decision."""

    key: int
    done: int
    cost: float


def plan(running: Sequence[Running], seconds_left: float) -> tuple[list[int], float]:
    """Which members go back to the queue now, and the seconds the kept ones leave for new
    trials (see the module docstring). Members furthest along first, then by key."""
    left = seconds_left
    release = []
    for member in sorted(running, key=lambda m: (-m.done, m.key)):
        if member.cost <= left:
            left -= member.cost
        else:
            release.append(member.key)
    return release, max(left, 0.0)
