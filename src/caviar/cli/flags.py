"""argparse types for the commands' numeric flags: a bad value is refused in argparse's one
line, naming the flag, the value and what is allowed."""

from __future__ import annotations

import argparse


def positive(text: str) -> int:
    """An integer >= 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {value}")
    return value


def port(text: str) -> int:
    """A TCP port: 0 (a free one) to 65535 (``--port 70000`` served on 4464, its value modulo
    65536)."""
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(
            f"must be a port in [0, 65535] (0: a free one), got {value}"
        )
    return value
