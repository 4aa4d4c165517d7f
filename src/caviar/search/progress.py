"""Live progress of a search: trials finished as they finish, the best *finished* trial, how many
were pruned or diverged, and the time left (the budget, or an estimate).

On a terminal it is one line redrawn in place; otherwise (a log file, CI) a plain line at most
every ``interval`` seconds, so logs stay readable.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from typing import TextIO

from caviar.core.records import TrialState


def _clock(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    seconds = round(seconds)
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class Progress:
    """Counts trials and model-epochs as they stream in and renders one status line."""

    def __init__(
        self,
        name: str,
        total_trials: int | None,
        *,
        stream: TextIO | None = None,
        enabled: bool = True,
        interval: float = 10.0,
        timeout: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        started: float | None = None,
    ) -> None:
        self.name = name
        self.total_trials = total_trials
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.interval = interval
        self.timeout = timeout
        self.clock = clock
        self.live = enabled and self.stream.isatty()
        self.started = clock() if started is None else started  # the budget's start
        self._last_print = -math.inf
        self.done_before = 0  # trials finished by earlier runs of the study
        self.finished = 0  # trials finished in this run
        self.running = 0
        self.pruned = 0
        self.diverged = 0
        self.failed = 0
        self.best: float | None = None
        self.model_epochs = 0  # epochs trained in this run, by all members
        self.finished_epochs = 0  # epochs the trials finished in this run had trained
        self._first_epochs: tuple[float, int] | None = None  # (when, how many) the first came
        self._width = 0

    def resume(self, done_before: int, best: float | None) -> None:
        """The study already holds ``done_before`` finished trials, the best scoring ``best``."""
        self.done_before = done_before
        self._offer(best)
        self._show(force=True)

    def training(self, running: int) -> None:
        """``running`` members are in the pool now."""
        self.running = running

    def epochs_done(self, model_epochs: int, running: int) -> None:
        """The pool trained ``model_epochs`` more epochs; ``running`` members are in it now."""
        self.model_epochs += model_epochs
        if self._first_epochs is None:
            self._first_epochs = (self.clock(), self.model_epochs)
        self.running = running
        self._show()

    def trial_finished(self, state: TrialState, value: float | None, epochs: int = 0) -> None:
        """A trial left the pool as ``state`` (its objective ``value`` if complete) after
        training ``epochs`` epochs. A pruned, diverged or complete one leaves one member fewer
        training (a round's last members showed as training after all trials were done); a
        failed one never joined the pool (its member could not be built)."""
        self.finished += 1
        if state is not TrialState.FAILED:
            self.running = max(0, self.running - 1)
        self.finished_epochs += epochs
        if state is TrialState.PRUNED:
            self.pruned += 1
        elif state is TrialState.DIVERGED:
            self.diverged += 1
        elif state is TrialState.FAILED:
            self.failed += 1
        elif state is TrialState.COMPLETE:
            self._offer(value)
        self._show(force=self.finished == 1)

    def _offer(self, best: float | None) -> None:
        if best is not None and (self.best is None or best > self.best):
            self.best = best

    def time_left(self) -> float:
        """Seconds to the budget's end, or an estimate: from the pace of model-epochs where
        the finished trials say how many epochs a trial takes, else of finished trials.

        A pool starts its members together, so trials finish in waves: a count of finished
        trials says little until the first wave ends (the book's search, 100 trials on a pool
        of 32: 13 minutes left, by that count, after its first trial at 8 s of a 19-s run).
        Epochs come every round; their pace is measured from the first, so the start-up
        (imports, data, workers) does not count as training time."""
        now = self.clock()
        elapsed = now - self.started
        if self.timeout is not None:
            return max(0.0, self.timeout - elapsed)
        if not self.finished or self.total_trials is None:
            return math.inf
        to_run = self.total_trials - self.done_before  # trials this run finishes
        if to_run <= self.finished:
            return 0.0
        per_second = 0.0  # model-epochs
        if self.finished_epochs and self._first_epochs is not None:
            since, base = self._first_epochs
            if now > since and self.model_epochs > base:
                per_second = (self.model_epochs - base) / (now - since)
            elif elapsed > 0:
                per_second = self.model_epochs / elapsed
        if per_second > 0:
            left = to_run * self.finished_epochs / self.finished - self.model_epochs
            return max(0.0, left / per_second)
        return (to_run - self.finished) * elapsed / self.finished

    def _running(self) -> int:
        """The members training, never more than the trials left: none once all are done."""
        if self.total_trials is None:
            return self.running
        left = self.total_trials - self.done_before - self.finished
        return max(0, min(self.running, left))

    def line(self) -> str:
        best = "-" if self.best is None else f"{self.best:.4f}"
        done = self.done_before + self.finished
        total = "" if self.total_trials is None else f"/{self.total_trials}"
        left = "budget left" if self.timeout is not None else "ETA"
        failed = f"failed {self.failed}  " if self.failed else ""  # rare: only when there are
        return (
            f"caviar {self.name}: trials {done}{total} done, {self._running()} training  "
            f"best val acc {best}  pruned {self.pruned}  diverged {self.diverged}  {failed}"
            f"elapsed {_clock(self.clock() - self.started)}  {left} {_clock(self.time_left())}"
        )

    def _show(self, force: bool = False) -> None:
        if not self.enabled:
            return
        now = self.clock()
        if self.live:
            text = self.line()
            pad = " " * max(0, self._width - len(text))
            self._width = len(text)
            self.stream.write("\r" + text + pad)
            self.stream.flush()
        elif force or now - self._last_print >= self.interval:
            self._last_print = now
            print(self.line(), file=self.stream, flush=True)

    def note(self, text: str) -> None:
        """A line of its own: why the run waits, or what it lost. Written even when the
        progress line is off (``--quiet`` silences progress, not these)."""
        if self.live and self.enabled and self._width:
            pad = " " * max(0, self._width - len(text))
            self.stream.write("\r" + text + pad + "\n")
            self._width = 0
            self._show(force=True)  # the live line again, below the note
        else:
            print(text, file=self.stream, flush=True)

    def close(self) -> None:
        if not self.enabled:
            return
        if self.live:
            self.stream.write("\n")
            self.stream.flush()
        else:
            self._show(force=True)
