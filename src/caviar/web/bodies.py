"""What a request body of a local page's API may be, before a route sees it.

A body is a JSON object of at most :data:`MAX_BODY` bytes with exactly the allowed fields;
anything else is an :class:`~caviar.core.errors.InvalidValue` (400) naming the field, and a
larger body is :class:`TooLarge` (413). The fields' values are checked by the route that
receives them; JSON holds only data, so no field is a path, code or a pickle.
"""

from __future__ import annotations

import json
import math
from typing import Any

from starlette.requests import Request

from caviar.core.errors import InvalidValue, got

MAX_BODY = 16 * 1024


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


def finite(value: Any) -> Any:
    """``value`` with NaN and infinities as None (a diverged loss), so it stays valid JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value
