"""The babysitting API's bodies, read as JSON objects of bounded size by
:func:`caviar.web.bodies.read_object`, taken apart for the controls.

The fields' values are checked once, by the control that receives them, with its constraints
(:mod:`caviar.panda.control_api`, :func:`caviar.panda.controller.check_change`).
"""

from __future__ import annotations

from typing import Any

from caviar.core.constraints import TableOf

#: a ``set`` body's ``changes``: a mapping, as a control takes them (each change is checked by
#: the control, against its hyperparameter's rule)
CHANGES = TableOf(words="an object of changes")


def set_changes(body: dict[str, Any]) -> dict[str, Any]:
    """The ``changes`` of a ``set`` body, as a mapping of names to values."""
    changes: dict[str, Any] = CHANGES.check(body["changes"], "set.changes")
    return changes


def rollback_options(body: dict[str, Any]) -> dict[str, Any]:
    """The ``branch`` and ``mode`` a ``rollback`` body gives (left out: the control's defaults)."""
    return {key: body[key] for key in ("branch", "mode") if key in body}
