"""The panda tree as the trainer, the controls and the listing see it: a tree store
(:mod:`caviar.storage.tree_base`) whose snapshots are :class:`~caviar.nn.MemberState`.

A store keeps a snapshot as bytes it never looks inside; here they are made and read back:
``torch.save`` of tensors and plain values, read with ``weights_only=True``, so nothing else is
ever unpickled. Everything else is the store's, unchanged: runs, branches, commands, curves,
versions, retention under the run's disk budget (:mod:`caviar.storage.tree_retention`).

Only reading a snapshot back needs torch, so the controls (``caviar panda set``), which never do,
open a tree without it.
"""

from __future__ import annotations

import os
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from caviar.storage.tree_base import AppliedCommand, NewCommand, TreeStore
from caviar.storage.tree_rows import Branch, Command, RunRow, Snapshot, StoredEpoch
from caviar.storage.tree_sqlite import SQLiteTreeStore

if TYPE_CHECKING:
    from caviar.nn.state import MemberState


def snapshot_of(state: MemberState) -> Snapshot:
    """The snapshot a store keeps of ``state``."""
    return Snapshot(state.epoch, state.spec.to_dict(), state.to_bytes())


class PandaTree:
    """The panda runs of ``store``: a tree store, or the path of a study file (opened as a
    :class:`SQLiteTreeStore`, ``read_only`` and with ``timeout`` for its locks)."""

    def __init__(
        self,
        store: TreeStore | str | os.PathLike[str],
        *,
        timeout: float = 60.0,
        read_only: bool = False,
    ) -> None:
        if not isinstance(store, TreeStore):
            store = SQLiteTreeStore(store, timeout=timeout, read_only=read_only)
        self.store = store
        self.where = store.where

    def read(self) -> AbstractContextManager[None]:
        """A read: the calls inside it see one state of the store (a read inside a read
        shares it)."""
        return self.store.read()

    def close(self) -> None:
        self.store.close()

    # -- what the store keeps as bytes -------------------------------------------------------
    def create_run(
        self,
        name: str,
        *,
        config: dict[str, Any],
        spec: dict[str, Any],
        source: dict[str, Any],
        budget: int,
        first: MemberState,
    ) -> RunRow:
        """A new run with its root branch 0 and the root's first snapshot (``first``)."""
        return self.store.create_run(
            name, config=config, spec=spec, source=source, budget=budget, first=snapshot_of(first)
        )

    def add_epoch(self, run_id: int, branch: int, point: StoredEpoch, state: MemberState) -> None:
        """An epoch's record and the full state after it, with the snapshots beyond the run's
        budget dropped, in one change."""
        self.store.add_epoch(run_id, branch, point, snapshot_of(state))

    def snapshot(self, run_id: int, branch: int, epoch: int) -> MemberState:
        """The state stored on ``branch`` after ``epoch`` (an InvalidValue if there is none)."""
        from caviar.nn.state import MemberState  # deferred: torch, which the controls never need

        return MemberState.from_bytes(self.store.snapshot(run_id, branch, epoch))

    # -- the rest is the store's -------------------------------------------------------------
    def run(self, name: str) -> RunRow:
        return self.store.run(name)

    def run_names(self) -> list[str]:
        return self.store.run_names()

    def version(self, run_id: int) -> int:
        return self.store.version(run_id)

    def branches(self, run_id: int) -> list[Branch]:
        return self.store.branches(run_id)

    def add_branch(
        self, run_id: int, *, parent: int, from_epoch: int, mode: str, current: int
    ) -> int:
        return self.store.add_branch(
            run_id, parent=parent, from_epoch=from_epoch, mode=mode, current=current
        )

    def add_commands(self, run_id: int, rows: list[NewCommand]) -> list[int]:
        return self.store.add_commands(run_id, rows)

    def commands(self, run_id: int, *, pending: bool = False) -> list[Command]:
        return self.store.commands(run_id, pending=pending)

    def boundary(
        self,
        run_id: int,
        applied: list[AppliedCommand],
        *,
        status: str,
        branch: int,
        spec: dict[str, Any],
    ) -> None:
        self.store.boundary(run_id, applied, status=status, branch=branch, spec=spec)

    def last_epoch(self, run_id: int, branch: int) -> int | None:
        return self.store.last_epoch(run_id, branch)

    def curves(self, run_id: int) -> dict[int, list[StoredEpoch]]:
        return self.store.curves(run_id)

    def first_snapshot(self, run_id: int) -> int:
        return self.store.first_snapshot(run_id)

    def snapshot_epochs(self, run_id: int) -> dict[int, list[int]]:
        return self.store.snapshot_epochs(run_id)

    def dropped(self, run_id: int) -> list[dict[str, Any]]:
        return self.store.dropped(run_id)
