"""Panda runs as ``caviar show`` and ``caviar studies`` list them: read-only, nothing written."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

from caviar.panda.tree import PandaTree


@dataclass(frozen=True)
class BranchSummary:
    """A branch in one line: where it grew from, how far it got, its last validation accuracy."""

    id: int
    parent: int | None
    from_epoch: int | None
    mode: str | None
    epochs: int  # the last epoch it reached, counted from the root
    val_accuracy: float | None  # at that epoch (None before its first, or not computed)

    def describe(self) -> str:
        origin = (
            "root"
            if self.parent is None
            else (f"from branch {self.parent} at epoch {self.from_epoch} ({self.mode})")
        )
        accuracy = "" if self.val_accuracy is None else f", val acc {self.val_accuracy:.4f}"
        return f"branch {self.id}: {origin}, epoch {self.epochs}{accuracy}"


@dataclass(frozen=True)
class RunSummary:
    """A panda run: its name, status, where it is and its branches."""

    name: str
    status: str
    branch: int
    created: float
    source: str  # "config" or "STUDY:TRIAL"
    branches: tuple[BranchSummary, ...]
    dropped: int  # snapshots retention dropped

    def describe(self) -> list[str]:
        """Lines for a terminal: the run, then one per branch."""
        head = (
            f"panda run {self.name!r} ({self.status}, from {self.source}): "
            f"{len(self.branches)} branch{'es' if len(self.branches) != 1 else ''}, "
            f"training branch {self.branch}"
        )
        if self.dropped:
            head += f", {self.dropped} snapshots dropped for the disk budget"
        return [head, *(f"  {b.describe()}" for b in self.branches)]


def list_runs(storage: str | os.PathLike[str]) -> list[RunSummary]:
    """Every panda run in the study file ``storage`` (none if the file has no panda tables or
    does not exist), read without writing a byte."""
    if not Path(storage).is_file():
        return []
    tree = PandaTree(storage, read_only=True)
    try:
        out = []
        with tree.read():
            for name in tree.run_names():
                run = tree.run(name)
                curves = tree.curves(run.run_id)
                start = tree.first_snapshot(run.run_id)
                branches = []
                for b in tree.branches(run.run_id):
                    points = curves.get(b.id, [])
                    last = points[-1].record if points else None
                    accuracy = None if last is None else last.val_accuracy
                    branches.append(
                        BranchSummary(
                            b.id,
                            b.parent,
                            b.from_epoch,
                            b.mode,
                            last.epoch if last else (b.from_epoch or start),
                            accuracy if accuracy is not None and math.isfinite(accuracy) else None,
                        )
                    )
                source = run.source
                where = (
                    f"{source['study']}:{source['trial']}"
                    if source.get("kind") == "trial"
                    else "config"
                )
                out.append(
                    RunSummary(
                        run.name,
                        run.status,
                        run.branch,
                        run.created,
                        where,
                        tuple(branches),
                        len(tree.dropped(run.run_id)),
                    )
                )
        return out
    finally:
        tree.close()
