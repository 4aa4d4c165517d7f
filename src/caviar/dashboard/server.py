"""The live dashboard's server: the report's page of a study, kept fresh as trials are told.

::

    GET  /                   the report's page (:func:`caviar.report.page.served_page_html`)
                             with the study's data as it is now
    GET  /static/NAME        plotly.min.js, report.js (the report's own script), live.js
    GET  /api/data           {"version", "study": the report's data, "progress": the pool's}
    GET  /api/events         server-sent events: ``study`` (the same object) at connect and
                             whenever the store changes; a comment line to keep it alive
    POST /api/babysit        {"trial": 7} -> {"url": panda's page, "run", "pid", "stop", ...}

Every request passes panda's gate (:mod:`caviar.web.security`: 127.0.0.1, the token, Host and
Origin, no upgrade, the security headers); errors are ``{"reason": ...}``. The store is read
by a :class:`~caviar.dashboard.watch.StudyWatch` every second, from any process: the tuning
run's own (``caviar tune --serve``) or another (``caviar dashboard``).
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from caviar.dashboard.babysit import Babysitter
from caviar.dashboard.live_script import LIVE_SCRIPT
from caviar.dashboard.watch import StudyWatch
from caviar.report.page import served_page_html
from caviar.report.page_script import SCRIPT
from caviar.web import serving
from caviar.web.bodies import finite, read_object
from caviar.web.serving import WAIT_SLICE, WebServer, event_stream, guarded_app, ok, static_endpoint

__all__ = ["Dashboard", "create_app", "serve_study"]

_SCRIPTS = {"report.js": SCRIPT, "live.js": LIVE_SCRIPT}


def create_app(
    watch: StudyWatch, babysitter: Babysitter, *, token: str, host: str = "127.0.0.1", port: int
) -> Starlette:
    """The page and API for ``watch``'s study, open to requests that carry ``token`` and name
    ``host``:``port`` (or a loopback name) as their Host."""

    async def page(request: Request) -> Response:
        _, data = watch.current()
        sources = [f"/static/{name}?token={token}" for name in ("plotly.min.js", *_SCRIPTS)]
        study = None if data is None else data["study"]
        return Response(
            served_page_html(watch.name, study, sources), media_type="text/html; charset=utf-8"
        )

    async def data(request: Request) -> Response:
        version, found = watch.current()
        return ok({"version": version, **_waiting(watch, found)})

    async def events(request: Request) -> Response:
        async def current() -> tuple[int, str]:
            version, found = watch.current()
            return version, _event(version, _waiting(watch, found))

        return event_stream(current, watch.wait, request.app.state.closing)

    async def babysit(request: Request) -> Response:
        with babysitter.asking():
            body = await read_object(request, required=frozenset({"trial"}))
            return ok(await run_in_threadpool(babysitter.start, body["trial"]))

    routes = [
        Route("/", page, methods=["GET"]),
        Route("/static/{name}", static_endpoint("dashboard", _script), methods=["GET"]),
        Route("/api/data", data, methods=["GET"]),
        Route("/api/events", events, methods=["GET"]),
        Route("/api/babysit", babysit, methods=["POST"]),
    ]
    return guarded_app(routes, name="dashboard", token=token, host=host, port=port)


def _waiting(watch: StudyWatch, found: dict[str, Any] | None) -> dict[str, Any]:
    """The data, or while the study does not exist yet, a line saying what the page waits for."""
    if found is not None:
        return found
    line = f"waiting for study {watch.name!r} to begin in {watch.storage}"
    return {"study": None, "progress": {"line": line, "live": True, "kept": []}}


def _script(name: str) -> tuple[str, str] | None:
    return (_SCRIPTS[name], "application/javascript") if name in _SCRIPTS else None


def _event(version: int, data: dict[str, Any]) -> str:
    payload = json.dumps({"version": version, **finite(data)}, allow_nan=False)
    return f"event: study\nid: {version}\ndata: {payload}\n\n"


class Dashboard:
    """A served dashboard: ``url`` (with its token), the watch and the server; :meth:`close`
    lets a babysit being started answer, pushes one last look at the store, then ends both."""

    def __init__(
        self, url: str, watch: StudyWatch, babysitter: Babysitter, server: WebServer
    ) -> None:
        self.url, self.watch, self.babysitter, self.server = url, watch, babysitter, server

    def close(self) -> None:
        # a trainer being started: its page's address is answered before the server ends
        self.babysitter.wait(self.babysitter.timeout + 10)
        version = self.watch.version
        self.watch.stop()  # after one last look at the store
        if self.watch.version > version:
            time.sleep(WAIT_SLICE / 2)  # the event streams send it (each wakes when it changes)
        self.server.stop()

    def __enter__(self) -> Dashboard:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def serve_study(
    name: str,
    storage: str | Path,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    token: str | None = None,
    begun: threading.Event | None = None,
) -> Dashboard:
    """Serve study ``name``'s live page from background threads. A study that does not exist
    is an error here, unless ``begun`` is given: a search about to make it sets that event once
    the study is stored (until then the page waits)."""
    watch = StudyWatch(name, storage, begun=begun).start()
    babysitter = Babysitter(name, storage)
    try:
        url, server = serving.serve(
            lambda token, port: create_app(watch, babysitter, token=token, host=host, port=port),
            name="dashboard",
            host=host,
            port=port,
            token=token,
        )
    except BaseException:
        watch.stop()
        raise
    return Dashboard(url, watch, babysitter, server)
