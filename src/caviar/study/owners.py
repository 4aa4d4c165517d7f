"""Who holds a running trial: owners, whether they are alive, and what a run says when it waits
for them or finds that they took its trials over.

Every process that runs trials is an *owner*, ``host:pid:token``. Its trials carry its
heartbeat. Another process re-queues them when the owner is dead (same host, pid gone) or its
heartbeat is ``stale_after`` seconds old. Until then a run that needs those trials waits, and
says for whom and for how long (:class:`HeldTrials`); a process that was stopped (SIGSTOP, a
suspended laptop) past that time finds its trials taken over (:class:`TrialsTakenOver`).
"""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass

from caviar.storage.base import StaleTrialError

#: owners created by this process and not closed: a trial whose owner has this process's
#: pid but is not in here belongs to an earlier process that had the same pid (containers
#: restart with the same pids), so it is dead
LIVE_OWNERS: set[str] = set()


def new_owner() -> str:
    owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    LIVE_OWNERS.add(owner)
    return owner


def process_of(owner: str) -> str:
    """``host:pid``, the part of an owner a user can look up (``ps``, ``top``)."""
    host, _, rest = owner.partition(":")
    return f"{host}:{rest.partition(':')[0]}" if rest else owner


def owner_is_alive(owner: str) -> bool | None:
    """True or False for a process on this host; None for another host (no way to tell)."""
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return None
    pid = int(pid_text)
    if pid == os.getpid():
        return owner in LIVE_OWNERS
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def owner_is_dead(owner: str) -> bool:
    """Whether ``owner`` is a process on this host that no longer exists."""
    return owner_is_alive(owner) is False


def _trials(numbers: tuple[int, ...]) -> tuple[str, str]:
    """``trial 5`` / ``trials [3, 4]``, and the pronoun that goes with it."""
    return (
        (f"trial {numbers[0]}", "it") if len(numbers) == 1 else (f"trials {list(numbers)}", "they")
    )


@dataclass(frozen=True)
class HeldTrials:
    """Running trials of another owner, and when :meth:`Study.recover` will re-queue them."""

    owner: str
    numbers: tuple[int, ...]
    alive: bool | None  # a live process on this host; None on another host
    heartbeat_age: float | None  # seconds since its last heartbeat (None: it never sent one)
    requeue_in: float  # seconds until it is re-queued, if no heartbeat comes

    def describe(self, study: str) -> str:
        trials, pronoun = _trials(self.numbers)
        verb = "is" if pronoun == "it" else "are"
        where = "a live process has that pid" if self.alive else "on another host"
        beat = (
            "it sent no heartbeat yet"
            if self.heartbeat_age is None
            else f"its last heartbeat was {self.heartbeat_age:.0f} s ago"
        )
        return (
            f"{trials} of {study!r} {verb} held by {process_of(self.owner)} ({where}; {beat}): "
            f"{pronoun} {verb} requeued if no heartbeat comes within {self.requeue_in:.0f} s"
        )


class TrialsTakenOver(StaleTrialError):
    """Trials this process held were re-queued by another process, which found their heartbeat
    stale. Nothing is lost: whoever runs them now stores their results."""

    def __init__(
        self, study: str, numbers: tuple[int, ...], owner: str, silence: float, paused: bool
    ) -> None:
        trials = f"trials {list(numbers)}"
        if paused:
            why = (
                f"after this one ({process_of(owner)}) sent no heartbeat for {silence:.0f} s "
                f"(was it paused or suspended?)"
            )
        else:
            why = (
                f"while this one ({process_of(owner)}) was sending heartbeats (its last "
                f"{silence:.0f} s ago)"
            )
        super().__init__(
            f"{trials} of study {study!r} were taken over by another process {why}. They went "
            f"back to the queue: whoever runs them keeps their results, and nothing was lost",
            numbers,
        )
