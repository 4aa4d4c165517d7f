"""The tree-store contract: where a panda run's tree lives, tested by one suite on every backend.

A panda run babysits one model; its tree holds the run, its branches (the root and one per
rollback), the commands given to it, the curve of every branch and the snapshots (the model's
whole state after an epoch) it can return to.

Contract
--------
1. Runs are identified by name. ``create_run`` with a name taken raises :class:`InvalidValue`
   and changes nothing; ``run`` with a name not there raises :class:`InvalidValue` naming the
   runs there are. ``run_names`` lists runs in the order they were created. A ``run_id`` given
   to the other calls is one that ``create_run`` or ``run`` returned.
2. A new run has version 1, status ``"running"``, trains branch 0, and holds its root branch 0
   (no parent, the run's spec) and the root's first snapshot. Every later write
   (``add_commands``, ``add_branch``, ``boundary``, ``add_epoch``) is one atomic change that
   bumps the run's version by exactly one, so a reader anywhere sees that something changed by
   polling ``version``; reads never change it.
3. Branches are numbered 0, 1, 2, ... in the order they grew. ``add_branch`` grows one from a
   stored snapshot ``(parent, from_epoch)``, trains with that snapshot's spec, and records the
   rollback command that switches to it (``branch``/``epoch``: where it returns to, ``old``:
   the branch trained before, ``new``: the new branch). Without that snapshot (never stored,
   or dropped) it raises :class:`InvalidValue` and changes nothing.
4. Commands come back in the order they were given; their ids are unique in the store and grow
   in that order. They are pending until ``boundary`` marks them applied, with the boundary
   epoch and the value they replaced there, in the same change that sets the run's status, the
   branch it trains and that branch's spec.
5. ``add_epoch`` stores a branch's point and the snapshot after it (an epoch stored again
   replaces both), then drops snapshots beyond the run's disk budget by the rule of
   :mod:`caviar.storage.tree_retention`, in one change. ``dropped`` lists what retention
   dropped, in the order it went.
6. Reads are sorted: branches by id, ``curves`` by branch then epoch, ``snapshot_epochs`` by
   branch then epoch. ``snapshot`` returns the bytes as they were given, or raises
   :class:`InvalidValue` when there is no snapshot at that place.
7. Values pass through JSON, as in SQLite: config, spec, source and command values come back as
   JSON values (a tuple as a list), a value JSON cannot hold (NaN) is a ``ValueError`` that
   writes nothing, and a curve value that is not finite reads back as NaN. What a store hands
   out is the caller's to change: the store does not change with it.
8. Calls inside one ``with store.read():`` see one state of the store while other threads or
   processes write; a read inside a read shares it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from contextlib import AbstractContextManager
from typing import Any

from caviar.core.errors import InvalidValue
from caviar.storage.tree_rows import Branch, Command, RunRow, Snapshot, StoredEpoch

#: a command as given: ``(branch, epoch, key, old, new)``
NewCommand = tuple[int, int, str, Any, Any]
#: a command as applied at a boundary: ``(command id, boundary epoch, the value it replaced)``
AppliedCommand = tuple[int, int, Any]


class TreeStore(ABC):
    """The panda runs of one store. See the module docstring for the contract."""

    #: where the runs live, for messages: the file's path, or ``"memory"``
    where: str

    # -- runs --------------------------------------------------------------------------------
    @abstractmethod
    def create_run(
        self,
        name: str,
        *,
        config: dict[str, Any],
        spec: dict[str, Any],
        source: dict[str, Any],
        budget: int,
        first: Snapshot,
    ) -> RunRow:
        """A new run with its root branch 0 and the root's first snapshot ``first``; ``budget``:
        the bytes of snapshots it keeps at most (contract, points 1, 2 and 5)."""

    @abstractmethod
    def run(self, name: str) -> RunRow:
        """The run called ``name`` (contract, point 1)."""

    @abstractmethod
    def run_names(self) -> list[str]:
        """Every run's name, in the order they were created."""

    @abstractmethod
    def version(self, run_id: int) -> int:
        """How many times the run was written, its creation included (contract, point 2)."""

    # -- branches and commands ---------------------------------------------------------------
    @abstractmethod
    def branches(self, run_id: int) -> list[Branch]:
        """The run's branches, by id."""

    @abstractmethod
    def add_branch(
        self, run_id: int, *, parent: int, from_epoch: int, mode: str, current: int
    ) -> int:
        """A new branch from ``parent``'s snapshot at ``from_epoch`` in ``mode``, and the
        rollback command that switches to it from branch ``current``; the new branch's id
        (contract, point 3)."""

    @abstractmethod
    def add_commands(self, run_id: int, rows: list[NewCommand]) -> list[int]:
        """Record commands ``(branch, epoch, key, old, new)`` in one change; their ids."""

    @abstractmethod
    def commands(self, run_id: int, *, pending: bool = False) -> list[Command]:
        """Every command in the order it was given (only those not applied, with ``pending``)."""

    @abstractmethod
    def boundary(
        self,
        run_id: int,
        applied: list[AppliedCommand],
        *,
        status: str,
        branch: int,
        spec: dict[str, Any],
    ) -> None:
        """What the trainer did at an epoch boundary, in one change: commands ``(id, epoch,
        old)`` applied, the run's status, the branch it trains and that branch's spec."""

    # -- epochs and snapshots ----------------------------------------------------------------
    @abstractmethod
    def add_epoch(self, run_id: int, branch: int, point: StoredEpoch, snapshot: Snapshot) -> None:
        """A point of ``branch``'s curve and the snapshot after it, stored at ``point.time``,
        with the snapshots beyond the run's budget dropped, in one change (contract, point 5)."""

    @abstractmethod
    def last_epoch(self, run_id: int, branch: int) -> int | None:
        """The last epoch of ``branch``'s curve (None before its first)."""

    @abstractmethod
    def curves(self, run_id: int) -> dict[int, list[StoredEpoch]]:
        """Every branch's stored points, by branch then epoch (a branch with none is absent)."""

    @abstractmethod
    def first_snapshot(self, run_id: int) -> int:
        """The epoch of the root's first snapshot, where the run started (0 from scratch)."""

    @abstractmethod
    def snapshot_epochs(self, run_id: int) -> dict[int, list[int]]:
        """The epochs each branch has a snapshot of, by branch then epoch."""

    @abstractmethod
    def snapshot(self, run_id: int, branch: int, epoch: int) -> bytes:
        """The snapshot's bytes on ``branch`` at ``epoch`` (contract, point 6)."""

    @abstractmethod
    def dropped(self, run_id: int) -> list[dict[str, Any]]:
        """Snapshots retention dropped, ``{"branch", "epoch", "bytes", "time"}``, in the order
        they went (``time``: when)."""

    # -- transactions ------------------------------------------------------------------------
    @abstractmethod
    def read(self) -> AbstractContextManager[None]:
        """A read: the calls inside it see one state of the store (contract, point 8)."""

    def close(self) -> None:  # noqa: B027 -- optional for backends without resources
        """Release files and connections."""


def no_run(name: str, where: str, names: list[str]) -> InvalidValue:
    """The error for a run name not in the store."""
    return InvalidValue("panda", f"no run {name!r} in {where}; runs: {names}")


def run_exists(name: str, where: str) -> InvalidValue:
    """The error for creating a run under a name taken."""
    return InvalidValue("panda", f"a run {name!r} exists already in {where}; give another name")


def no_snapshot(branch: int, epoch: int) -> InvalidValue:
    """The error for a snapshot that is not there (never stored, or dropped)."""
    return InvalidValue("rollback", f"branch {branch} has no snapshot at epoch {epoch}")
