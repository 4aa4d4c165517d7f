"""A local page's server: a guarded Starlette app run by uvicorn in a background thread.

:func:`guarded_app` puts every route behind :class:`~caviar.web.security.Guard` (Host, Origin,
token, security headers) with one way to answer errors (``{"reason": ...}``: 400 for a bad
value, 413 for a body over :data:`~caviar.web.bodies.MAX_BODY`, 500 otherwise, logged), and a
``closing`` event that ends its event streams. :func:`serve` binds a socket (a free port for
``port=0``), draws a token and runs the app until :meth:`WebServer.stop`. A stray upgrade
request is answered quietly: uvicorn's WebSocket support is off, and its warnings about one are
dropped (:class:`_QuietUpgrades`), so nothing is printed into the terminal of the process that
serves (a trainer, a tuning run).
"""

from __future__ import annotations

import functools
import logging
import secrets
import socket
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute

from caviar.core.errors import InvalidValue
from caviar.web.bodies import MAX_BODY, TooLarge, finite
from caviar.web.security import Guard, allowed_hosts, check_token

__all__ = [
    "WebServer",
    "event_stream",
    "guarded_app",
    "ok",
    "plotly_js",
    "serve",
    "static_endpoint",
]

log = logging.getLogger(__name__)

#: seconds an idle connection stays open (uvicorn's default, 5, raced a page's next request)
KEEP_ALIVE = 60
#: how often an event stream looks up from its wait (to notice a closing server or a gone
#: client soon), and how long it may stay silent before a keep-alive comment
WAIT_SLICE = 1.0
EVENTS_KEEP_ALIVE = 15.0


def guarded_app(
    routes: Sequence[BaseRoute], *, name: str, token: str, host: str, port: int
) -> Starlette:
    """``routes`` open to requests that carry ``token`` and name ``host``:``port`` (or a
    loopback name) as their Host; ``app.state.closing`` is set when the server stops."""

    async def error(request: Request, error: Exception) -> Response:
        if isinstance(error, InvalidValue):
            return JSONResponse({"reason": str(error)}, 400)
        if isinstance(error, TooLarge):
            return JSONResponse(
                {"reason": f"{name}: a request body is at most {MAX_BODY} bytes"}, 413
            )
        log.exception("%s: %s %s failed", name, request.method, request.url.path)
        return JSONResponse({"reason": f"{name}: {type(error).__name__}: {error}"}, 500)

    app = Starlette(
        routes=list(routes),
        middleware=[
            Middleware(
                Guard, token=check_token(token, name), hosts=allowed_hosts(host, port), name=name
            )
        ],
        exception_handlers={InvalidValue: error, TooLarge: error, Exception: error},
    )
    app.state.closing = threading.Event()
    return app


def ok(body: Any) -> JSONResponse:
    """``body`` as strict JSON (NaN and infinities as null)."""
    return JSONResponse(finite(body))


class WebServer:
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

    def __enter__(self) -> WebServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve(
    make_app: Callable[[str, int], Starlette],
    *,
    name: str,
    host: str = "127.0.0.1",
    port: int = 0,
    token: str | None = None,
) -> tuple[str, WebServer]:
    """Serve ``make_app(token, port)`` from a background thread; ``(url with token, server)``.

    ``port=0`` takes a free port; ``token=None`` draws a fresh one (:func:`secrets.token_urlsafe`).
    Binds ``host`` (127.0.0.1 unless asked); raises OSError when it cannot.
    """
    import uvicorn  # deferred: importing this module must not start uvicorn's logging

    token = check_token(token if token is not None else secrets.token_urlsafe(24), name)
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(address)
    port = sock.getsockname()[1]
    app = make_app(token, port)
    config = uvicorn.Config(
        app,
        log_level="warning",
        lifespan="off",
        ws="none",
        timeout_graceful_shutdown=3,
        # a page's requests reuse idle connections: one closed by the server as a POST is sent
        # on it fails in the browser ("Failed to fetch"), so idle ones stay open a minute
        timeout_keep_alive=KEEP_ALIVE,
    )
    _QuietUpgrades.install()  # after the Config: it sets up uvicorn's loggers
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name=f"caviar-{name}-server", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            sock.close()
            raise OSError(f"{name}: the server on {host}:{port} did not start")
        time.sleep(0.01)
    shown = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "[::1]"}.get(host, host)
    if ":" in shown and not shown.startswith("["):
        shown = f"[{shown}]"
    url = f"http://{shown}:{port}/?token={token}"
    return url, WebServer(server, thread, app, url, port, token)


def event_stream(
    current: Callable[[], Awaitable[tuple[int, str]]],
    wait: Callable[[int, float], int],
    closing: threading.Event,
) -> StreamingResponse:
    """Server-sent events: ``current()``'s ``(version, event)`` at once, then again whenever
    ``wait(version, seconds)`` (blocking up to ``seconds``) returns a newer version, with a
    keep-alive comment after a quiet spell, until ``closing`` is set (the server stops)."""

    async def stream() -> AsyncIterator[str]:
        version, event = await current()
        yield f"retry: 2000\n\n{event}"
        quiet_since = time.monotonic()
        while not closing.is_set():
            now = await anyio.to_thread.run_sync(wait, version, WAIT_SLICE, abandon_on_cancel=True)
            if now > version:
                version, event = await current()
                yield event
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since >= EVENTS_KEEP_ALIVE:
                yield ": keep-alive\n\n"
                quiet_since = time.monotonic()

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"cache-control": "no-store", "x-accel-buffering": "no"},
    )


def static_endpoint(
    room: str, files: Callable[[str], tuple[bytes | str, str] | None]
) -> Callable[[Request], Awaitable[Response]]:
    """``GET /static/{name}``: plotly.js from the installed package (:func:`plotly_js`, cached
    by the browser for an hour), else ``files(name)``'s ``(body, media type)``, else a 404
    naming the file."""

    async def endpoint(request: Request) -> Response:
        name = request.path_params["name"]
        if name == "plotly.min.js":
            return Response(
                plotly_js(),
                media_type="application/javascript",
                headers={"cache-control": "private, max-age=3600"},
            )
        found = files(name)
        if found is None:
            return JSONResponse({"reason": f"{room}: no static file {name!r}"}, 404)
        return Response(found[0], media_type=found[1])

    return endpoint


@functools.cache
def plotly_js() -> bytes:
    """plotly.js from the installed plotly package (no CDN), read once."""
    import plotly  # deferred: plotly is large, and only its JavaScript file is read

    return (Path(plotly.__file__).parent / "package_data" / "plotly.min.js").read_bytes()


class _QuietUpgrades(logging.Filter):
    """Drops uvicorn's warnings about an upgrade request (a WebSocket attempt, a scanner): the
    guard answers it 400 (:mod:`caviar.web.security`), and the serving process's terminal stays
    its own. uvicorn warns about every one, with or without a WebSocket library installed."""

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
