"""How many CPU threads an experiment trains with: caviar's thread governor, as ``caviar tune``
uses it (:mod:`caviar.core.threads`).

Why: torch's default (one thread per core) crawls when other work holds a core, since every
small kernel waits for the descheduled thread (on the 2-core machine, shared: ``overfit --quick``
took 113 s against 15 s at one thread, the full batchnorm-init 279 s against 11 s). With
``threads = None`` ("auto") the governor measures, about once a second between epochs, the
cores the rest of the machine keeps busy and uses the others; a count is used as given, and a
count above the cores is refused before anything trains.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from caviar.core.threads import ThreadGovernor, check_threads

#: seconds between two measurements of the machine (a shorter window is mostly noise)
EVERY = 1.0


class Pacer:
    """The governor of one experiment run, asked between epochs; remembers every count used."""

    def __init__(
        self,
        threads: int | None = None,
        *,
        owner: str = "experiment.threads",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if threads is not None:
            check_threads(threads, owner)  # refused under the experiment's own name
        self.setting = threads
        self.governor = ThreadGovernor(threads)
        self.used = {self.governor.threads}
        self._clock = clock
        self._next = clock() + EVERY

    def __call__(self) -> None:
        """Between epochs: re-measure (at most every :data:`EVERY` seconds), set the count."""
        if self._clock() >= self._next:
            self.used.add(self.governor.adjust())
            self._next = self._clock() + EVERY

    def record(self) -> dict[str, object]:
        """For the experiment's JSON: the setting ('auto' or a count) and the counts used."""
        return {
            "setting": "auto" if self.setting is None else self.setting,
            "used": sorted(self.used),
        }
