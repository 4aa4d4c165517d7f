""" "Babysit this one": a trial handed from the dashboard to ``caviar panda --from STUDY:TRIAL``.

The trainer runs as a detached process of its own (its own session: it outlives the dashboard
and a Ctrl-C there), with its output in a log file; :meth:`Babysitter.start` waits until it
prints its page's address (with the token) and answers with it. Only a trial whose final model
the search kept can be babysat (``study.attrs["kept_models"]``: the best ``search.keep_models``
complete trials); any other is refused naming the trials that can. A second request for a
trial whose trainer still runs answers with the same page.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from caviar.core.errors import InvalidValue, got
from caviar.search.kept import kept_state
from caviar.study import Study

#: seconds a trainer may take to print its page (it loads torch and the kept model first)
START_TIMEOUT = 120.0
#: what panda prints once its page is served (:mod:`caviar.cli.panda`)
_PAGE = re.compile(r"caviar panda: run '(?P<run>[^']+)' in .*; open (?P<url>http://\S+)")


@dataclass
class Started:
    """A trainer this dashboard started: its process, run, page and log."""

    process: subprocess.Popen[bytes]
    run: str
    url: str
    log: Path


class Babysitter:
    """Starts ``caviar panda --from STUDY:TRIAL`` for trials of study ``study`` in ``storage``."""

    def __init__(self, study: str, storage: str | Path, *, timeout: float = START_TIMEOUT) -> None:
        self.study, self.storage, self.timeout = study, Path(storage), timeout
        self._started: dict[int, Started] = {}
        self._lock = threading.Lock()  # one start at a time: two clicks start one trainer
        self._asked = threading.Condition()
        self._asking = 0  # requests being answered

    def start(self, trial: Any) -> dict[str, Any]:
        """``{"trial", "run", "url", "pid", "log", "stop", "again"}`` once the trainer serves
        its page; an InvalidValue when the trial cannot be babysat or the trainer ended."""
        if isinstance(trial, bool) or not isinstance(trial, int) or trial < 0:
            raise InvalidValue("babysit.trial", f"must be a trial's number, {got(trial)}")
        with self._lock:
            known = self._started.get(trial)
            if known is not None and known.process.poll() is None:
                return self._answer(trial, known, again=True)
            self._check_kept(trial)
            started = self._launch(trial)
            self._started[trial] = started
            return self._answer(trial, started, again=False)

    @contextlib.contextmanager
    def asking(self) -> Iterator[None]:
        """Around a request to babysit, from its arrival to its answer: :meth:`wait` waits
        for it."""
        with self._asked:
            self._asking += 1
        try:
            yield
        finally:
            with self._asked:
                self._asking -= 1
                self._asked.notify_all()

    def wait(self, timeout: float | None = None) -> None:
        """Return once no request to babysit is being answered (a server that ends lets its
        answer out first), or after ``timeout`` seconds."""
        with self._asked:
            self._asked.wait_for(lambda: self._asking == 0, timeout)

    def _check_kept(self, trial: int) -> None:
        study = Study.open_file(self.study, self.storage, read_only=True, owner="--storage")
        try:
            numbers = [t.number for t in study.trials(curves=False)]
            kept = [n for n in study.attrs.get("kept_models", []) if kept_state(study, n)]
            has_model = kept_state(study, trial) is not None
        finally:
            study.close()
        if trial not in numbers:
            raise InvalidValue(f"study {self.study!r}", f"has no trial {trial}")
        if not has_model:
            which = f"trials {sorted(kept)} have one" if kept else "none has one yet"
            raise InvalidValue(
                f"trial {trial}",
                f"has no kept model to babysit: the search keeps the final models of its best "
                f"complete trials only (search.keep_models); {which}",
            )

    def _launch(self, trial: int) -> Started:
        log = Path(tempfile.mkdtemp(prefix="caviar-babysit-")) / f"trial-{trial}.log"
        command = [
            sys.executable,
            "-m",
            "caviar.cli.start",
            "panda",
            "--from",
            f"{self.study}:{trial}",
            "--storage",
            str(self.storage),
        ]
        with log.open("wb") as out:
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # detached: it trains on when the dashboard ends
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            text = log.read_text(errors="replace")
            found = _PAGE.search(text)
            if found:
                return Started(process, found["run"], found["url"], log)
            if process.poll() is not None:
                last = [line for line in text.splitlines() if line.strip()][-1:] or ["no output"]
                raise InvalidValue(
                    f"babysit trial {trial}",
                    f"caviar panda ended with status {process.returncode}: {last[0]}",
                )
            time.sleep(0.1)
        raise InvalidValue(
            f"babysit trial {trial}",
            f"caviar panda printed no page within {self.timeout:g} s (it runs on, pid "
            f"{process.pid}; its output: {log})",
        )

    def _answer(self, trial: int, started: Started, *, again: bool) -> dict[str, Any]:
        return {
            "trial": trial,
            "run": started.run,
            "url": started.url,
            "pid": started.process.pid,
            "log": str(started.log),
            "stop": f"caviar panda stop --run {started.run} --storage {self.storage}",
            "again": again,
        }
