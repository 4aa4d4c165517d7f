"""The babysitting page and its JSON API: a thin layer over a panda run's
:class:`~caviar.panda.control_api.Controller`.

::

    GET  /                  the page (plotly.js charts, no build step, nothing from a CDN)
    GET  /static/NAME       page.js, page.css, plotly.min.js (from the installed plotly package)
    GET  /api/state         controller.state()
    GET  /api/events        server-sent events: ``state`` ({"state", "view"}) at connect and
                            after every change; a comment line to keep the connection alive
    POST /api/set           {"changes": {"lr": 0.003}}          -> {"commands": [...]}
    POST /api/rollback      {"epoch": 3, "branch": 1, "mode": "exact" | "fresh"} -> {"branch": id}
    POST /api/pause|resume|stop   (no body, or {})               -> {"ok": true}

Errors are ``{"reason": ...}``: 400 for a bad body or value, or a protocol upgrade (no WebSocket
here: the page's updates are server-sent events), 401 without the token, 403 for a foreign Host
or Origin (see :mod:`caviar.web.security`), 413 for a body over 16 KiB. A stray upgrade request
is answered quietly (:mod:`caviar.web.serving`), so nothing is printed into the trainer's
terminal.
"""

from __future__ import annotations

import functools
import html
import importlib.resources
import json
from collections.abc import Awaitable, Callable

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from caviar.panda.bodies import rollback_options, set_changes
from caviar.panda.control_api import DEFAULT_ROLLBACK_MODE, ROLLBACK_MODES, Controller
from caviar.panda.view import view
from caviar.web import serving
from caviar.web.bodies import finite, read_object
from caviar.web.serving import WebServer, event_stream, guarded_app, ok, static_endpoint

__all__ = ["create_app", "serve"]

_STATIC = {"page.js": "application/javascript", "page.css": "text/css"}


def create_app(
    controller: Controller, *, token: str, host: str = "127.0.0.1", port: int
) -> Starlette:
    """The page and API for ``controller``, open to requests that carry ``token`` and name
    ``host``:``port`` (or a loopback name) as their Host."""
    files = _Files(token)

    async def page(request: Request) -> Response:
        return Response(files.page(), media_type="text/html; charset=utf-8")

    async def state(request: Request) -> Response:
        return ok(await run_in_threadpool(controller.state))

    async def events(request: Request) -> Response:
        current = functools.partial(_state_event, controller)
        return event_stream(current, controller.wait, request.app.state.closing)

    async def set_(request: Request) -> Response:
        changes = set_changes(await read_object(request, required=frozenset({"changes"})))
        return ok({"commands": await run_in_threadpool(controller.set, changes)})

    async def rollback(request: Request) -> Response:
        body = await read_object(
            request, required=frozenset({"epoch"}), optional=frozenset({"branch", "mode"})
        )
        epoch, options = body["epoch"], rollback_options(body)
        new = await run_in_threadpool(lambda: controller.rollback(epoch, **options))
        return ok({"branch": new})

    def simple(action: Callable[[], None]) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            await read_object(request, empty_ok=True)
            await run_in_threadpool(action)
            return ok({"ok": True})

        return endpoint

    routes = [
        Route("/", page, methods=["GET"]),
        Route("/static/{name}", static_endpoint("panda", files.static), methods=["GET"]),
        Route("/api/state", state, methods=["GET"]),
        Route("/api/events", events, methods=["GET"]),
        Route("/api/set", set_, methods=["POST"]),
        Route("/api/rollback", rollback, methods=["POST"]),
        Route("/api/pause", simple(controller.pause), methods=["POST"]),
        Route("/api/resume", simple(controller.resume), methods=["POST"]),
        Route("/api/stop", simple(controller.stop), methods=["POST"]),
    ]
    return guarded_app(routes, name="panda", token=token, host=host, port=port)


def serve(
    controller: Controller, *, host: str = "127.0.0.1", port: int = 0, token: str | None = None
) -> tuple[str, WebServer]:
    """Serve ``controller``'s page from a background thread; ``(url with token, server)``.

    ``port=0`` takes a free port; ``token=None`` draws a fresh one. Binds ``host`` (127.0.0.1
    unless asked); raises OSError when it cannot.
    """
    return serving.serve(
        lambda token, port: create_app(controller, token=token, host=host, port=port),
        name="panda",
        host=host,
        port=port,
        token=token,
    )


async def _state_event(controller: Controller) -> tuple[int, str]:
    """(version, a ``state`` event with the state and what the page draws of it)."""
    state = finite(await run_in_threadpool(controller.state))
    data = json.dumps({"state": state, "view": view(state)}, allow_nan=False)
    return state["version"], f"event: state\nid: {state['version']}\ndata: {data}\n\n"


class _Files:
    """The page with its token written in, our static files and plotly.js, read once."""

    def __init__(self, token: str) -> None:
        self.token = token
        self._cache: dict[str, bytes] = {}

    def read(self, name: str) -> bytes:
        if name not in self._cache:
            self._cache[name] = (
                importlib.resources.files("caviar.panda") / "static" / name
            ).read_bytes()
        return self._cache[name]

    def static(self, name: str) -> tuple[bytes, str] | None:
        """A static file of ours and its media type, or None for a name we do not serve."""
        return (self.read(name), _STATIC[name]) if name in _STATIC else None

    def page(self) -> bytes:
        modes = "".join(
            f'<option value="{mode}"{" selected" * (mode == DEFAULT_ROLLBACK_MODE)}>'
            f"{html.escape(words)}</option>"
            for mode, words in ROLLBACK_MODES.items()
        )
        page = self.read("index.html").replace(b"{{TOKEN}}", self.token.encode())
        return page.replace(b"{{ROLLBACK_MODES}}", modes.encode())
