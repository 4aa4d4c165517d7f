"""Ctrl-C once the ``caviar`` command runs: a KeyboardInterrupt at once, and remembered.

Python swallows an exception raised in a finalizer (a ``__del__``, a weakref callback, a
generator the garbage collector closes): it prints "Exception ignored in ..." and goes on. A
Ctrl-C whose handler happens to run there is lost, and the run goes on to its end (seen in CI:
the demo, interrupted 1.5 s after its start, trained all 96 trials and exited 0). So
:func:`handler` also remembers the interrupt: the search loop calls :func:`raise_pending` at
every round and the command when it ends, and the unraisable hook (:func:`quiet_unraisable`)
does not print an interrupt that will be raised again there.

Before the command runs, :func:`interrupted_while_starting` holds SIGINT instead: an interrupt
that lands while Python imports numpy or torch leaves a traceback, a misleading ``ImportError``
or a C++ ``terminate``, so until then Ctrl-C exits at once with one line (nothing has been
written yet).

Only a Ctrl-C is reported as one. Python's handler is not told who sent a SIGINT, and a library
that fails to start its threads may send one itself: OpenBLAS prints ``pthread_create failed``
and raises SIGINT to stop the process (seen with ``study.threads = 1000000``: "interrupted",
then SIGSEGV). Such a failure leaves the process at its limit of threads, which a Ctrl-C does
not, so an interrupt is first checked with :func:`thread_failure`: while no thread can start,
it is reported as that failure (exit status 75), never as an interruption.

Only the console script installs the handlers; a Python program keeps its own.
"""

from __future__ import annotations

import _thread
import os
from collections.abc import Callable
from types import FrameType
from typing import Any

from caviar.core.errors import RunStopped

_pending = False  # a Ctrl-C came that no caller has handled yet


def _nothing() -> None:
    """A thread's whole work: to have started."""


def thread_failure() -> str | None:
    """Why this process cannot start a thread now, in one line, or None if it can (see the
    module's docstring)."""
    try:
        _thread.start_new_thread(_nothing, ())
    except RuntimeError as e:  # Python's own words: "can't start new thread"
        return (
            f"this process cannot start another thread ({e}): it is at the system's limit of "
            "threads or memory (ulimit -u, ulimit -v), and a library stopped when it could not "
            "start its own"
        )
    return None


def interrupted_while_starting(signum: int, frame: object) -> None:
    """SIGINT before the command runs: one line, exit status 130 (75 where it is a library's
    thread failure), no traceback."""
    failure = thread_failure()
    if failure is not None:
        os.write(2, f"caviar: error: {failure}; nothing has started yet\n".encode())
        os._exit(RunStopped.exit_status)
    os.write(2, b"\ncaviar: interrupted before anything started\n")
    os._exit(130)


def handler(signum: int, frame: FrameType | None) -> None:
    """SIGINT: remember it, then raise KeyboardInterrupt where the program is."""
    global _pending
    _pending = True
    raise KeyboardInterrupt


def raise_pending() -> None:
    """A KeyboardInterrupt if a Ctrl-C came and was swallowed where it landed."""
    if _pending:
        raise KeyboardInterrupt


def handled() -> None:
    """The interrupt reached the command, which has put the study in order."""
    global _pending
    _pending = False


def quiet_unraisable(hook: Callable[[Any], object]) -> Callable[[Any], object]:
    """``hook`` (a ``sys.unraisablehook``), silent about a remembered interrupt swallowed in a
    finalizer: it is raised again at the next round, without a traceback."""

    def quiet(unraisable: Any) -> object:
        if _pending and isinstance(unraisable.exc_value, KeyboardInterrupt):
            return None
        return hook(unraisable)

    return quiet
