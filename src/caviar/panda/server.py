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
or Origin (see :mod:`caviar.panda.security`), 413 for a body over 16 KiB. A stray upgrade request
is answered quietly: uvicorn's WebSocket support is off, and its warnings about one are dropped
(:class:`_QuietUpgrades`), so nothing is printed into the trainer's terminal.
"""

from __future__ import annotations

import html
import importlib.resources
import json
import logging
import secrets
import socket
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from caviar.core.errors import InvalidValue
from caviar.panda.bodies import (
    MAX_BODY,
    TooLarge,
    finite,
    read_object,
    rollback_options,
    set_changes,
)
from caviar.panda.control_api import DEFAULT_ROLLBACK_MODE, ROLLBACK_MODES, Controller
from caviar.panda.security import Guard, allowed_hosts, check_token
from caviar.panda.view import view

__all__ = ["PandaServer", "create_app", "serve"]

log = logging.getLogger(__name__)

#: how often an event stream looks up from ``controller.wait`` (to notice a closing server or a
#: gone client soon), and how long it may stay silent before a keep-alive comment
WAIT_SLICE = 1.0
KEEP_ALIVE = 15.0

_STATIC = {"page.js": "application/javascript", "page.css": "text/css"}


def create_app(
    controller: Controller, *, token: str, host: str = "127.0.0.1", port: int
) -> Starlette:
    """The page and API for ``controller``, open to requests that carry ``token`` and name
    ``host``:``port`` (or a loopback name) as their Host."""
    check_token(token)
    closing = threading.Event()
    files = _Files(token)

    async def page(request: Request) -> Response:
        return Response(files.page(), media_type="text/html; charset=utf-8")

    async def static(request: Request) -> Response:
        name = request.path_params["name"]
        if name == "plotly.min.js":
            return Response(
                files.plotly(),
                media_type="application/javascript",
                headers={"cache-control": "private, max-age=3600"},
            )
        if name not in _STATIC:
            return JSONResponse({"reason": f"panda: no static file {name!r}"}, 404)
        return Response(files.read(name), media_type=_STATIC[name])

    async def state(request: Request) -> Response:
        return _ok(await run_in_threadpool(controller.state))

    async def events(request: Request) -> Response:
        return StreamingResponse(
            _event_stream(controller, closing),
            media_type="text/event-stream",
            headers={"cache-control": "no-store", "x-accel-buffering": "no"},
        )

    async def set_(request: Request) -> Response:
        changes = set_changes(await read_object(request, required=frozenset({"changes"})))
        return _ok({"commands": await run_in_threadpool(controller.set, changes)})

    async def rollback(request: Request) -> Response:
        body = await read_object(
            request, required=frozenset({"epoch"}), optional=frozenset({"branch", "mode"})
        )
        epoch, options = body["epoch"], rollback_options(body)
        new = await run_in_threadpool(lambda: controller.rollback(epoch, **options))
        return _ok({"branch": new})

    def simple(action: Callable[[], None]) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            await read_object(request, empty_ok=True)
            await run_in_threadpool(action)
            return _ok({"ok": True})

        return endpoint

    routes = [
        Route("/", page, methods=["GET"]),
        Route("/static/{name}", static, methods=["GET"]),
        Route("/api/state", state, methods=["GET"]),
        Route("/api/events", events, methods=["GET"]),
        Route("/api/set", set_, methods=["POST"]),
        Route("/api/rollback", rollback, methods=["POST"]),
        Route("/api/pause", simple(controller.pause), methods=["POST"]),
        Route("/api/resume", simple(controller.resume), methods=["POST"]),
        Route("/api/stop", simple(controller.stop), methods=["POST"]),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(Guard, token=token, hosts=allowed_hosts(host, port))],
        exception_handlers={InvalidValue: _error, TooLarge: _error, Exception: _error},
    )
    app.state.closing = closing
    return app


class PandaServer:
    """A running server: ``url`` (with the token), ``port``, ``token``; ``stop()`` ends it."""

    def __init__(
        self, server: Any, thread: threading.Thread, app: Starlette, url: str, port: int, token: str
    ) -> None:
        self._server, self._thread, self._app = server, thread, app
        self.url, self.port, self.token = url, port, token

    def stop(self, timeout: float = 5.0) -> None:
        """End every event stream, then the server; returns when its thread has ended."""
        self._app.state.closing.set()
        self._server.should_exit = True
        self._thread.join(timeout)
        if self._thread.is_alive():
            self._server.force_exit = True
            self._thread.join(timeout)

    def __enter__(self) -> PandaServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve(
    controller: Controller, *, host: str = "127.0.0.1", port: int = 0, token: str | None = None
) -> tuple[str, PandaServer]:
    """Serve ``controller``'s page from a background thread; ``(url with token, server)``.

    ``port=0`` takes a free port; ``token=None`` draws a fresh one (:func:`secrets.token_urlsafe`).
    Binds ``host`` (127.0.0.1 unless asked); raises OSError when it cannot.
    """
    import uvicorn  # deferred: importing this module must not start uvicorn's logging

    token = check_token(token if token is not None else secrets.token_urlsafe(24))
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(address)
    port = sock.getsockname()[1]
    app = create_app(controller, token=token, host=host, port=port)
    config = uvicorn.Config(
        app, log_level="warning", lifespan="off", ws="none", timeout_graceful_shutdown=3
    )
    _QuietUpgrades.install()  # after the Config: it sets up uvicorn's loggers
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="caviar-panda-server", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            sock.close()
            raise OSError(f"panda: the server on {host}:{port} did not start")
        time.sleep(0.01)
    shown = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "[::1]"}.get(host, host)
    if ":" in shown and not shown.startswith("["):
        shown = f"[{shown}]"
    url = f"http://{shown}:{port}/?token={token}"
    return url, PandaServer(server, thread, app, url, port, token)


async def _event_stream(controller: Controller, closing: threading.Event) -> AsyncIterator[str]:
    """The full state at once, then again after every change, until the server closes."""
    version, event = await _state_event(controller)
    yield f"retry: 2000\n\n{event}"
    quiet_since = time.monotonic()
    while not closing.is_set():
        now = await anyio.to_thread.run_sync(
            controller.wait, version, WAIT_SLICE, abandon_on_cancel=True
        )
        if now > version:
            version, event = await _state_event(controller)
            yield event
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= KEEP_ALIVE:
            yield ": keep-alive\n\n"
            quiet_since = time.monotonic()


async def _state_event(controller: Controller) -> tuple[int, str]:
    """(version, a ``state`` event with the state and what the page draws of it)."""
    state = finite(await run_in_threadpool(controller.state))
    data = json.dumps({"state": state, "view": view(state)}, allow_nan=False)
    return state["version"], f"event: state\nid: {state['version']}\ndata: {data}\n\n"


def _ok(body: Any) -> JSONResponse:
    return JSONResponse(finite(body))


async def _error(request: Request, error: Exception) -> Response:
    if isinstance(error, InvalidValue):
        return JSONResponse({"reason": str(error)}, 400)
    if isinstance(error, TooLarge):
        return JSONResponse({"reason": f"panda: a request body is at most {MAX_BODY} bytes"}, 413)
    log.exception("panda: %s %s failed", request.method, request.url.path)
    return JSONResponse({"reason": f"panda: {type(error).__name__}: {error}"}, 500)


class _QuietUpgrades(logging.Filter):
    """Drops uvicorn's warnings about an upgrade request (a WebSocket attempt, a scanner): the
    guard answers it 400 (:mod:`caviar.panda.security`), and the trainer's terminal stays its
    own. uvicorn warns about every one, with or without a WebSocket library installed."""

    #: the start of each warning dropped (uvicorn 0.30 to 0.55: protocols/http/*_impl.py)
    DROPPED = ("Unsupported upgrade request", "No supported WebSocket library detected")
    LOGGER = "uvicorn.error"

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.DROPPED)

    @classmethod
    def install(cls) -> None:
        logger = logging.getLogger(cls.LOGGER)
        if not any(isinstance(f, cls) for f in logger.filters):
            logger.addFilter(cls())


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

    def page(self) -> bytes:
        modes = "".join(
            f'<option value="{mode}"{" selected" * (mode == DEFAULT_ROLLBACK_MODE)}>'
            f"{html.escape(words)}</option>"
            for mode, words in ROLLBACK_MODES.items()
        )
        page = self.read("index.html").replace(b"{{TOKEN}}", self.token.encode())
        return page.replace(b"{{ROLLBACK_MODES}}", modes.encode())

    def plotly(self) -> bytes:
        if "plotly.min.js" not in self._cache:
            import plotly  # deferred: plotly is large, and only its JavaScript file is read

            path = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
            self._cache["plotly.min.js"] = path.read_bytes()
        return self._cache["plotly.min.js"]
