"""The ``caviar`` console script: Ctrl-C is harmless from its first instant.

Until the command runs (:mod:`caviar.cli.main` hands SIGINT back to Python then), Ctrl-C exits
at once with one line (:func:`~caviar.core.interrupts.interrupted_while_starting`).
"""

import signal

from caviar.core.interrupts import interrupted_while_starting


def main() -> int:
    signal.signal(signal.SIGINT, interrupted_while_starting)
    # deferred: the handler must be in place before the command's numpy and torch load
    from caviar.cli.main import main as run

    return run()


if __name__ == "__main__":
    raise SystemExit(main())
