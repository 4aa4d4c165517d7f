"""Where studies live: an abstract contract, an in-memory reference and the SQLite default."""

from caviar.storage.base import (
    CorruptRowError,
    DiskFullError,
    DuplicateStudyError,
    DuplicateTrialError,
    StaleTrialError,
    Storage,
    StorageError,
    StudyRecord,
    UnknownStudyError,
)
from caviar.storage.memory import InMemoryStorage
from caviar.storage.resolve import open_storage
from caviar.storage.sqlite import SQLiteStorage

__all__ = [
    "CorruptRowError",
    "DiskFullError",
    "DuplicateStudyError",
    "DuplicateTrialError",
    "InMemoryStorage",
    "SQLiteStorage",
    "StaleTrialError",
    "Storage",
    "StorageError",
    "StudyRecord",
    "UnknownStudyError",
    "open_storage",
]
