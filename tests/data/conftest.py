"""Fixtures for the data tests: hand-built IDX bytes and a local HTTP server standing in for
the dataset mirrors (the tests never touch the internet)."""

from __future__ import annotations

import contextlib
import http.server
import struct
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest


def build_idx(code: int, shape: tuple[int, ...], payload: bytes) -> bytes:
    """IDX bytes written by hand from the format's description: 0, 0, type, ndim, sizes, data."""
    return bytes([0, 0, code, len(shape)]) + struct.pack(f">{len(shape)}I", *shape) + payload


@pytest.fixture
def idx() -> Callable[[int, tuple[int, ...], bytes], bytes]:
    return build_idx


@dataclass
class Mirrors:
    """A local server: GET /<mirror>/<file> serves ``root/<mirror>/<file>``.

    ``cut[path] = k`` sends the full Content-Length but only ``k`` bytes, then hangs up;
    ``stall`` paths answer only when the test is over; ``requests`` logs every path asked for.
    """

    root: Path
    base: str = ""
    cut: dict[str, int] = field(default_factory=dict)
    stall: set[str] = field(default_factory=set)
    requests: list[str] = field(default_factory=list)
    done: threading.Event = field(default_factory=threading.Event)

    def url(self, mirror: str) -> str:
        return f"{self.base}/{mirror}/"

    def put(self, mirror: str, name: str, data: bytes) -> None:
        (self.root / mirror).mkdir(parents=True, exist_ok=True)
        (self.root / mirror / name).write_bytes(data)


@pytest.fixture
def mirrors(tmp_path: Path) -> Iterator[Mirrors]:
    state = Mirrors(root=tmp_path / "www")
    state.root.mkdir()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.requests.append(self.path)
            if self.path in state.stall:
                state.done.wait(timeout=10.0)
            file = state.root / self.path.lstrip("/")
            if ".." in self.path or not file.is_file():
                self.send_error(404)
                return
            body = file.read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            with contextlib.suppress(ConnectionError):  # the client may have given up
                self.wfile.write(body[: state.cut.get(self.path, len(body))])
            self.close_connection = True

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.base = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        state.done.set()
        server.shutdown()
        server.server_close()
        thread.join()
