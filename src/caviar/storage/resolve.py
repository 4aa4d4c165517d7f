"""Turn what a user passes as ``storage`` (nothing, a path, a backend) into a backend."""

from __future__ import annotations

import os

from caviar.storage.base import Storage
from caviar.storage.memory import InMemoryStorage
from caviar.storage.sqlite import SQLiteStorage


def open_storage(spec: Storage | str | os.PathLike[str] | None) -> Storage:
    """None -> a new in-memory store; a path -> the SQLite file there; a backend -> itself."""
    if spec is None:
        return InMemoryStorage()
    if isinstance(spec, Storage):
        return spec
    if isinstance(spec, str | os.PathLike):
        return SQLiteStorage(spec)
    raise TypeError(f"storage must be None, a path or a Storage, got {spec!r}")
