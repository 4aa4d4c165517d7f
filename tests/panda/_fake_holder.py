"""A panda run's lock row as another trainer would have written it (see caviar.panda.lock)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from caviar.panda import lock

#: when the fake holder took its run
SINCE = time.mktime((2026, 12, 7, 17, 20, 1, 0, 0, -1))


def fake_holder(
    study: Path,
    *,
    run: str = "sit",
    host: str = "elsewhere",
    pid: int = 4242,
    heartbeat: float | None = None,
    address: str | None = "http://10.0.0.7:8000/",
) -> str:
    """Write the row (a fresh heartbeat unless given); what its holder reads as in messages."""
    with sqlite3.connect(study) as db:
        db.execute(lock._TABLE)
        db.execute(
            "INSERT OR REPLACE INTO panda_trainers VALUES (?, ?, ?, 'theirs', ?, ?, ?)",
            (run, host, pid, SINCE, time.time() if heartbeat is None else heartbeat, address),
        )
    db.close()
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(SINCE))
    page = f", page {address}" if address else ""
    return f"host {host}, pid {pid}, since {since}{page}"


def dead_pid() -> int:
    """The id of a process of this host that has ended."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid
