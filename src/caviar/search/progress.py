"""Live progress of a search: trials finished as they finish, the best *finished* trial, how many
were pruned or diverged, and the time left (the budget, or an estimate).

On a terminal it is one line redrawn in place with ``\r``, never wider than the terminal less one
column (a line that reaches the last column wraps, and every redraw then leaves a line behind:
on 80 columns the whole line scrolled by, cut before the ETA). Where the whole line does not fit,
it gets shorter a step at a time until it does (:meth:`Progress._shorter`): counts of zero go
first, then words that only explain (``best val acc`` to ``best``, ``budget left`` to
``left``), the elapsed time, the word ``trials``, the members training, the word ``caviar``
(from then on a long study name is cut in its middle, to 12 characters at least), the pruned and
the diverged counts, the word ``done``, the failed count (news: the last count to go) and the
best value. The study's name, trials done of the total and the time left stay (``book: 6/96
ETA 5:40``); narrower than that, the name is cut to 3 characters, then the fields at the end go
whole.

Elsewhere (a log file, a pipe, CI) there is no ``\r``: the whole line, printed at the start, at
the first finished trial, at most every ``interval`` seconds after, and at the end, so logs stay
readable.
"""

from __future__ import annotations

import io
import math
import os
import sys
import time
from collections.abc import Callable
from typing import TextIO

from caviar.core.records import Direction, TrialState


def _clock(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    seconds = round(seconds)
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def columns(stream: TextIO) -> int:
    """The width of the terminal ``stream`` writes to, as :func:`shutil.get_terminal_size` finds
    it but for this stream (progress goes to stderr, which may be a terminal while stdout is a
    pipe): the ``COLUMNS`` variable if set, else the terminal's own, else 80."""
    try:
        width = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        width = 0
    if width <= 0:
        try:
            width = os.get_terminal_size(stream.fileno()).columns
        except (AttributeError, ValueError, OSError, io.UnsupportedOperation):
            width = 0  # no file behind the stream, or not a terminal
    return width if width > 0 else 80  # a pseudo-terminal nobody sized reports 0


_NAME_AT_LEAST = 12  # a long study name is cut to no fewer characters while fields remain


def _cut_name(name: str, room: int) -> str:
    """``name`` in at most ``room`` characters (one at least), its middle replaced by ``~``:
    the start and the end of ``demo-fashion-mnist-...-trials16`` tell studies apart."""
    room = max(room, 1)
    if len(name) <= room:
        return name
    tail = (room - 1) // 2
    return name[: room - 1 - tail] + "~" + (name[-tail:] if tail else "")


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
        direction: Direction = Direction.MAXIMIZE,
        score: str = "val acc",
    ) -> None:
        self.name = name
        #: which value is best, and what the line calls it (``best val acc 0.9812``)
        self.direction, self.score = direction, score
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
        if best is not None and (self.best is None or self.direction.better(best, self.best)):
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

    def _best(self) -> str:
        return "-" if self.best is None else f"{self.best:.4f}"

    def _done(self) -> str:
        total = "" if self.total_trials is None else f"/{self.total_trials}"
        return f"{self.done_before + self.finished}{total}"

    def _running(self) -> int:
        """The members training, never more than the trials left: none once all are done."""
        if self.total_trials is None:
            return self.running
        left = self.total_trials - self.done_before - self.finished
        return max(0, min(self.running, left))

    def _fields(self) -> dict[str, str | None]:
        """The line's fields, in the order they show, at their longest."""
        left = "budget left" if self.timeout is not None else "ETA"
        return {
            "name": f"caviar {self.name}:",
            "trials": f"trials {self._done()} done, {self._running()} training",
            "best": f"best {self.score} {self._best()}",
            "pruned": f"pruned {self.pruned}",
            "diverged": f"diverged {self.diverged}",
            "failed": f"failed {self.failed}" if self.failed else None,  # only when there are
            "elapsed": f"elapsed {_clock(self.clock() - self.started)}",
            "left": f"{left} {_clock(self.time_left())}",
        }

    def _shorter(self) -> list[tuple[str, str | None]]:
        """How a line too wide for the terminal gets shorter: a step at a time, in this order,
        each giving a field its shorter text (None: the field goes). From the step that drops
        the word ``caviar`` on, a long study name is cut in its middle too."""
        left = "left" if self.timeout is not None else "ETA"
        return [
            ("diverged", None if not self.diverged else f"diverged {self.diverged}"),  # a zero
            ("pruned", None if not self.pruned else f"pruned {self.pruned}"),  # says nothing
            ("best", f"best {self._best()}"),
            ("left", f"{left} {_clock(self.time_left())}"),
            ("elapsed", None),  # the time left is what a watcher wants
            ("trials", f"{self._done()} done, {self._running()} training"),
            ("trials", f"{self._done()} done"),
            ("name", f"{self.name}:"),  # and from here on a long name is cut
            ("pruned", None),
            ("diverged", None),
            ("trials", self._done()),
            ("failed", None),  # news: the last count to go
            ("best", None),
        ]

    def line(self, width: int | None = None) -> str:
        """The status line: whole, or with ``width`` (a terminal's columns) its longest form in
        at most ``width - 1`` characters, made shorter by the steps of :meth:`_shorter`."""
        fields = self._fields()
        text = _join(fields)
        if width is None:
            return text
        room = max(0, width - 1)
        cutting_name = False
        for key, shorter in self._shorter():
            if len(text) <= room:
                return text
            if fields[key] is not None:
                fields[key] = shorter
            cutting_name = cutting_name or key == "name"
            if cutting_name:
                fields["name"] = self._name_in(fields, room, at_least=_NAME_AT_LEAST)
            text = _join(fields)
        if len(text) <= room:
            return text
        # Narrower than the shortest form: the name cut to what the rest leaves (3 characters
        # at least), then whole fields from the end, then the name at the edge; never a wrap.
        fields["name"] = self._name_in(fields, room, at_least=3)
        shown = [key for key, value in fields.items() if value is not None and key != "name"]
        while len(_join(fields)) > room and shown:
            fields[shown.pop()] = None
        return _join(fields)[:room].rstrip()

    def _name_in(self, fields: dict[str, str | None], room: int, at_least: int) -> str:
        """``name:``, the name cut to what the other fields leave of ``room``, but to no
        fewer than ``at_least`` characters."""
        others = len(_join({**fields, "name": None}))
        return _cut_name(self.name, max(at_least, room - others - len(": "))) + ":"

    def _show(self, force: bool = False) -> None:
        if not self.enabled:
            return
        now = self.clock()
        if self.live:
            width = columns(self.stream)
            text = self.line(width)
            pad = " " * max(0, min(self._width, width - 1) - len(text))  # the last line's rest
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
            pad = " " * max(0, min(self._width, columns(self.stream) - 1) - len(text))
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


def _join(fields: dict[str, str | None]) -> str:
    """``caviar book: trials 3/5 done, 4 training  best val acc 0.5000  ...``: the name, a
    space, the other fields two spaces apart."""
    name, *rest = fields.values()
    shown = "  ".join(f for f in rest if f is not None)
    return shown if name is None else f"{name} {shown}"
