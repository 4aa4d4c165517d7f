"""The ``caviar`` command: one parser over the command modules, one way to end.

Every command ends the same way, each failure in one line on stderr:

- 0, or the command's own status;
- 2: a mistake, naming the key or flag, what it allows and the bad value
  (``caviar: error: study.threads: must be at most 2, the cores this process may run on, got
  1000000``); nothing was run or written;
- 75 (EX_TEMPFAIL): the run stopped for a reason outside its config (its worker processes died
  or could not start, or no thread could be started); the finished trials are kept, the
  unfinished ones back in the queue, and the same command continues the study
  (:class:`~caviar.core.errors.RunStopped`);
- 130: Ctrl-C, with the study in order (a SIGINT while no thread can start is the failure of
  a library, see :func:`caviar.core.interrupts.thread_failure`: status 75);
- a closed pipe quietly (0).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import re
import signal
import sqlite3
import sys
import warnings
from collections.abc import Iterator, Sequence
from typing import Any, NoReturn

from caviar.cli import dashboard, experiment, export, panda, report, show, studies, test, tune
from caviar.cli.output import os_reason
from caviar.core import interrupts
from caviar.core.errors import InvalidValue, RunStopped
from caviar.core.suggest import did_you_mean

#: the command modules, in the order ``caviar --help`` lists them
COMMANDS = (tune, show, report, dashboard, test, export, panda, experiment, studies)


def parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="caviar",
        description="Tune deep nets the way the textbooks teach it, many models at once.",
    )
    sub = p.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.add_parser(sub)
    return p


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors, like every other error of the command."""

    def error(self, message: str) -> NoReturn:
        hint = self._suggestion(message)
        print(f"caviar: error: {message}{hint} (see `{self.prog} --help`)", file=sys.stderr)
        raise SystemExit(2)

    def _suggestion(self, message: str) -> str:
        """A mistyped flag (``--trails``) or command (``tunee``): the nearest that exists."""
        unrecognized = re.match(r"unrecognized arguments: (-\S+)", message)
        if unrecognized:
            return did_you_mean(unrecognized[1].split("=")[0], self._options())
        choice = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)$", message)
        if choice:
            return did_you_mean(choice[1], re.findall(r"'([^']*)'", choice[2]))
        return ""

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: Any = None
    ) -> tuple[argparse.Namespace, list[str]]:
        self._given = list(sys.argv[1:] if args is None else args)
        return super().parse_known_args(args, namespace)

    def _options(self) -> list[str]:
        """The option strings of this parser and of the command given (``tune``'s for
        ``caviar tune --trails``; every command's when none was)."""
        out: list[str] = []
        given = getattr(self, "_given", [])
        for action in self._actions:
            out += action.option_strings
            if isinstance(action, argparse._SubParsersAction):
                named = [action.choices[w] for w in given if w in action.choices][:1]
                for command in named or action.choices.values():
                    out += command._options() if isinstance(command, _Parser) else []
        return out


@contextlib.contextmanager
def _quiet_interrupts() -> Iterator[None]:
    """While the command starts (parsing, importing torch), Ctrl-C exits at once with one line
    (see :mod:`caviar.cli.start`); afterwards it raises KeyboardInterrupt, which the command
    handles (unfinished trials go back to the queue). In the console script the interrupt is
    also remembered, so one swallowed in a finalizer still stops the run (see
    :mod:`caviar.core.interrupts`); called from Python, the caller's handler comes back."""
    try:
        previous = signal.signal(signal.SIGINT, interrupts.interrupted_while_starting)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        console = previous is interrupts.interrupted_while_starting or previous is None
        signal.signal(signal.SIGINT, interrupts.handler if console else previous)
        if console:
            sys.unraisablehook = interrupts.quiet_unraisable(sys.unraisablehook)


#: how a stopped run's line ends: nothing finished is lost, and how to go on
CONTINUE = "the finished trials are kept: run the same command again to continue"


def _show_warning(message: Any, category: Any, *args: Any, **kwargs: Any) -> None:
    print(f"caviar: warning: {message}", file=sys.stderr)


#: the rooms every command loads before it runs (their errors end it in one line), unless it
#: starts light
ROOMS = ("caviar.data", "caviar.models.evaluate", "caviar.storage")


def _rooms(args: argparse.Namespace) -> tuple[str, ...]:
    """The modules to load before the command runs: :data:`ROOMS` and the command's own
    ``imports`` (a tuple, or a function of the arguments giving one), or nothing when that
    function gives None (a command that starts light: ``caviar panda set``, without torch)."""
    imports = args.imports(args) if callable(args.imports) else args.imports
    return () if imports is None else (*ROOMS, *imports)


def _one_line_errors() -> tuple[type[BaseException], ...]:
    """The errors that end a command in one line with status 2: a mistake, a file that cannot
    serve; those of torch's and numpy's rooms only where the command loaded them (it cannot
    raise them otherwise)."""
    from caviar.storage.base import StorageError  # deferred: sqlite3 and the store's rows

    errors: list[type[BaseException]] = [InvalidValue, StorageError, sqlite3.Error]
    for module, name in (
        ("caviar.models.evaluate", "TestSetUsed"),
        ("caviar.data", "DownloadError"),
    ):
        if module in sys.modules:
            errors.append(getattr(sys.modules[module], name))
    return tuple(errors)


def main(argv: Sequence[str] | None = None) -> int:
    with _quiet_interrupts():
        args = parser().parse_args(argv)
        for module in _rooms(args):
            importlib.import_module(module)  # torch and numpy load while Ctrl-C is harmless
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning  # one line each, not Python's two
            code = int(args.run(args))
        interrupts.raise_pending()  # a Ctrl-C swallowed after the last round still counts
        return code
    except _one_line_errors() as e:
        message = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
        # one line, whatever a key or a path holds
        print(f"caviar: error: {message}".replace("\n", "\\n"), file=sys.stderr)
        return 2
    except RunStopped as e:  # the workers lost: the loop has put the study in order
        print(f"caviar: error: {e}; {CONTINUE}".replace("\n", "\\n"), file=sys.stderr)
        return RunStopped.exit_status
    except KeyboardInterrupt:
        interrupts.handled()
        failure = interrupts.thread_failure()
        if failure is not None:  # a library's own SIGINT, not a Ctrl-C
            print(f"caviar: error: {failure}; {CONTINUE}", file=sys.stderr)
            return RunStopped.exit_status
        print("\ncaviar: interrupted; run the same command again to continue", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `caviar show ... | head`: the reader left, nothing is wrong
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as e:  # a folder or file the command needed: say which and why
        print(f"caviar: error: {os_reason(e)}".replace("\n", "\\n"), file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
