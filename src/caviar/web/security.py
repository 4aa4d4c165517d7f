"""The local servers' gate (panda's page, the live dashboard): every request shows the server's
token and comes from its own page.

Checked in this order, before any route runs, on every request (the page, static files, reads):

0. **No upgrade**: a request to switch protocols (a WebSocket attempt) gets 400; the page's
   updates are server-sent events over plain HTTP.
1. **Host** must name this server: ``127.0.0.1:PORT``, ``localhost:PORT``, ``[::1]:PORT`` or the
   host it was told to bind (for ``0.0.0.0`` / ``::``, also this machine's name and addresses).
   A web page on another site that rebinds its DNS name to 127.0.0.1 sends its own name: 403.
2. **Origin**, when a browser sends one, must be this server's own origin (``http://`` + Host).
   A page on another origin posting a command gets 403; no CORS header is ever sent.
3. **Token**: ``?token=...`` in the query or ``Authorization: Bearer ...``, compared with
   :func:`secrets.compare_digest`; missing or wrong: 401.

Each refusal is ``{"reason": ...}``, its words starting with the server's name (``panda: ...``,
``dashboard: ...``).

Why no cookie: browsers share a host's cookies between all its ports, so any other server on
``localhost`` would receive it. The page gets the token from its own URL instead (the server
writes it into the page) and sends it with each request.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import re
import secrets
import socket
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qs

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: what a token may hold: it is written into the page and its URLs unescaped
TOKEN_PATTERN = re.compile(r"[A-Za-z0-9_\-]{16,128}")

#: sent with every response: no framing, no sniffing, no referrer (the URL holds the token),
#: scripts and connections to this server only (plotly injects its own <style> elements)
SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cross-origin-resource-policy": "same-origin",
    "content-security-policy": (
        "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    ),
}

_WILDCARDS = ("0.0.0.0", "::", "")
_LOOPBACK = ("127.0.0.1", "localhost", "[::1]")


def check_token(token: str, owner: str = "caviar") -> str:
    """``token``, or a ValueError when it could not be written into a URL as it is."""
    if not TOKEN_PATTERN.fullmatch(token):
        raise ValueError(f"{owner}: a token is 16 to 128 of A-Z a-z 0-9 _ -, got {token!r}")
    return token


def is_loopback(host: str) -> bool:
    """Whether ``host`` names only this machine's loopback (127.0.0.0/8, ::1, ``localhost``): a
    server bound there cannot be reached from another machine. A wildcard (``0.0.0.0``, ``::``)
    is not; an OSError when the name cannot be resolved."""
    if host in _WILDCARDS:
        return False
    infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    return all(ipaddress.ip_address(str(info[4][0]).split("%")[0]).is_loopback for info in infos)


def allowed_hosts(host: str, port: int) -> frozenset[str]:
    """Every Host header a browser may send to this server bound to ``host``:``port``."""
    names = set(_LOOPBACK)
    if host in _WILDCARDS:
        # reachable under this machine's names and addresses too; only the token guards it
        machine = {socket.gethostname(), socket.getfqdn()}
        for name in list(machine):
            with contextlib.suppress(OSError):  # a name without an address adds nothing
                machine |= {str(info[4][0]) for info in socket.getaddrinfo(name, None)}
        names |= machine
    else:
        names.add(host)
    names = {f"[{n}]" if ":" in n and not n.startswith("[") else n for n in names}
    hosts = {f"{n.lower()}:{port}" for n in names}
    if port == 80:  # a browser leaves out the default port
        hosts |= {n.lower() for n in names}
    return frozenset(hosts)


class Guard:
    """ASGI middleware: Host, Origin and token checked on every request; security headers on
    every response. ``name`` begins each refusal's reason (``panda``, ``dashboard``)."""

    def __init__(self, app: ASGIApp, *, token: str, hosts: Iterable[str], name: str) -> None:
        self.app = app
        self.name = name
        self.token = check_token(token, name).encode()
        self.hosts = frozenset(hosts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, send)
            return
        if scope["type"] != "http":  # no websockets here
            await send({"type": "websocket.close", "code": 1008})
            return
        refusal = self.refusal(scope)
        if refusal is not None:
            status, reason = refusal
            await _json(send, status, {"reason": reason})
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = _with_security_headers(message.get("headers", []))
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def refusal(self, scope: Scope) -> tuple[int, str] | None:
        """(status, reason) when the request may not pass, else None."""
        headers, name = Headers(scope=scope), self.name
        if "upgrade" in headers:
            return (
                400,
                f"{name}: no protocol upgrade here (the page's updates are server-sent events)",
            )
        hosts = headers.getlist("host")
        if len(hosts) != 1 or hosts[0].lower() not in self.hosts:
            return 403, f"{name}: this server does not answer to Host {', '.join(hosts)!r}"
        origins = headers.getlist("origin")
        if origins and origins != [f"http://{hosts[0]}"]:
            return 403, f"{name}: requests from origin {origins[0]!r} are refused"
        if not secrets.compare_digest(self._token_of(scope, headers), self.token):
            return 401, f"{name}: a missing or wrong token: open the URL the command printed"
        return None

    @staticmethod
    def _token_of(scope: Scope, headers: Headers) -> bytes:
        authorization = headers.get("authorization", "")
        if authorization.lower().startswith("bearer "):
            return authorization[len("bearer ") :].strip().encode()
        query: bytes = scope.get("query_string", b"")
        return parse_qs(query.decode("latin-1")).get("token", [""])[0].encode()


def _with_security_headers(headers: Any) -> list[tuple[bytes, bytes]]:
    kept = [(k, v) for k, v in headers if k.lower().decode() not in SECURITY_HEADERS]
    kept += [(k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]
    if not any(k.lower() == b"cache-control" for k, _ in kept):
        kept.append((b"cache-control", b"no-store"))
    return kept


async def _json(send: Send, status: int, body: dict[str, Any]) -> None:
    content = json.dumps(body).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(content)).encode()),
    ]
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": _with_security_headers(headers),
        }
    )
    await send({"type": "http.response.body", "body": content})
