"""A study watched in its file: the report's data and the pool's progress, fresh within a second.

:class:`StudyWatch` opens the study read-only (a reader beside the tuning run's writer: it
writes nothing, not even SQLite's WAL switch), looks at its trials every :data:`POLL` seconds
from a background thread, and only when something was told (a trial's state, value or epochs,
the kept models) draws the report's data of the trials begun again
(:func:`caviar.report.page.study_data`) and bumps :attr:`version`; :meth:`wait` lets an event
stream sleep until then. The importance forest is fitted again only when a trial finishes. A
study about to be made (``caviar tune --serve``) is waited for: its file is opened only once the
search says the study is stored (``begun``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from caviar.core.records import FrozenTrial, TrialState
from caviar.dashboard.progress import pool_progress, progress_line
from caviar.report.importance import Importance, importance
from caviar.report.page import study_data
from caviar.study import Study

log = logging.getLogger(__name__)

#: seconds between two looks at the store
POLL = 1.0


class StudyWatch:
    """Study ``name`` in the file ``storage``, looked at every :data:`POLL` seconds once
    :meth:`start`-ed; :meth:`current` gives ``(version, data)``."""

    def __init__(
        self,
        name: str,
        storage: str | Path,
        *,
        begun: threading.Event | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.name, self.storage, self.clock = name, Path(storage), clock
        self.version = 0
        #: set once the study is stored (by the search that creates it): until then the file
        #: is not opened, as a reader beside SQLite making a file could spoil it
        self._begun = begun
        self._study: Study | None = None
        self._seen: object = None
        self._data: dict[str, Any] | None = None
        #: the importance ranking and the finished trials it was fitted to: a forest is fitted
        #: again when a trial finishes, not at every epoch told
        self._ranking: tuple[object, list[Importance] | None] = (None, None)
        self._changed = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()  # one look at a time (the thread's, or a last one)

    # -- reading the store ------------------------------------------------------------------
    def poll(self) -> bool:
        """Look at the store now; True when something changed (then :attr:`version` is new)."""
        with self._lock:
            if self._begun is not None and not self._begun.is_set():
                return False
            study = self._open()
            trials = study.trials()
            attrs = dict(study.attrs)
            seen = (_fingerprint(trials), attrs.get("kept_models"), attrs.get("planned_trials"))
            if seen == self._seen:
                return False
            data = self._draw(study, trials, attrs)
            with self._changed:
                self._seen, self._data = seen, data
                self.version += 1
                self._changed.notify_all()
            return True

    def _open(self) -> Study:
        if self._study is None:
            self._study = Study.open_file(
                self.name, self.storage, read_only=True, owner="--storage"
            )
        return self._study

    def _draw(
        self, study: Study, trials: list[FrozenTrial], attrs: dict[str, Any]
    ) -> dict[str, Any]:
        """The progress line, and the report's data of the trials begun (a queued trial is a
        row with nothing in it yet: the line counts it)."""
        progress = pool_progress(trials, attrs, study.direction, now=self.clock())
        progress["line"] = progress_line(progress)
        trials = [t for t in trials if t.state is not TrialState.QUEUED]
        board = study.leaderboard(curves=True)
        finished = tuple((t.number, t.state, t.value) for t in trials if t.state.is_finished)
        if self._ranking[0] != finished:
            found = importance(study.space, trials, study.direction, seed=study.seed % 2**32)
            self._ranking = (finished, found)
        ranking = self._ranking[1]
        return {"study": study_data(study, trials, board, ranking), "progress": progress}

    # -- for the server -----------------------------------------------------------------------
    def current(self) -> tuple[int, dict[str, Any] | None]:
        """``(version, {"study", "progress"})``; None for the data before the study exists."""
        with self._changed:
            return self.version, self._data

    def wait(self, version: int, timeout: float) -> int:
        """The version once it is past ``version``, or after ``timeout`` seconds."""
        with self._changed:
            self._changed.wait_for(lambda: self.version > version, timeout)
            return self.version

    def start(self) -> StudyWatch:
        """Look now (a study that must exist and does not: an error here), then every
        :data:`POLL` seconds from a background thread."""
        self.poll()
        self._thread = threading.Thread(
            target=self._run, name="caviar-dashboard-watch", daemon=True
        )
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(POLL):
            self._look()
        self._look()  # the last, asked for by stop(): the page ends with the study as it is

    def _look(self) -> None:
        try:
            self.poll()
        except Exception as error:  # a busy file: said in one line; the next look tries again
            log.warning(
                "dashboard: reading study %r in %s failed: %s", self.name, self.storage, error
            )

    def stop(self) -> None:
        """Look one last time (from the watching thread, on its own connection), stop looking
        and close the study."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        with self._lock:
            if self._study is not None:
                self._study.close()
                self._study = None


def _fingerprint(trials: list[FrozenTrial]) -> tuple[tuple[Any, ...], ...]:
    """What the page shows of each trial changes only when one of these does."""
    return tuple((t.number, t.state, t.value, len(t.curve), t.finished) for t in trials)
