"""Turn what a user passes as ``storage`` (nothing, a path, a backend) into a backend."""

from __future__ import annotations

import os

from caviar.core.errors import InvalidValue
from caviar.storage.base import Storage
from caviar.storage.memory import InMemoryStorage
from caviar.storage.sqlite import SQLiteStorage

#: the study file when neither the caller, the environment nor a config names one
DEFAULT_STORAGE = "caviar.db"
#: the environment variable naming the study file for every command that takes ``--storage``
STORAGE_VARIABLE = "CAVIAR_STORAGE"


def storage_override(given: str | os.PathLike[str] | None) -> str | None:
    """The study file the user chose over a config's: ``given`` (a flag), else
    ``$CAVIAR_STORAGE`` (unset when empty), else None (the config decides). An empty ``given``
    is refused: it used to fall back to caviar.db without a word."""
    if given is not None and not str(given).strip():
        raise InvalidValue("--storage", f"must name a study file, got {str(given)!r}")
    return str(given) if given is not None else os.environ.get(STORAGE_VARIABLE) or None


def storage_location(given: str | os.PathLike[str] | None, configured: str | None = None) -> str:
    """The study file a command uses: ``given``, else ``$CAVIAR_STORAGE``, else the config's
    ``configured`` one, else :data:`DEFAULT_STORAGE`. The one place this order is stated."""
    return storage_override(given) or configured or DEFAULT_STORAGE


def open_storage(spec: Storage | str | os.PathLike[str] | None) -> Storage:
    """None -> a new in-memory store; a path -> the SQLite file there; a backend -> itself."""
    if spec is None:
        return InMemoryStorage()
    if isinstance(spec, Storage):
        return spec
    if isinstance(spec, str | os.PathLike):
        return SQLiteStorage(spec)
    raise TypeError(f"storage must be None, a path or a Storage, got {spec!r}")
