"""Live progress of a tuning run: trials done, epochs, ETA, best so far, diverged count.

On a terminal it is one line redrawn in place; otherwise (a log file, CI) a plain line at most
every ``interval`` seconds, so logs stay readable.
"""

from __future__ import annotations

import math
import sys
import time
from typing import TextIO


def _clock(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    seconds = round(seconds)
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class Progress:
    """Counts model-epochs as they stream in and renders one status line."""

    def __init__(
        self,
        name: str,
        total_trials: int,
        *,
        stream: TextIO | None = None,
        enabled: bool = True,
        interval: float = 10.0,
    ) -> None:
        self.name = name
        self.total_trials = total_trials
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.interval = interval
        self.live = enabled and self.stream.isatty()
        self.started = time.monotonic()
        self._last_print = -math.inf
        self.trials_done = 0
        self.diverged = 0
        self.best: float | None = None
        self.model_epochs_done = 0
        self.model_epochs_total = 0
        self.epoch = 0
        self.epochs = 0
        self._width = 0

    def population(self, trials_done: int, members: int, epochs: list[int]) -> None:
        """A population of ``members`` starts; ``epochs`` are their epoch counts."""
        self.trials_done = trials_done
        self.epoch, self.epochs = 0, max(epochs, default=0)
        mean = sum(epochs) / len(epochs) if epochs else 0
        remaining = self.total_trials - trials_done
        self.model_epochs_total = self.model_epochs_done + round(remaining * mean)
        self._show()

    def epoch_done(self, epoch: int, members: int, best: float | None) -> None:
        self.epoch = max(self.epoch, epoch)
        self.model_epochs_done += members
        self._offer(best)
        self._show()

    def trials_finished(self, done: int, diverged: int, best: float | None) -> None:
        self.trials_done = done
        self.diverged = diverged
        self._offer(best)
        self._show(force=True)

    def _offer(self, best: float | None) -> None:
        if best is not None and (self.best is None or best > self.best):
            self.best = best

    def eta(self) -> float:
        elapsed = time.monotonic() - self.started
        if self.model_epochs_done == 0:
            return math.inf
        rate = self.model_epochs_done / elapsed
        return max(0.0, (self.model_epochs_total - self.model_epochs_done) / rate)

    def line(self) -> str:
        best = "-" if self.best is None else f"{self.best:.4f}"
        return (
            f"caviar {self.name}: trials {self.trials_done}/{self.total_trials}  "
            f"epoch {self.epoch}/{self.epochs}  best val acc {best}  "
            f"diverged {self.diverged}  elapsed {_clock(time.monotonic() - self.started)}  "
            f"ETA {_clock(self.eta())}"
        )

    def _show(self, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if self.live:
            text = self.line()
            pad = " " * max(0, self._width - len(text))
            self._width = len(text)
            self.stream.write("\r" + text + pad)
            self.stream.flush()
        elif force or now - self._last_print >= self.interval:
            self._last_print = now
            print(self.line(), file=self.stream, flush=True)

    def close(self) -> None:
        if self.enabled and self.live:
            self.stream.write("\n")
            self.stream.flush()
