"""A panda run without a model: the :class:`~caviar.panda.control_api.Controller` contract, with
epochs made up on demand (``step``) or by a ticker thread, and every call recorded."""

from __future__ import annotations

import copy
import math
import threading
import time
from collections.abc import Mapping
from typing import Any

from caviar.core.errors import InvalidValue, got
from caviar.nn.spec import HYPERPARAMETERS, MID_RUN
from caviar.panda.control_api import DEFAULT_ROLLBACK_MODE, ROLLBACK_EPOCH, ROLLBACK_MODE


class FakeController:
    """Keeps the state of the contract's docstring; ``calls`` lists every control call."""

    def __init__(self, epochs: int = 0) -> None:
        self._changed = threading.Condition()
        self.calls: list[tuple[str, Any]] = []
        now = time.time()
        self._state: dict[str, Any] = {
            "run": {
                "name": "fake",
                "status": "running",
                "seed": 0,
                "dtype": "float32",
                "created": now,
            },
            "branch": 0,
            "epoch": 0,
            "hyperparameters": {name: h.default for name, h in HYPERPARAMETERS.items()},
            "mutable": {name: HYPERPARAMETERS[name].describe() for name in MID_RUN},
            "branches": [
                {"id": 0, "parent": None, "from_epoch": None, "mode": None, "created": now}
            ],
            "curves": {"0": []},
            "commands": [],
            "snapshots": {"0": [0]},
            "version": 0,
        }
        self._values = {0: dict(self._state["hyperparameters"])}
        for _ in range(epochs):
            self.step()

    # -- the contract -------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        with self._changed:
            return copy.deepcopy(self._state)

    def version(self) -> int:
        with self._changed:
            return int(self._state["version"])

    def wait(self, after: int, timeout: float) -> int:
        with self._changed:
            self._changed.wait_for(lambda: self._state["version"] > after, timeout)
            return int(self._state["version"])

    def set(self, changes: Mapping[str, Any]) -> list[dict[str, Any]]:
        if not changes:
            raise InvalidValue("set", f"give at least one of {list(MID_RUN)}, got nothing")
        checked = {}
        for key, value in changes.items():  # every one first: one bad, nothing recorded
            if key not in MID_RUN:
                raise InvalidValue(
                    f"set.{key}", f"may not change mid-run; allowed: {list(MID_RUN)}"
                )
            checked[key] = HYPERPARAMETERS[key].check(value, f"set.{key}")
        with self._changed:
            self.calls.append(("set", dict(changes)))
            values = self._state["hyperparameters"]
            return [self._command(key, values[key], new) for key, new in checked.items()]

    def rollback(
        self, epoch: int, *, branch: int | None = None, mode: str = DEFAULT_ROLLBACK_MODE
    ) -> int:
        ROLLBACK_MODE.check(mode, "rollback mode")  # the contract's rules, as the real one
        ROLLBACK_EPOCH.check(epoch, "rollback epoch")
        with self._changed:
            source = self._state["branch"] if branch is None else branch
            if str(source) not in self._state["snapshots"]:
                raise InvalidValue("rollback branch", f"no such branch, {got(source)}")
            if epoch not in self._reachable(source):
                raise InvalidValue(
                    "rollback epoch", f"no snapshot of branch {source}, {got(epoch)}"
                )
            self.calls.append(("rollback", (epoch, branch, mode)))
            new = len(self._state["branches"])
            self._state["branches"].append(
                {
                    "id": new,
                    "parent": source,
                    "from_epoch": epoch,
                    "mode": mode,
                    "created": time.time(),
                }
            )
            self._state["curves"][str(new)] = []
            self._state["snapshots"][str(new)] = []
            self._values[new] = dict(self._values[source])
            left = self._state["branch"]  # as the real one: old, the branch left; new, the new one
            self._command("rollback", left, new, epoch=epoch, branch=source, applied=True)
            self._state["branch"], self._state["epoch"] = new, epoch
            self._state["hyperparameters"] = dict(self._values[new])
            self._bump()
            return new

    def pause(self) -> None:
        self._status("pause", "paused")

    def resume(self) -> None:
        self._status("resume", "running")

    def stop(self) -> None:
        self._status("stop", "stopped")

    # -- the fake trainer ---------------------------------------------------------------------
    def step(self) -> None:
        """One epoch on the current branch: pending commands applied, then a made-up point."""
        with self._changed:
            branch, epoch = self._state["branch"], self._state["epoch"] + 1
            for command in self._state["commands"]:
                if command["branch"] == branch and not command["applied"]:
                    self._values[branch][command["key"]] = command["new"]
                    command["applied"] = True
            self._state["hyperparameters"] = dict(self._values[branch])
            lr = self._values[branch]["lr"]
            loss = 2.3 * math.exp(-epoch * min(lr, 0.1) * 100) + 0.1 * (branch + 1)
            self._state["curves"][str(branch)].append(
                {
                    "epoch": epoch,
                    "train_loss": loss,
                    "train_accuracy": 1 - loss / 2.5,
                    "val_loss": loss * 1.1,
                    "val_accuracy": 1 - loss / 2.4,
                    "time": time.time(),
                }
            )
            self._state["snapshots"][str(branch)].append(epoch)
            self._state["epoch"] = epoch
            self._bump()

    def tick(self, every: float, until: float) -> threading.Thread:
        """A thread stepping every ``every`` seconds while running, for ``until`` seconds."""

        def run() -> None:
            end = time.monotonic() + until
            while time.monotonic() < end and self._state["run"]["status"] != "stopped":
                time.sleep(every)
                if self._state["run"]["status"] == "running":
                    self.step()

        thread = threading.Thread(target=run, daemon=True, name="fake-epochs")
        thread.start()
        return thread

    # -- inside -------------------------------------------------------------------------------
    def _command(self, key: str, old: Any, new: Any, **fields: Any) -> dict[str, Any]:
        command = {
            "id": len(self._state["commands"]),
            "branch": self._state["branch"],
            "epoch": self._state["epoch"],
            "key": key,
            "old": old,
            "new": new,
            "time": time.time(),
            "applied": False,
            **fields,
        }
        self._state["commands"].append(command)
        self._bump()
        return dict(command)

    def _status(self, key: str, status: str) -> None:
        with self._changed:
            self.calls.append((key, None))
            self._command(key, self._state["run"]["status"], status, applied=True)
            self._state["run"]["status"] = status
            self._bump()

    def _reachable(self, branch: int) -> set[int]:
        parents = {b["id"]: b for b in self._state["branches"]}
        epochs = set(self._state["snapshots"][str(branch)])
        parent, limit = parents[branch]["parent"], parents[branch]["from_epoch"]
        if parent is not None:
            epochs |= {e for e in self._reachable(parent) if e <= limit}
        return epochs

    def _bump(self) -> None:
        self._state["version"] += 1
        self._changed.notify_all()
