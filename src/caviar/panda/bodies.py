"""What a request body of the babysitting API may hold, checked before a control sees it.

A body is a JSON object of at most :data:`MAX_BODY` bytes with exactly the allowed fields, each
of the right type; anything else is an :class:`~caviar.core.errors.InvalidValue` (400) naming the
field. No field is a path, code or a pickle: only numbers, true/false and words reach a control.
"""

from __future__ import annotations

import json
import math
from typing import Any

from starlette.requests import Request

from caviar.core.errors import InvalidValue, got
from caviar.panda.control_api import ROLLBACK_MODES

MAX_BODY = 16 * 1024


def set_changes(body: dict[str, Any]) -> dict[str, Any]:
    """The ``changes`` of a ``set`` body: a non-empty object of plain values."""
    changes = body["changes"]
    if not isinstance(changes, dict) or not changes:
        raise InvalidValue("set.changes", f"must be a non-empty object, {got(changes)}")
    for key, value in changes.items():
        if not isinstance(value, bool | int | float | str):
            raise InvalidValue(
                f"set.{key}", f"must be a number, true/false or a word, {got(value)}"
            )
    return changes


def rollback_args(body: dict[str, Any]) -> tuple[int, int | None, str]:
    """(epoch, branch or None, mode) of a ``rollback`` body."""
    epoch, branch, mode = body["epoch"], body.get("branch"), body.get("mode", "exact")
    if not _is_int(epoch) or epoch < 0:
        raise InvalidValue("rollback.epoch", f"must be an integer >= 0, {got(epoch)}")
    if branch is not None and (not _is_int(branch) or branch < 0):
        raise InvalidValue("rollback.branch", f"must be an integer >= 0, {got(branch)}")
    if mode not in ROLLBACK_MODES:
        raise InvalidValue("rollback.mode", f"must be one of {list(ROLLBACK_MODES)}, {got(mode)}")
    return epoch, branch, mode


async def read_object(
    request: Request,
    *,
    required: frozenset[str] = frozenset(),
    optional: frozenset[str] = frozenset(),
    empty_ok: bool = False,
) -> dict[str, Any]:
    """The request's JSON object, at most :data:`MAX_BODY` bytes, with exactly the allowed keys."""
    what = request.url.path.rsplit("/", 1)[-1]
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise TooLarge
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw.strip() and empty_ok:
        return {}
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        raise InvalidValue(what, "the body must be JSON (Content-Type: application/json)")
    try:
        body = json.loads(raw, parse_constant=_no_constant)
    except (ValueError, UnicodeDecodeError) as error:
        raise InvalidValue(what, f"the body is not valid JSON ({error})") from None
    if not isinstance(body, dict):
        raise InvalidValue(what, f"the body must be a JSON object, {got(body)}")
    unknown = sorted(set(body) - required - optional)
    if unknown:
        allowed = sorted(required | optional)
        raise InvalidValue(what, f"unknown field(s) {unknown}; allowed: {allowed}")
    missing = sorted(required - set(body))
    if missing:
        raise InvalidValue(what, f"missing field(s) {missing}")
    return body


class TooLarge(Exception):
    """A request body over :data:`MAX_BODY` bytes (413)."""


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a number JSON allows")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def finite(value: Any) -> Any:
    """``value`` with NaN and infinities as None (a diverged loss), so it stays valid JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value
