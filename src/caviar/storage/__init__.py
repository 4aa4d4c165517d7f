"""Where studies and panda trees live: for each, an abstract contract, an in-memory reference
and the SQLite default."""

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
from caviar.storage.tree_base import TreeStore
from caviar.storage.tree_memory import InMemoryTreeStore
from caviar.storage.tree_sqlite import SQLiteTreeStore

__all__ = [
    "CorruptRowError",
    "DiskFullError",
    "DuplicateStudyError",
    "DuplicateTrialError",
    "InMemoryStorage",
    "InMemoryTreeStore",
    "SQLiteStorage",
    "SQLiteTreeStore",
    "StaleTrialError",
    "Storage",
    "StorageError",
    "StudyRecord",
    "TreeStore",
    "UnknownStudyError",
    "open_storage",
]
