"""The controls of a panda run (:class:`caviar.panda.control_api.Controller`), over its store.

A control checks what it is given and records a command; it never touches the model. It reads
and writes only the study file, so it works in the trainer's process (the page's server) and in
any other (``caviar panda set``), and :meth:`PandaController.state` shows the whole history after
a restart. ``wait`` wakes at once for changes made in this process and notices others' changes
within ``poll`` seconds (every write bumps the run's version in the store).

It imports no torch (:mod:`caviar.nn.spec` needs none), so ``caviar panda set``
starts in a fraction of a second.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping
from typing import Any

from caviar.core.constraints import one_of
from caviar.core.errors import InvalidValue, got
from caviar.nn.spec import HYPERPARAMETERS, MID_RUN, MemberSpec  # no torch: see caviar.nn
from caviar.panda.control_api import DEFAULT_ROLLBACK_MODE, ROLLBACK_EPOCH, ROLLBACK_MODE
from caviar.panda.tree import PandaTree
from caviar.storage.tree_rows import Branch, Command


class PandaController:
    """The controls of the run ``name`` in ``tree`` (see :mod:`caviar.panda.control_api`)."""

    def __init__(
        self,
        tree: PandaTree,
        name: str,
        *,
        changed: threading.Condition | None = None,
        poll: float = 0.2,
    ) -> None:
        self.tree, self.name, self.poll = tree, name, poll
        self.run_id = tree.run(name).run_id
        self.changed = changed or threading.Condition()

    # -- reading -----------------------------------------------------------------------------
    def version(self) -> int:
        return self.tree.version(self.run_id)

    def wait(self, after: int, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while True:
            version = self.version()
            left = deadline - time.monotonic()
            if version > after or left <= 0:
                return version
            with self.changed:
                self.changed.wait(min(left, self.poll))

    def state(self) -> dict[str, Any]:
        tree, run_id = self.tree, self.run_id
        with tree.read():  # one snapshot of the file
            row = tree.run(self.name)
            branches = tree.branches(run_id)
            curves = tree.curves(run_id)
            commands = tree.commands(run_id)
            snapshots = tree.snapshot_epochs(run_id)
            dropped = tree.dropped(run_id)
        by_id = {b.id: b for b in branches}
        spec = by_id[row.branch].spec
        start = min(snapshots.get(0, [0]))
        return {
            "run": {
                "name": row.name,
                "status": row.status,
                "seed": row.spec["seed"],
                "dtype": row.config["study"]["dtype"],
                "created": row.created,
            },
            "branch": row.branch,
            "epoch": _epochs_done(by_id[row.branch], curves, start),
            "hyperparameters": {name: spec[name] for name in HYPERPARAMETERS},
            "mutable": {name: HYPERPARAMETERS[name].describe() for name in MID_RUN},
            "branches": [b.to_json() for b in branches],
            "curves": {str(b): [p.to_json() for p in points] for b, points in curves.items()},
            "commands": [c.to_json() for c in commands],
            "snapshots": {str(b): epochs for b, epochs in snapshots.items()},
            "dropped": dropped,  # snapshots retention dropped (beyond the contract's keys)
            "version": row.version,
        }

    def _target(self) -> tuple[Branch, int, dict[str, Any], list[Command]]:
        """The branch the next epoch trains (a pending rollback's, else the run's), its epochs
        done, its spec with the pending changes, and the pending commands."""
        tree = self.tree
        with tree.read():
            row = tree.run(self.name)
            branches = {b.id: b for b in tree.branches(self.run_id)}
            pending = tree.commands(self.run_id, pending=True)
            curves = tree.curves(self.run_id)
            start = tree.first_snapshot(self.run_id)
        rollbacks = [int(c.new) for c in pending if c.key == "rollback"]
        branch = branches[rollbacks[-1] if rollbacks else row.branch]
        values = dict(branch.spec)
        for c in pending:
            if c.branch == branch.id and c.key in HYPERPARAMETERS:
                values[c.key] = c.new
        return branch, _epochs_done(branch, curves, start), values, pending

    def pending(self) -> dict[str, Any]:
        """The changes recorded for the branch the next epoch trains and not applied yet: the
        last new value of each hyperparameter."""
        branch, _, _, pending = self._target()
        return {c.key: c.new for c in pending if c.branch == branch.id and c.key in HYPERPARAMETERS}

    def next_branch(self) -> int:
        """The branch the next epoch trains: a pending rollback's, else the run's."""
        return self._target()[0].id

    def returnable(self, branch: int | None = None) -> list[int]:
        """The epochs a rollback on ``branch`` (default: the one the next epoch trains) can
        return to, in order; an InvalidValue for a branch the run does not have."""
        branches = {b.id: b for b in self.tree.branches(self.run_id)}
        if branch is None:
            branch = self.next_branch()
        one_of(*sorted(branches)).check(branch, "rollback branch")
        return sorted(_returnable(branches, self.tree.snapshot_epochs(self.run_id), branch))

    # -- commands ----------------------------------------------------------------------------
    def set(self, changes: Mapping[str, Any]) -> list[dict[str, Any]]:
        if not changes:
            raise InvalidValue("set", f"give at least one of {list(MID_RUN)}, got nothing")
        branch, epoch, values, _ = self._target()
        checked = {key: check_change(key, value) for key, value in changes.items()}
        if "epochs" in checked and checked["epochs"] < epoch:
            raise InvalidValue(
                "set epochs", f"must be >= the {epoch} epochs done, {got(checked['epochs'])}"
            )
        params = {k: v for k, v in {**values, **checked}.items() if k != "seed"}
        MemberSpec.from_params(params, seed=values["seed"], owner="set")  # rules across keys
        # old: the value the branch trains with now, not a pending change's (the trainer
        # writes the value it replaced when it applies the command)
        rows = [(branch.id, epoch, key, branch.spec[key], new) for key, new in checked.items()]
        ids = self.tree.add_commands(self.run_id, rows)
        self._notify()
        return [c.to_json() for c in self.tree.commands(self.run_id) if c.id in ids]

    def rollback(
        self, epoch: int, *, branch: int | None = None, mode: str = DEFAULT_ROLLBACK_MODE
    ) -> int:
        ROLLBACK_MODE.check(mode, "rollback mode")
        ROLLBACK_EPOCH.check(epoch, "rollback epoch")
        current, _, _, _ = self._target()
        branches = {b.id: b for b in self.tree.branches(self.run_id)}
        if branch is None:
            branch = current.id
        one_of(*sorted(branches)).check(branch, "rollback branch")
        snapshots = self.tree.snapshot_epochs(self.run_id)
        lineage = _returnable(branches, snapshots, branch)
        if epoch not in lineage:
            raise InvalidValue(
                "rollback epoch",
                f"branch {branch} can return to epochs {sorted(lineage)} (the others' snapshots "
                f"were dropped or are not reached yet), {got(epoch)}",
            )
        new = self.tree.add_branch(
            self.run_id, parent=lineage[epoch], from_epoch=epoch, mode=mode, current=current.id
        )
        self._notify()
        return new

    def pause(self) -> None:
        self._status("pause", "paused")

    def resume(self) -> None:
        self._status("resume", "running")

    def stop(self) -> None:
        self._status("stop", "stopped")

    def _status(self, key: str, new: str) -> None:
        branch, epoch, _, _ = self._target()
        status = self.tree.run(self.name).status
        self.tree.add_commands(self.run_id, [(branch.id, epoch, key, status, new)])
        self._notify()

    def _notify(self) -> None:
        with self.changed:
            self.changed.notify_all()


def check_change(key: str, value: Any) -> Any:
    """``value`` for hyperparameter ``key`` if it may change mid-run and meets its rule; an
    InvalidValue naming the key and what it allows otherwise."""
    if key not in HYPERPARAMETERS:
        raise InvalidValue(f"set {key}", f"unknown hyperparameter; may change: {list(MID_RUN)}")
    if key not in MID_RUN:
        raise InvalidValue(
            f"set {key}",
            f"cannot change mid-run (it fixes the model's shape or group); "
            f"may change: {list(MID_RUN)}",
        )
    return HYPERPARAMETERS[key].check(value, f"set {key}")


def parse_assignments(items: Iterable[str]) -> dict[str, Any]:
    """``["lr=3e-3", "lr_decay=step"]`` -> ``{"lr": 0.003, "lr_decay": "step"}``: each value
    read as its hyperparameter's kind (``caviar panda set``), then checked by
    :func:`check_change`."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise InvalidValue("set", f"each change must read key=value, {got(item)}")
        kind = HYPERPARAMETERS[key].rule.kind if key in HYPERPARAMETERS else "text"
        value: Any = text.strip()
        try:
            if kind == "integer":
                value = int(value)
            elif kind == "number":
                value = float(value)
            elif kind == "boolean" and value.lower() in ("true", "false"):
                value = value.lower() == "true"
        except ValueError:
            pass  # left as text: check_change names the rule
        out[key] = check_change(key, value)
    return out


def _epochs_done(branch: Branch, curves: Mapping[int, list[Any]], start: int) -> int:
    points = curves.get(branch.id)
    if points:
        return int(points[-1].record.epoch)
    return start if branch.from_epoch is None else branch.from_epoch


def _returnable(
    branches: Mapping[int, Branch], snapshots: Mapping[int, list[int]], branch: int
) -> dict[int, int]:
    """The epochs a rollback on ``branch`` can return to, each with the branch owning its
    snapshot: the branch's own, then its ancestors' up to where each child grew from."""
    out: dict[int, int] = {}
    limit: int | None = None
    b: Branch | None = branches[branch]
    while b is not None:
        for epoch in snapshots.get(b.id, []):
            if (limit is None or epoch <= limit) and epoch not in out:
                out[epoch] = b.id
        limit = b.from_epoch
        b = None if b.parent is None else branches[b.parent]
    return out
