"""The babysitting server's HTTP API against a fake run: controls, bad values, the security cases,
static files and the event stream. (The page itself: test_browser.py.)"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
import warnings
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from _fake_controller import FakeController

from caviar.panda.server import create_app, serve
from caviar.panda.view import label, lineage, short, view
from caviar.web.security import allowed_hosts, is_loopback

with warnings.catch_warnings():  # starlette 1.x would rather have httpx2 drive its TestClient
    warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient


TOKEN = "t0ken-for-the-tests-only"
PORT = 8765
ORIGIN = f"http://127.0.0.1:{PORT}"
BEARER = {"authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def run() -> FakeController:
    return FakeController(epochs=3)


@pytest.fixture
def client(run: FakeController) -> Iterator[TestClient]:
    app = create_app(run, token=TOKEN, port=PORT)
    with TestClient(app, base_url=ORIGIN, headers=BEARER) as client:
        yield client


def post(client: TestClient, path: str, body: Any = None, **headers: str) -> httpx.Response:
    return client.post(path, json=body, headers={"origin": ORIGIN, **headers})


# -- reads and controls ---------------------------------------------------------------------------
def test_state_is_the_controllers(client: TestClient, run: FakeController) -> None:
    response = client.get("/api/state")
    assert response.status_code == 200
    assert response.json() == run.state()


def test_set_records_a_command(client: TestClient, run: FakeController) -> None:
    response = post(client, "/api/set", {"changes": {"lr": 0.003}})
    assert response.status_code == 200, response.text
    (command,) = response.json()["commands"]
    assert (command["key"], command["old"], command["new"]) == ("lr", 1e-3, 0.003)
    assert run.calls == [("set", {"lr": 0.003})]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"changes": {"lr": -1}}, r"set\.lr: must be a number in \(0, inf\), got -1"),
        ({"changes": {"lr": 0.01, "hidden_units": 5}}, "set.hidden_units: may not change mid-run"),
        ({"changes": {"lr": [0.1]}}, r"set\.lr: must be a number in \(0, inf\), got \[0\.1\]"),
        ({"changes": {}}, r"set: give at least one of \['lr'"),
        ({"changes": [["lr", 0.1]]}, r"set\.changes: must be an object of changes, got \[\["),
        ({"changes": {"lr": 0.01}, "extra": 1}, r"unknown field\(s\) \['extra'\]"),
        ({"lr": 0.01}, r"unknown field\(s\) \['lr'\]; allowed: \['changes'\]"),
        ({}, r"missing field\(s\) \['changes'\]"),
        ([1, 2], "must be a JSON object"),
    ],
)
def test_a_bad_set_is_refused_and_nothing_recorded(
    client: TestClient, run: FakeController, body: Any, reason: str
) -> None:
    response = post(client, "/api/set", body)
    assert response.status_code == 400
    assert re.search(reason, response.json()["reason"]), response.json()
    assert run.calls == []
    assert not run.state()["commands"]


@pytest.mark.parametrize(
    ("raw", "content_type", "status"),
    [
        (b'{"changes": {"lr": NaN}}', "application/json", 400),
        (b"{not json", "application/json", 400),
        (b'{"changes": {"lr": 0.01}}', "text/plain", 400),
        (b'{"changes": {"lr": 0.01}, "pad": "' + b"x" * 20_000 + b'"}', "application/json", 413),
    ],
)
def test_bodies_are_json_objects_of_bounded_size(
    client: TestClient, run: FakeController, raw: bytes, content_type: str, status: int
) -> None:
    response = client.post(
        "/api/set", content=raw, headers={"content-type": content_type, "origin": ORIGIN}
    )
    assert response.status_code == status, response.text
    assert response.json()["reason"]
    assert run.calls == []


def test_rollback_starts_a_branch(client: TestClient, run: FakeController) -> None:
    response = post(client, "/api/rollback", {"epoch": 2, "mode": "fresh"})
    assert response.status_code == 200, response.text
    assert response.json() == {"branch": 1}
    assert run.calls == [("rollback", (2, None, "fresh"))]
    branches = client.get("/api/state").json()["branches"]
    assert branches[1] == {**branches[1], "id": 1, "parent": 0, "from_epoch": 2, "mode": "fresh"}


def test_a_rollback_without_branch_or_mode_takes_the_controls_defaults(
    client: TestClient, run: FakeController
) -> None:
    response = post(client, "/api/rollback", {"epoch": 1})
    assert response.status_code == 200, response.text
    assert run.calls == [("rollback", (1, None, "exact"))]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"epoch": "2"}, "rollback epoch: must be an integer in [0, inf), got '2'"),
        ({"epoch": True}, "rollback epoch: must be an integer in [0, inf), got True"),
        ({"epoch": -1}, "rollback epoch: must be an integer in [0, inf), got -1"),
        (
            {"epoch": 2, "mode": "warm"},
            "rollback mode: must be one of ['exact', 'fresh'], got 'warm'",
        ),
        ({"epoch": 2, "mode": None}, "rollback mode: must be one of ['exact', 'fresh'], got None"),
        ({"epoch": 2, "branch": 7}, "rollback branch: no such branch, got 7"),
        ({"epoch": 9}, "rollback epoch: no snapshot of branch 0, got 9"),
        ({"epoch": 2, "path": "/etc/passwd"}, "unknown field(s) ['path']"),
    ],
)
def test_a_bad_rollback_is_refused(
    client: TestClient, run: FakeController, body: dict[str, Any], reason: str
) -> None:
    response = post(client, "/api/rollback", body)
    assert response.status_code == 400
    assert reason in response.json()["reason"]
    assert run.calls == []


@pytest.mark.parametrize(
    ("action", "status"), [("pause", "paused"), ("resume", "running"), ("stop", "stopped")]
)
def test_pause_resume_stop(
    client: TestClient, run: FakeController, action: str, status: str
) -> None:
    response = post(client, f"/api/{action}")
    assert response.status_code == 200, response.text
    assert run.calls == [(action, None)]
    assert run.state()["run"]["status"] == status
    assert post(client, f"/api/{action}", {"force": True}).status_code == 400


def test_a_diverged_loss_reads_as_null(client: TestClient, run: FakeController) -> None:
    run._state["curves"]["0"][0]["train_loss"] = float("nan")  # lr blew the loss up
    assert client.get("/api/state").json()["curves"]["0"][0]["train_loss"] is None


def test_reads_are_not_commands(client: TestClient) -> None:
    assert client.get("/api/set").status_code == 405
    assert client.post("/api/state", headers={"origin": ORIGIN}).status_code == 405


# -- security -------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/", "/api/state", "/api/events", "/static/plotly.min.js"])
@pytest.mark.parametrize(
    "auth",
    [{}, {"authorization": "Bearer wrong-token-wrong-token"}, {"authorization": "Basic abc"}],
    ids=["missing", "wrong", "not-bearer"],
)
def test_every_read_needs_the_token(run: FakeController, path: str, auth: dict[str, str]) -> None:
    app = create_app(run, token=TOKEN, port=PORT)
    with TestClient(app, base_url=ORIGIN) as anonymous:
        response = anonymous.get(path, headers=auth)
        assert response.status_code == 401
        assert "token" in response.json()["reason"]
        assert anonymous.get(path + "?token=wrong").status_code == 401


def test_commands_need_the_token(run: FakeController) -> None:
    app = create_app(run, token=TOKEN, port=PORT)
    with TestClient(app, base_url=ORIGIN) as anonymous:
        assert post(anonymous, "/api/set", {"changes": {"lr": 0.01}}).status_code == 401
        assert post(anonymous, "/api/stop").status_code == 401
    assert run.calls == []


def test_the_token_in_the_query(client: TestClient) -> None:
    assert client.get(f"/api/state?token={TOKEN}", headers={"authorization": ""}).status_code == 200


@pytest.mark.parametrize(
    "origin",
    ["http://evil.example", "null", f"http://localhost:{PORT + 1}", f"https://127.0.0.1:{PORT}"],
)
def test_a_foreign_origin_is_refused(client: TestClient, run: FakeController, origin: str) -> None:
    response = client.post("/api/set", json={"changes": {"lr": 0.01}}, headers={"origin": origin})
    assert response.status_code == 403
    assert "origin" in response.json()["reason"]
    assert client.get("/api/state", headers={"origin": origin}).status_code == 403
    assert run.calls == []


@pytest.mark.parametrize(
    "host", ["evil.example", f"evil.example:{PORT}", "127.0.0.1:80", "127.0.0.1"]
)
def test_a_foreign_host_is_refused(client: TestClient, run: FakeController, host: str) -> None:
    # DNS rebinding: evil.example resolves to 127.0.0.1, but the browser still sends its name
    response = client.post("/api/stop", headers={"host": host})
    assert response.status_code == 403
    assert "Host" in response.json()["reason"]
    assert client.get("/", headers={"host": host}).status_code == 403
    assert run.calls == []


@pytest.mark.parametrize("host", [f"localhost:{PORT}", f"[::1]:{PORT}", f"LOCALHOST:{PORT}"])
def test_loopback_names_are_this_server(client: TestClient, host: str) -> None:
    assert client.get("/api/state", headers={"host": host}).status_code == 200


def test_hosts_for_an_explicit_interface() -> None:
    assert "10.1.2.3:9000" in allowed_hosts("10.1.2.3", 9000)
    assert "10.1.2.3:9001" not in allowed_hosts("10.1.2.3", 9000)
    assert "[fe80::1]:9000" in allowed_hosts("fe80::1", 9000)


def test_no_cors_and_safe_headers(client: TestClient) -> None:
    for response in (
        client.get("/api/state", headers={"origin": ORIGIN}),
        client.options(
            "/api/set", headers={"origin": ORIGIN, "access-control-request-method": "POST"}
        ),
        client.get("/api/state", headers={"authorization": ""}),
    ):
        assert not [h for h in response.headers if h.lower().startswith("access-control-")]
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]


# -- static files ---------------------------------------------------------------------------------
def test_the_page_carries_its_token_and_local_scripts(client: TestClient) -> None:
    page = client.get(f"/?token={TOKEN}", headers={"authorization": ""})
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert f'<meta name="caviar-token" content="{TOKEN}">' in page.text
    assert f'src="/static/plotly.min.js?token={TOKEN}"' in page.text
    assert "https://" not in page.text  # no CDN


def test_the_page_offers_the_rollback_modes_with_exact_chosen(client: TestClient) -> None:
    page = client.get(f"/?token={TOKEN}", headers={"authorization": ""}).text
    assert (
        '<select id="rollback-mode"><option value="exact" selected>resume exact</option>'
        '<option value="fresh">fresh optimizer buffers</option></select>'
    ) in page


def test_static_files_with_the_token_only(client: TestClient) -> None:
    plotly_js = client.get(f"/static/plotly.min.js?token={TOKEN}", headers={"authorization": ""})
    assert plotly_js.status_code == 200
    assert plotly_js.headers["content-type"].startswith("application/javascript")
    assert len(plotly_js.content) > 1_000_000 and b"plotly" in plotly_js.content[:2000].lower()
    for name in ("page.js", "page.css"):
        assert client.get(f"/static/{name}").status_code == 200
    assert client.get("/static/../server.py").status_code == 404
    assert client.get("/static/plotly.min.js", headers={"authorization": ""}).status_code == 401


# -- the event stream, from a real server ---------------------------------------------------------
def events(lines: Iterator[str]) -> Iterator[dict[str, Any]]:
    """The ``state`` events of a server-sent event stream, decoded."""
    kind, data = None, ""
    for line in lines:
        if line.startswith("event: "):
            kind = line[len("event: ") :]
        elif line.startswith("data: "):
            data = line[len("data: ") :]
        elif line == "" and kind == "state":
            yield json.loads(data)
            kind, data = None, ""


def test_events_send_the_state_then_every_change(run: FakeController) -> None:
    url, server = serve(run)
    with server:
        assert url.startswith("http://127.0.0.1:") and url.endswith(f"/?token={server.token}")
        base = url.split("/?")[0]
        stream_url = f"{base}/api/events?token={server.token}"
        with httpx.stream("GET", stream_url, timeout=10) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            received = events(response.iter_lines())
            first = next(received)
            assert first["state"] == run.state()
            assert len(first["view"]["lines"][0]["epoch"]) == 3

            started = time.monotonic()
            threading.Timer(0.2, run.step).start()
            second = next(received)
            assert time.monotonic() - started < 1.5  # pushed within a second of the epoch
            assert second["state"]["epoch"] == 4
            assert second["state"]["version"] > first["state"]["version"]
    assert not server._thread.is_alive()


def test_the_served_api_refuses_strangers(run: FakeController) -> None:
    url, server = serve(run)
    with server:
        base = url.split("/?")[0]
        assert httpx.get(f"{base}/api/state").status_code == 401
        headers = {"authorization": f"Bearer {server.token}"}
        assert httpx.get(f"{base}/api/state", headers=headers).status_code == 200
        foreign = {**headers, "host": f"rebound.example:{server.port}"}
        assert httpx.get(f"{base}/api/state", headers=foreign).status_code == 403


# -- what the page draws --------------------------------------------------------------------------
def test_view_of_branches_and_markers(run: FakeController) -> None:
    run.set({"lr": 0.003})
    run.step()  # epoch 4 applies lr
    run.rollback(2, mode="fresh")
    run.step()
    state = run.state()
    assert [p["epoch"] for p in lineage(state, 1)] == [1, 2, 3]  # parent's 1, 2, then own 3
    assert [p["epoch"] for p in lineage(state, 0)] == [1, 2, 3, 4]
    drawn = view(state)
    assert [(row["id"], row["depth"], row["active"]) for row in drawn["tree"]] == [
        (0, 0, False),
        (1, 1, True),
    ]
    labels = [(m["label"], m["epoch"], m["on_active"]) for m in drawn["markers"]]
    assert labels == [("lr 1e-3 → 3e-3", 3, False), ("rollback → branch 1", 2, True)]
    assert (
        drawn["lines"][1]["active"] and drawn["lines"][0]["colour"] != drawn["lines"][1]["colour"]
    )


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1e-3, "1e-3"),
        (0.003, "3e-3"),
        (0.9, "0.9"),
        (1e-8, "1e-8"),
        (2.5e-4, "2.5e-4"),
        (0.0, "0"),
        (10, "10"),
        (True, "true"),
        ("step", "step"),
        (float("nan"), "nan"),
        (12500.0, "1.25e4"),
    ],
)
def test_short_values(value: Any, text: str) -> None:
    assert short(value) == text


def test_labels() -> None:
    assert label({"key": "beta1", "old": 0.9, "new": 0.95}) == "beta1 0.9 → 0.95"
    assert label({"key": "pause", "old": "running", "new": "paused"}) == "pause"
    assert label({"key": "rollback", "old": 0, "new": 2}) == "rollback → branch 2"


# -- what the server says to a stray request ------------------------------------------------------
def test_a_websocket_attempt_is_refused_quietly(
    run: FakeController, capfd: pytest.CaptureFixture[str]
) -> None:
    """It printed uvicorn's two warnings into the trainer's terminal (no WebSocket library)."""
    url, server = serve(run)
    with server:
        request = (
            f"GET /ws?token={server.token} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
            f"Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
            f"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        )
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
            sock.sendall(request.encode())
            answer = ""
            while not answer.endswith("}"):  # the head, then the JSON body
                answer += sock.recv(65536).decode("latin-1")
        assert answer.startswith("HTTP/1.1 400 "), answer
        assert "panda: no protocol upgrade here" in answer
        base = url.split("/?")[0]  # and the server goes on serving
        headers = {"authorization": f"Bearer {server.token}"}
        assert httpx.get(f"{base}/api/state", headers=headers).status_code == 200
    out, err = capfd.readouterr()
    assert "upgrade" not in (out + err).lower() and "websocket" not in (out + err).lower()


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("localhost", True),
        ("::1", True),
        ("0.0.0.0", False),
        ("::", False),
        ("", False),
        ("10.1.2.3", False),
    ],
)
def test_loopback_interfaces(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback
