"""The ``caviar`` console script: Ctrl-C is harmless from its first instant.

An interrupt that lands while Python imports numpy or torch leaves a traceback, a misleading
``ImportError`` or a C++ ``terminate``. Until the command runs (:mod:`caviar.cli` hands SIGINT
back to Python then), Ctrl-C exits at once with one line; nothing has been written yet.
"""

import os
import signal


def interrupted_while_starting(signum: int, frame: object) -> None:
    """SIGINT before the command runs: one line, exit status 130, no traceback."""
    os.write(2, b"\ncaviar: interrupted before anything started\n")
    os._exit(130)


def main() -> int:
    signal.signal(signal.SIGINT, interrupted_while_starting)
    from caviar.cli import main as run

    return run()


if __name__ == "__main__":
    raise SystemExit(main())
