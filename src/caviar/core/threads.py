"""How many CPU threads the engine's kernels use, and a default that survives a busy machine.

torch's intra-op pool (OpenMP) waits at the end of every parallel kernel for all of its threads.
When another process takes one of the cores, one of our threads is descheduled and every kernel
waits for it to get a time slice back: the engine runs thousands of small kernels per second,
so the whole run crawls (the demo: 266 s instead of 55 s on the 2-core machine with another
process busy; see the README). One thread per *free* core avoids that.

So the default (``threads = "auto"``) measures, between rounds, how many cores the rest of the
machine keeps busy (from ``/proc/stat``, minus this process's own CPU time) and uses the cores
that are left, at least one. An explicit count is used as given, within the cap below.

Every count, explicit or measured, is capped at what this process can run (:func:`thread_cap`):
the cores it may run on, fewer where the limit on a user's processes (``ulimit -u``,
RLIMIT_NPROC) leaves room for fewer threads. An explicit count above the cap is refused in one
line (:func:`check_threads`): torch starts its threads as soon as it is told the count (OpenMP's
pool, and MKL's at the first product), a thread the system refuses ends the process (OpenBLAS
says ``pthread_create failed`` and raises SIGINT, libgomp exits; with ``study.threads =
1000000`` the run died with SIGSEGV), and threads beyond the cores only queue for them. Every
setting of torch's count goes through :func:`set_threads`.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from caviar.core.errors import InvalidValue, got

if sys.platform != "win32":  # Windows has no limit on a user's processes to read
    import resource

#: scheduler ticks per second in /proc/stat (USER_HZ; 100 on Linux)
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def machine_cores() -> int:
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _user_tasks(uid: int) -> int:
    """The processes and threads user ``uid`` runs on this machine (what RLIMIT_NPROC counts)."""
    tasks = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:  # gone since the listing, or not ours to read
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        if int(fields.get("Uid", "-1 -1").split()[0]) == uid:
            tasks += int(fields.get("Threads", "1"))
    return tasks


def _process_room() -> tuple[int, int] | None:
    """``(limit, in use)`` where a limit on this user's processes and threads applies
    (``ulimit -u``, RLIMIT_NPROC), else None: no limit, or root, whom the kernel exempts."""
    if sys.platform == "win32" or not Path("/proc/self").exists():
        return None
    soft, _ = resource.getrlimit(resource.RLIMIT_NPROC)
    if soft == resource.RLIM_INFINITY or os.getuid() == 0:
        return None
    return soft, _user_tasks(os.getuid())


def threads_started(count: int) -> int:
    """The threads torch starts for a thread count: its OpenMP pool of ``count - 1`` at once,
    and MKL's pool of as many at the first matrix product (measured: 40 threads start 78)."""
    return 2 * (count - 1)


@dataclass(frozen=True)
class ThreadCap:
    """The most CPU threads this process may use, and in words what sets that number."""

    most: int
    why: str


def thread_cap(
    cores: int | None = None,
    room: Callable[[], tuple[int, int] | None] | None = None,
) -> ThreadCap:
    """The most threads a count may ask for here: ``cores`` (default: the cores this process
    may run on), fewer where the limit on this user's processes leaves room for fewer (at least
    one: a count of one starts no thread)."""
    cores = machine_cores() if cores is None else cores
    cap = ThreadCap(cores, "the cores this process may run on")
    limit = (room or _process_room)()
    if limit is not None:
        nproc, used = limit
        fit = max(0, nproc - used) // 2 + 1  # the largest count whose threads_started fit
        if fit < cores:
            cap = ThreadCap(
                fit,
                f"the threads the limit on this user's processes leaves room for "
                f"(ulimit -u {nproc}, {used} in use)",
            )
    return cap


def check_threads(count: int, owner: str = "study.threads", *, cap: ThreadCap | None = None) -> int:
    """``count``, or an :class:`InvalidValue` naming ``owner`` if it is below 1 (torch's own
    error) or above the cap."""
    if count < 1:
        raise InvalidValue(owner, f"must be at least 1, {got(count)}")
    cap = thread_cap() if cap is None else cap
    if count > cap.most:
        raise InvalidValue(owner, f"must be at most {cap.most}, {cap.why}, {got(count)}")
    return count


def set_threads(count: int, owner: str = "study.threads", *, cap: ThreadCap | None = None) -> int:
    """Set torch's thread count to ``count``, checked against the cap first; returns it. The
    one place caviar sets it, so every count obeys the same cap."""
    torch.set_num_threads(check_threads(count, owner, cap=cap))
    return count


def _busy_seconds() -> float | None:
    """CPU seconds all processes have spent busy since boot, or None where unknown."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return None
    ticks = [int(f) for f in fields]
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)  # idle + iowait
    return (sum(ticks[:8]) - idle) / _TICKS


class ThreadGovernor:
    """Sets torch's thread count: ``setting`` if given (refused above :func:`thread_cap`), else
    the cores other work leaves free, measured over the interval between calls to
    :meth:`adjust`."""

    def __init__(
        self,
        setting: int | None = None,
        *,
        cores: int | None = None,
        busy: Callable[[], float | None] = _busy_seconds,
        own: Callable[[], float] = time.process_time,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.setting = setting
        self.cap = thread_cap(cores)
        self.cores = self.cap.most  # the cores, or fewer where the process limit says so
        self._busy, self._own, self._clock = busy, own, clock
        self._last = self._sample()
        self.threads = setting or self.cores
        self.others = 0.0  # cores the rest of the machine kept busy in the last interval
        set_threads(self.threads, cap=self.cap)

    def _sample(self) -> tuple[float | None, float, float]:
        return self._busy(), self._own(), self._clock()

    def adjust(self) -> int:
        """Re-measure and set the thread count; returns it."""
        now = self._sample()
        (busy0, own0, t0), (busy1, own1, t1) = self._last, now
        if self.setting is not None or busy0 is None or busy1 is None or t1 - t0 < 0.05:
            return self.threads  # too short to measure: the interval goes on
        self._last = now
        self.others = max(0.0, ((busy1 - busy0) - (own1 - own0)) / (t1 - t0))
        threads = max(1, min(self.cores, round(self.cores - self.others)))
        if threads != self.threads:
            self.threads = set_threads(threads, cap=self.cap)
        return self.threads
