"""The one error type for bad user input, so that every message reads the same way; and the one
for a run stopped by what it runs on (:class:`RunStopped`), which the same command continues.

A message names its owner (a class, or a key path such as ``space.lr``), the rule that was broken
and the bad value: ``space.lr: low must be > 0 on a log scale, got 0``. Layers that know more about
where a value came from (the config reader knows the key path) re-raise with a better owner via
:meth:`InvalidValue.at`, keeping the reason.
"""

from __future__ import annotations

import itertools
import reprlib
from typing import Any


#: how much of a bad value a message shows: enough to recognise it, never megabytes of it
class _Shown(reprlib.Repr):
    """reprlib's bounded repr, keeping a mapping's own key order (reprlib sorts keys)."""

    def repr_dict(self, x: dict[Any, Any], level: int) -> str:
        if not x:
            return "{}"
        if level <= 0:
            return "{...}"
        pieces = [
            f"{self.repr1(k, level - 1)}: {self.repr1(v, level - 1)}"
            for k, v in itertools.islice(x.items(), self.maxdict)
        ]
        return "{" + ", ".join(pieces + ["..."] * (len(x) > self.maxdict)) + "}"


_SHOWN = _Shown()
_SHOWN.maxlevel, _SHOWN.maxstring, _SHOWN.maxother, _SHOWN.maxlong = 3, 120, 120, 60
_SHOWN.maxlist = _SHOWN.maxtuple = _SHOWN.maxdict = _SHOWN.maxset = 8


class InvalidValue(ValueError):
    """A user-supplied value breaks a rule. ``str(e)`` is ``"<owner>: <reason>"``."""

    def __init__(self, owner: str, reason: str) -> None:
        self.owner = owner
        self.reason = reason
        super().__init__(f"{owner}: {reason}" if owner else reason)

    def at(self, owner: str) -> InvalidValue:
        """The same reason, owned by ``owner`` (e.g. the config key path)."""
        return InvalidValue(owner, self.reason)

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled as (owner, reason), so it crosses to the driver from a worker process."""
        return (type(self), (self.owner, self.reason), self.__dict__)


def got(value: Any) -> str:
    """How a bad value is shown at the end of a message: ``got 0``, ``got 'relu6'``."""
    return f"got {_SHOWN.repr(value)}"


class RunStopped(RuntimeError):
    """The run cannot go on, for a reason outside its config (its worker processes died, or a
    library could not start its threads): the trials it finished are stored, the unfinished
    ones are back in the queue, and the same command continues it. The command line prints
    ``str(e)`` in one line and exits with :attr:`exit_status`."""

    #: EX_TEMPFAIL (sysexits.h): a temporary failure, the user is invited to retry
    exit_status = 75
