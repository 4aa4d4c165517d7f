"""A Ctrl-C that lands in a finalizer, where Python swallows exceptions, still stops the command
(caviar.core.interrupts): remembered by the handler, raised again at the next round, and not printed
as an "Exception ignored" traceback."""

from __future__ import annotations

import _thread
import gc
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from caviar.cli.main import main
from caviar.core import interrupts
from caviar.core.records import TrialState
from caviar.search.progress import Progress
from caviar.study import Study


@pytest.fixture(autouse=True)
def nothing_pending() -> Iterator[None]:
    interrupts.handled()
    yield
    interrupts.handled()


class BusyFinalizer:
    """Freed by the garbage collector (a cycle); its __del__ runs Python code until the
    interrupt has been handled, so the SIGINT handler runs inside it."""

    def __init__(self) -> None:
        self.me = self

    def __del__(self) -> None:
        started = time.monotonic()
        while not interrupts._pending and time.monotonic() - started < 10:
            pass


@pytest.mark.slow
def test_an_interrupt_swallowed_in_a_finalizer_is_raised_again_and_not_printed(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    monkeypatch.setattr(sys, "unraisablehook", interrupts.quiet_unraisable(sys.unraisablehook))
    previous = signal.signal(signal.SIGINT, interrupts.handler)
    try:
        threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT)).start()
        BusyFinalizer()
        gc.collect()  # the interrupt lands in __del__: Python swallows it, the run goes on
        assert interrupts._pending
        with pytest.raises(KeyboardInterrupt):
            interrupts.raise_pending()
    finally:
        signal.signal(signal.SIGINT, previous)
    assert "Exception ignored" not in capsys.readouterr().err


def test_the_quiet_hook_passes_on_everything_else() -> None:
    seen: list[object] = []
    quiet = interrupts.quiet_unraisable(seen.append)
    other = SimpleNamespace(exc_value=ValueError("x"))
    interrupt = SimpleNamespace(exc_value=KeyboardInterrupt())
    quiet(other)
    quiet(interrupt)  # nothing pending: an interrupt from elsewhere is shown as before
    assert seen == [other, interrupt]
    interrupts._pending = True
    quiet(interrupt)
    quiet(other)
    assert seen == [other, interrupt, other]


def test_a_swallowed_interrupt_stops_the_run_at_the_next_round(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """As if the handler had run in a finalizer during the first round: the command ends with
    130 at the next round, the unfinished trials back in the queue; the same command then
    finishes the study."""
    told = Progress.epochs_done

    def swallowed(self: Progress, model_epochs: int, running: int) -> None:
        told(self, model_epochs, running)
        interrupts._pending = True  # what interrupts.handler leaves behind

    monkeypatch.setattr(Progress, "epochs_done", swallowed)
    db = tmp_path / "s.db"
    argv = [
        "tune",
        "--storage",
        str(db),
        "--name",
        "s",
        "--trials",
        "6",
        "--epochs",
        "3",
        "--quiet",
    ]
    assert main([*argv, "--no-report"]) == 130
    assert "caviar: interrupted; run the same command again to continue" in capsys.readouterr().err
    assert not interrupts._pending  # handled
    study = Study.load("s", db)
    states = [t.state for t in study.trials(curves=False)]
    study.close()
    assert TrialState.COMPLETE not in states and TrialState.RUNNING not in states
    monkeypatch.setattr(Progress, "epochs_done", told)
    assert main([*argv, "--no-report"]) == 0
    study = Study.load("s", db)
    assert [t.state for t in study.trials(curves=False)] == [TrialState.COMPLETE] * 6
    study.close()


#: what caviar says when a SIGINT comes while this process cannot start a thread: a library
#: (OpenBLAS) failed to start its threads and raised SIGINT itself
NO_THREAD = (
    "caviar: error: this process cannot start another thread (can't start new thread): it is "
    "at the system's limit of threads or memory (ulimit -u, ulimit -v), and a library stopped "
    "when it could not start its own"
)


def no_thread_can_start(monkeypatch: pytest.MonkeyPatch) -> None:
    """Starting a thread fails as Python says it does at the system's limit."""

    def refused(*args: object) -> int:
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(_thread, "start_new_thread", refused)


def test_a_thread_starts_here_so_an_interrupt_is_a_ctrl_c() -> None:
    assert interrupts.thread_failure() is None


def test_a_thread_failure_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    no_thread_can_start(monkeypatch)
    assert f"caviar: error: {interrupts.thread_failure()}" == NO_THREAD


@pytest.mark.parametrize(
    ("threads_start", "status", "line"),
    [
        (True, 130, "caviar: interrupted before anything started"),
        (False, 75, f"{NO_THREAD}; nothing has started yet"),
    ],
)
def test_an_interrupt_while_starting_is_a_ctrl_c_only_while_threads_start(
    threads_start: bool,
    status: int,
    line: str,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if not threads_start:
        no_thread_can_start(monkeypatch)

    def leave(code: int) -> None:
        raise SystemExit(code)

    monkeypatch.setattr(os, "_exit", leave)
    with pytest.raises(SystemExit) as left:
        interrupts.interrupted_while_starting(signal.SIGINT, None)
    assert left.value.code == status
    assert capfd.readouterr().err.strip() == line


@pytest.mark.slow
def test_a_sigint_from_a_library_that_could_not_start_its_threads_is_not_an_interruption(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """As OpenBLAS does when pthread_create fails (it prints, then raises SIGINT), during the
    first round: the command says the thread failure in one line with status 75, never
    "interrupted"; the unfinished trials are back in the queue, and the same command then
    finishes the study."""
    told = Progress.epochs_done

    def thread_failure_in_a_library(self: Progress, model_epochs: int, running: int) -> None:
        told(self, model_epochs, running)
        no_thread_can_start(monkeypatch)
        signal.raise_signal(signal.SIGINT)

    monkeypatch.setattr(Progress, "epochs_done", thread_failure_in_a_library)
    db = tmp_path / "s.db"
    argv = ["tune", "--storage", str(db), "--name", "s", "--trials", "4", "--epochs", "2"]
    assert main([*argv, "--quiet", "--no-report"]) == 75
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1] == (
        f"{NO_THREAD}; the finished trials are kept: run the same command again to continue"
    )
    assert "interrupted" not in err
    study = Study.load("s", db)
    states = [t.state for t in study.trials(curves=False)]
    study.close()
    assert TrialState.COMPLETE not in states and TrialState.RUNNING not in states
    monkeypatch.undo()
    assert main([*argv, "--quiet", "--no-report"]) == 0
    study = Study.load("s", db)
    assert [t.state for t in study.trials(curves=False)] == [TrialState.COMPLETE] * 4
    study.close()
