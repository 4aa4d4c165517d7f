"""The progress line drawn by a terminal emulator (pyte) on an 80-column pseudo-terminal: the bytes
a run writes leave one progress line, redrawn in place, with the ETA on it. The line used to be
100 to 110 characters: on 80 columns every redraw wrapped, and the screen filled with rows cut
at `pruned 0  div`, the ETA never seen."""

from __future__ import annotations

import fcntl
import os
import select
import struct
import subprocess
import sys
import termios
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from caviar.core.records import TrialState
from caviar.search.progress import Progress

pyte = pytest.importorskip("pyte", reason="pyte is not installed (the test extra)")

COLUMNS, ROWS = 80, 24


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@contextmanager
def pseudo_terminal(columns: int = COLUMNS, rows: int = ROWS) -> Iterator[tuple[int, int]]:
    """(master, slave) of a pseudo-terminal sized ``columns`` x ``rows``, as a window is."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    try:
        yield master, slave
    finally:
        os.close(slave)
        os.close(master)


def drain(master: int, timeout: float = 0.0) -> bytes:
    """What the terminal has received so far, waiting up to ``timeout`` for the first bytes."""
    got = b""
    while select.select([master], [], [], timeout)[0]:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the other end closed (Linux says EIO)
            break
        if not chunk:
            break
        got += chunk
        timeout = 0.0
    return got


def rows_shown(screen: pyte.Screen) -> list[str]:
    return [row.rstrip() for row in screen.display if row.strip()]


def test_a_run_on_80_columns_shows_one_line_redrawn_with_its_eta(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """96 trials on a pool of 16 in six waves of 3 epochs, some pruned, diverged or failed, and
    a note; after every update the screen holds the note (once written) and one progress line,
    the cursor short of the last column."""
    monkeypatch.delenv("COLUMNS", raising=False)  # the width comes from the terminal itself
    screen = pyte.Screen(COLUMNS, ROWS)
    stream = pyte.ByteStream(screen)
    note = "caviar: trials 40, 41 go back to the queue, to train again"
    clock = Clock()
    with pseudo_terminal() as (master, slave), open(slave, "w", closefd=False) as tty:
        progress = Progress("book", 96, stream=tty, clock=clock)
        written = bytearray()

        def look() -> list[str]:
            got = drain(master, timeout=1.0)
            written.extend(got)
            stream.feed(got)
            assert screen.cursor.x < COLUMNS  # never at the edge, where the next byte wraps
            return rows_shown(screen)

        progress.resume(0, None)
        assert look()[-1].endswith("ETA ?")
        states = [TrialState.COMPLETE] * 10 + [TrialState.PRUNED] * 4 + [TrialState.DIVERGED]
        for wave in range(6):
            progress.training(16)
            for _ in range(3):
                clock.now += 2
                progress.epochs_done(16, running=16)
                shown = look()
                assert len(shown) == (2 if wave >= 3 else 1), shown
                assert "ETA " in shown[-1]
            for n, state in enumerate([*states, TrialState.FAILED]):
                progress.trial_finished(state, 0.5 + wave / 100 + n / 1000, epochs=3)
                shown = look()
                assert len(shown) == (2 if wave >= 3 else 1), shown
                assert shown[-1].startswith("caviar book: ") and "ETA " in shown[-1], shown
            progress.epochs_done(0, running=0)
            if wave == 2:
                progress.note(note)
                assert look()[0] == note
        progress.close()
        shown = look()
    assert len(written) > 20 * COLUMNS  # many redraws, drawn over one another
    assert shown == [
        note,
        "caviar book: 96/96 done  best 0.5590  pruned 24  diverged 6  failed 6  ETA 0:00",
    ]


def test_the_whole_old_line_would_have_wrapped() -> None:
    """The emulator does wrap what reaches the last column: the pile the first test rules out."""
    screen = pyte.Screen(COLUMNS, ROWS)
    stream = pyte.Stream(screen)
    line = (
        "caviar book: trials 6/96 done, 16 training  best val acc 0.8833  pruned 3  diverged 0  "
        "elapsed 0:20  ETA 1:20"
    )
    for _ in range(3):
        stream.feed("\r" + line)
    shown = rows_shown(screen)
    assert len(shown) == 4 and shown[0] == line[:COLUMNS]  # each redraw left a row behind
    assert "ETA" not in shown[0]


@pytest.mark.slow
def test_caviar_tune_on_an_80_column_terminal_leaves_one_progress_line(tmp_path: Path) -> None:
    """A real, tiny `caviar tune` on a pseudo-terminal of 80 columns, stdout and stderr both on
    it, as in a terminal window: the screen keeps one progress line, its ETA on it."""
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    argv = [sys.executable, "-m", "caviar.cli.start", "tune", "--storage", "s.db"]
    argv += ["--dataset", "digits", "--train-size", "300", "--trials", "12", "--epochs", "2"]
    argv += ["--population", "4", "--no-report", "--name", "tiny", "--threads", "1"]
    screen = pyte.Screen(COLUMNS, 200)  # tall: nothing scrolls off before it is read
    stream = pyte.ByteStream(screen)
    with pseudo_terminal(rows=200) as (master, slave):
        process = subprocess.Popen(
            argv, cwd=tmp_path, stdin=slave, stdout=slave, stderr=slave, env=env
        )
        written = b""
        while process.poll() is None:
            written += drain(master, timeout=0.5)
        written += drain(master, timeout=0.5)
    assert process.returncode == 0, written.decode(errors="replace")
    stream.feed(written)
    shown = rows_shown(screen)
    progress = [row for row in shown if row.startswith("caviar tiny: ")]
    assert len(progress) == 1, shown
    assert progress[0].startswith("caviar tiny: trials 12/12 done, 0 training"), shown
    assert "ETA 0:00" in progress[0] and len(progress[0]) < COLUMNS
    assert written.count(b"\rcaviar tiny: ") > 1  # redrawn, not printed line after line
