"""``caviar dashboard STUDY``: the study's report page, live, on 127.0.0.1.

Serves the report of a finished or running study from any process, reading the study file
only, and redraws it within a second of each trial told; a trial's "babysit this one" starts
``caviar panda --from STUDY:TRIAL`` for it. Every request needs the token in the printed URL.
Ctrl-C ends it (or --timeout).
"""

from __future__ import annotations

import argparse
import threading
import webbrowser
from typing import Any

from caviar.cli.flags import port
from caviar.cli.study_file import add_storage_flag, storage_path


def add_parser(sub: Any) -> None:
    c = sub.add_parser(
        "dashboard",
        help="the study's report, live in the browser as trials finish",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
    )
    c.add_argument("study", help="study name")
    add_storage_flag(c)
    c.add_argument("--port", type=port, default=0, help="the page's port (default: a free one)")
    c.add_argument(
        "--timeout",
        type=seconds,
        help="stop serving after SECONDS (default: until Ctrl-C)",
    )
    c.add_argument(
        "--open",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="open the page in a browser (default: print its URL only)",
    )
    # None: it starts light, without torch (a dashboard trains nothing, and babysitting
    # starts a process of its own); the server and the report load in run()
    c.set_defaults(run=run, imports=None)


def run(args: argparse.Namespace) -> int:
    from caviar.dashboard.server import serve_study  # deferred: starlette, numpy, plotly

    dashboard = serve_study(args.study, storage_path(args), port=args.port)
    print(
        f"caviar dashboard: study {args.study!r} in {storage_path(args)}; open {dashboard.url}",
        flush=True,
    )
    if args.open:
        webbrowser.open(dashboard.url)
    try:
        threading.Event().wait(args.timeout)  # until Ctrl-C, or the time given
        print(f"caviar dashboard: stopped after {args.timeout:g} s", flush=True)
    except KeyboardInterrupt:
        print("\ncaviar dashboard: stopped", flush=True)
    finally:
        dashboard.close()
    return 0


def seconds(text: str) -> float:
    """A number of seconds > 0."""
    value = float(text)
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number of seconds > 0, got {text}")
    return value
