"""How many CPU threads the engine's kernels use, and a default that survives a busy machine.

torch's intra-op pool (OpenMP) waits at the end of every parallel kernel for all of its threads.
When another process takes one of the cores, one of our threads is descheduled and every kernel
waits for it to get a time slice back: the engine runs thousands of small kernels per second,
so the whole run crawls (the demo: 266 s instead of 55 s on the 2-core machine with another
process busy; see the README). One thread per *free* core avoids that.

So the default (``threads = "auto"``) measures, between rounds, how many cores the rest of the
machine keeps busy (from ``/proc/stat``, minus this process's own CPU time) and uses the cores
that are left, at least one. An explicit count is used as given.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import torch

#: scheduler ticks per second in /proc/stat (USER_HZ; 100 on Linux)
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def machine_cores() -> int:
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


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
    """Sets torch's thread count: ``setting`` if given, else the cores other work leaves free,
    measured over the interval between calls to :meth:`adjust`."""

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
        self.cores = cores or machine_cores()
        self._busy, self._own, self._clock = busy, own, clock
        self._last = self._sample()
        self.threads = setting or self.cores
        self.others = 0.0  # cores the rest of the machine kept busy in the last interval
        torch.set_num_threads(self.threads)

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
            self.threads = threads
            torch.set_num_threads(threads)
        return self.threads
