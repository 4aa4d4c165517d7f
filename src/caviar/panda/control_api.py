"""What the babysitting page and the command line may ask of a panda run: the one contract
between the trainer (:mod:`caviar.panda.trainer`) and its controls (:mod:`caviar.panda.server`,
``caviar panda set|rollback|pause|resume|stop``).

A control never touches the model. It records a *command* in the study store; the trainer
applies commands at the next epoch boundary (never mid-batch, and after any restore, so a
restored optimizer never overrides a new learning rate). Bad keys and values are refused with
an :class:`~caviar.core.errors.InvalidValue` before anything is recorded.

``state()`` is JSON-able and has this shape (``version`` grows with every change, so a page
that saw version N waits for N + 1 with :meth:`Controller.wait`)::

    {
      "run": {"name": str, "status": "running" | "paused" | "stopped" | "finished",
              "seed": int, "dtype": "float32" | "float64", "created": float},
      "branch": int,                       # the branch being trained (or last trained)
      "epoch": int,                        # epochs done on that branch, counted from the root
      "hyperparameters": {name: value},    # the branch's current values, every hyperparameter
      "mutable": {name: "rule in words"},  # what `set` accepts (nn.spec.MID_RUN)
      "branches": [{"id": int, "parent": int | None, "from_epoch": int | None,
                    "mode": "exact" | "fresh" | None, "created": float}],
      "curves": {"<branch id>": [{"epoch": int, "train_loss": float, "train_accuracy": float,
                                  "val_loss": float, "val_accuracy": float, "time": float}]},
      "commands": [{"id": int, "branch": int, "epoch": int, "key": str, "old": Any,
                    "new": Any, "time": float, "applied": bool}],
      "snapshots": {"<branch id>": [epoch, ...]},   # epochs a rollback can return to
      "dropped": [{"branch": int, "epoch": int, "bytes": int, "time": float}],  # retention
      "version": int
    }

A value that is not a finite number (a diverged loss) is ``null`` in the JSON.

A branch's curve holds only its own epochs (from ``from_epoch + 1``); the page draws a branch
as its parent's curve up to ``from_epoch`` followed by its own. Command keys are hyperparameter
names, or ``"rollback"``, ``"pause"``, ``"resume"``, ``"stop"`` for the other commands.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from caviar.core.constraints import integer, one_of

#: rollback modes, each with the page's words for it: restore the snapshot exactly, or keep the
#: weights and running statistics but start the optimizer's buffers (Adam's m, v and step
#: count, momentum) afresh. The first is the default.
ROLLBACK_MODES = {"exact": "resume exact", "fresh": "fresh optimizer buffers"}
DEFAULT_ROLLBACK_MODE = next(iter(ROLLBACK_MODES))

#: what a rollback's epoch and mode must be: a controller checks them (the one check; the page's
#: server and the command line hand their values on as given)
ROLLBACK_EPOCH = integer(0)
ROLLBACK_MODE = one_of(*ROLLBACK_MODES)


class Controller(Protocol):
    """A panda run as its controls see it."""

    def state(self) -> dict[str, Any]:
        """The whole run, in the shape of the module docstring."""
        ...

    def version(self) -> int:
        """A number that grows with every change (an epoch, a command, a status change)."""
        ...

    def wait(self, after: int, timeout: float) -> int:
        """Block until ``version() > after`` or ``timeout`` seconds passed; the version."""
        ...

    def set(self, changes: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Record a change of mid-run hyperparameters (applied at the next epoch boundary);
        the commands recorded. Every key and value is checked first: one bad one, nothing
        recorded."""
        ...

    def rollback(
        self, epoch: int, *, branch: int | None = None, mode: str = DEFAULT_ROLLBACK_MODE
    ) -> int:
        """Start a new branch from ``branch``'s (default: the current one) snapshot at
        ``epoch``; the new branch's id. Parents are never rewritten."""
        ...

    def pause(self) -> None: ...

    def resume(self) -> None: ...

    def stop(self) -> None: ...
