"""SQLite's errors in the words a user can act on.

A full disk reaches SQLite as ``SQLITE_FULL`` ("database or disk is full") or, when the file
system refuses a write half-way, as an I/O error ("disk I/O error"). The second has other causes
too (a failing disk, a network file system), so it counts as a full disk only when the folder has
almost no space left. Either way the failed write was one transaction and SQLite rolls it back
whole, so what was stored before is intact: the message says so, and how to go on.
"""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from caviar.storage.base import DiskFullError

#: below this much free space, an I/O error on a write is taken for a full disk: a write that
#: fails for want of space leaves less than a few WAL frames free
LOW_SPACE = 4 * 2**20

_FULL = 13  # SQLITE_FULL
_IOERR = 10  # SQLITE_IOERR (its extended codes share the low byte)


def _code(error: sqlite3.Error) -> int | None:
    code = getattr(error, "sqlite_errorcode", None)
    return None if code is None else code & 0xFF


def _free_bytes(folder: Path) -> int | None:
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def disk_full(error: sqlite3.Error, path: Path) -> DiskFullError | None:
    """The DiskFullError that ``error`` stands for, or None if it is not about space."""
    text = str(error)
    if _code(error) == _FULL or "database or disk is full" in text:
        free = _free_bytes(path.parent)
    elif _code(error) == _IOERR or "disk I/O error" in text:
        free = _free_bytes(path.parent)
        if free is None or free >= LOW_SPACE:
            return None
    else:
        return None
    left = "" if free is None else f" ({free / 2**20:.1f} MiB free)"
    return DiskFullError(
        f"the disk holding {path} is full: this change was not stored, and nothing stored "
        f"before it was lost (each change is one SQLite transaction, stored whole or not at "
        f"all){left}; free some space and run the same command again to continue"
    )


@contextmanager
def translated(path: Path) -> Iterator[None]:
    """Raise a full disk under ``path`` as a DiskFullError; other errors pass unchanged."""
    try:
        yield
    except sqlite3.OperationalError as e:
        full = disk_full(e, path)
        if full is None:
            raise
        raise full from e
