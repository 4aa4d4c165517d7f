"""The live dashboard's server against a study told by hand in a study file: its data as strict
JSON, the page and its scripts, the security cases (as tests/panda/test_server.py has them for
panda), babysitting refused for a trial without a kept model, the store watched for changes and
pushed as events, and `caviar dashboard` on a study that is not there. (The page in a browser,
during a real `caviar tune --serve`: test_dashboard_browser.py.)"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from caviar.cli.main import main
from caviar.core.records import EpochRecord, TrialState
from caviar.dashboard.babysit import Babysitter
from caviar.dashboard.server import create_app, serve_study
from caviar.dashboard.watch import StudyWatch
from caviar.space import Choice, LogUniform
from caviar.study import Study

with warnings.catch_warnings():  # starlette 1.x would rather have httpx2 drive its TestClient
    warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient

TOKEN = "t0ken-for-the-tests-only"
PORT = 8765
ORIGIN = f"http://127.0.0.1:{PORT}"
BEARER = {"authorization": f"Bearer {TOKEN}"}
SPACE = {"lr": LogUniform(1e-4, 1e-1), "act": Choice(["relu", "tanh"])}


def tell_trials(study: Study, n: int, *, running: int = 0) -> None:
    """``n`` trials told with three epochs each, then ``running`` left running at epoch 1."""
    for t in study.ask(n + running):
        epochs = 1 if t.number >= n else 3
        for epoch in range(1, epochs + 1):
            score = (1.0 - abs(t.unit[0] - 0.6) / 2) * epoch / 3
            study.report(t, EpochRecord(epoch, 1.0 / epoch, score, 1.2 / epoch, score))
        if t.number < n:
            study.tell(t, score)


@pytest.fixture
def writer(tmp_path: Path) -> Iterator[Study]:
    """Study 'live' in a study file, as its search holds it: 4 complete trials, 2 running, 10
    planned."""
    study = Study.create("live", SPACE, storage=tmp_path / "s.db", attrs={"planned_trials": 10})
    tell_trials(study, 4, running=2)
    yield study
    study.close()


@pytest.fixture
def stored(writer: Study, tmp_path: Path) -> Path:
    return tmp_path / "s.db"


@pytest.fixture
def client(stored: Path) -> Iterator[TestClient]:
    watch = StudyWatch("live", stored)
    watch.poll()
    app = create_app(watch, Babysitter("live", stored), token=TOKEN, port=PORT)
    with TestClient(app, base_url=ORIGIN, headers=BEARER) as client:
        yield client
    watch.stop()


def refuse(name: str) -> Any:
    raise AssertionError(f"the dashboard's JSON holds {name}: not strict JSON")


# -- what it serves -------------------------------------------------------------------------------
def test_the_data_is_the_studys_as_strict_json(client: TestClient) -> None:
    response = client.get("/api/data")
    assert response.status_code == 200
    data = json.loads(response.text, parse_constant=refuse)
    assert data["version"] == 1
    assert data["study"]["study"] == "live"
    assert [t["number"] for t in data["study"]["trials"]] == list(range(6))
    assert sorted(data["study"]["trial_table"]["numbers"]) == list(range(6))
    progress = data["progress"]
    assert (progress["done"], progress["total"], progress["live"]) == (4, 10, True)
    assert progress["running"] == [
        {"trial": 4, "epoch": 1, "epochs": None},
        {"trial": 5, "epoch": 1, "epochs": None},
    ]
    assert progress["line"].startswith("4 / 10 trials done, 2 running (trial 4 at epoch 1, ")
    assert f"(trial {progress['best']['trial']})" in progress["line"]


def test_the_page_holds_the_data_and_takes_its_scripts_from_the_server(client: TestClient) -> None:
    page = client.get(f"/?token={TOKEN}", headers={"authorization": ""})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    (held,) = re.findall(
        r'<script type="application/json" id="study-data">(.*?)</script>', page.text
    )
    assert json.loads(held, parse_constant=refuse) == client.get("/api/data").json()["study"]
    sources = re.findall(r'<script src="([^"]+)"></script>', page.text)
    assert sources == [
        f"/static/{n}?token={TOKEN}" for n in ("plotly.min.js", "report.js", "live.js")
    ]
    assert page.text.count("<script") == 4  # the data and the three scripts: nothing inline runs
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert "https://" not in page.text
    for name in ("report.js", "live.js"):
        script = client.get(f"/static/{name}")
        assert script.status_code == 200
        assert script.headers["content-type"].startswith("application/javascript")
    assert "caviarReport" in client.get("/static/report.js").text
    assert client.get("/static/../server.py").status_code == 404


def test_a_trial_without_a_kept_model_is_not_babysat(client: TestClient) -> None:
    response = client.post("/api/babysit", json={"trial": 1}, headers={"origin": ORIGIN})
    assert response.status_code == 400
    assert response.json()["reason"] == (
        "trial 1: has no kept model to babysit: the search keeps the final models of its best "
        "complete trials only (search.keep_models); none has one yet"
    )


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"trial": "1"}, "babysit.trial: must be a trial's number, got '1'"),
        ({"trial": True}, "babysit.trial: must be a trial's number, got True"),
        ({"trial": 1, "command": "rm -rf /"}, "unknown field(s) ['command']"),
        ({}, "missing field(s) ['trial']"),
        ({"trial": 99}, "study 'live': has no trial 99"),
    ],
)
def test_a_bad_babysit_body_is_refused(client: TestClient, body: Any, reason: str) -> None:
    response = client.post("/api/babysit", json=body, headers={"origin": ORIGIN})
    assert response.status_code == 400
    assert reason in response.json()["reason"]


def test_reads_are_not_commands(client: TestClient) -> None:
    assert client.get("/api/babysit").status_code == 405
    assert client.post("/api/data", headers={"origin": ORIGIN}).status_code == 405


# -- security -------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/", "/api/data", "/api/events", "/static/live.js"])
@pytest.mark.parametrize(
    "auth",
    [{}, {"authorization": "Bearer wrong-token-wrong-token"}, {"authorization": "Basic abc"}],
    ids=["missing", "wrong", "not-bearer"],
)
def test_every_read_needs_the_token(stored: Path, path: str, auth: dict[str, str]) -> None:
    app = create_app(StudyWatch("live", stored), Babysitter("live", stored), token=TOKEN, port=PORT)
    with TestClient(app, base_url=ORIGIN) as anonymous:
        response = anonymous.get(path, headers=auth)
        assert response.status_code == 401
        assert response.json()["reason"].startswith("dashboard: a missing or wrong token")
        assert anonymous.get(path + "?token=wrong").status_code == 401
        post = anonymous.post("/api/babysit", json={"trial": 0}, headers={"origin": ORIGIN})
        assert post.status_code == 401


@pytest.mark.parametrize(
    "origin",
    ["http://evil.example", "null", f"http://localhost:{PORT + 1}", f"https://127.0.0.1:{PORT}"],
)
def test_a_foreign_origin_is_refused(client: TestClient, origin: str) -> None:
    response = client.post("/api/babysit", json={"trial": 0}, headers={"origin": origin})
    assert response.status_code == 403
    assert "origin" in response.json()["reason"]
    assert client.get("/api/data", headers={"origin": origin}).status_code == 403


@pytest.mark.parametrize("host", ["evil.example", f"evil.example:{PORT}", "127.0.0.1:80"])
def test_a_foreign_host_is_refused(client: TestClient, host: str) -> None:
    # DNS rebinding: evil.example resolves to 127.0.0.1, but the browser still sends its name
    response = client.post("/api/babysit", json={"trial": 0}, headers={"host": host})
    assert response.status_code == 403
    assert "Host" in response.json()["reason"]
    assert client.get("/api/data", headers={"host": host}).status_code == 403


def test_an_oversized_body_is_refused(client: TestClient) -> None:
    raw = b'{"trial": 0, "pad": "' + b"x" * 20_000 + b'"}'
    response = client.post(
        "/api/babysit",
        content=raw,
        headers={"content-type": "application/json", "origin": ORIGIN},
    )
    assert response.status_code == 413
    assert response.json()["reason"] == "dashboard: a request body is at most 16384 bytes"


def test_an_upgrade_is_refused(client: TestClient) -> None:
    headers = {"connection": "Upgrade", "upgrade": "websocket"}
    response = client.get("/api/events", headers=headers)
    assert response.status_code == 400
    assert "no protocol upgrade" in response.json()["reason"]


def test_no_cors_and_safe_headers(client: TestClient) -> None:
    response = client.get("/api/data", headers={"origin": ORIGIN})
    assert not [h for h in response.headers if h.lower().startswith("access-control-")]
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "no-referrer"


# -- the store watched ----------------------------------------------------------------------------
def test_the_watch_redraws_only_when_the_store_changes(stored: Path, writer: Study) -> None:
    watch = StudyWatch("live", stored)
    try:
        assert watch.poll() and watch.version == 1
        assert not watch.poll() and watch.version == 1  # nothing told: nothing drawn again
        writer.tell(4, 0.5)
        assert watch.poll() and watch.version == 2
        _, data = watch.current()
        assert data is not None and data["progress"]["done"] == 5
    finally:
        watch.stop()


def test_a_study_not_begun_is_waited_for(tmp_path: Path) -> None:
    """The file is not touched until the search says the study is stored."""
    begun = threading.Event()
    watch = StudyWatch("later", tmp_path / "s.db", begun=begun)
    assert not watch.poll() and watch.current() == (0, None)
    Study.create("later", SPACE, storage=tmp_path / "s.db").close()
    assert not watch.poll()
    begun.set()
    assert watch.poll() and watch.current()[1] is not None
    watch.stop()


def test_the_page_of_a_study_not_begun_waits_for_its_data(tmp_path: Path) -> None:
    """`caviar tune --serve` serves before its search creates the study."""
    watch = StudyWatch("later", tmp_path / "s.db", begun=threading.Event())
    watch.poll()
    app = create_app(watch, Babysitter("later", tmp_path / "s.db"), token=TOKEN, port=PORT)
    with TestClient(app, base_url=ORIGIN, headers=BEARER) as client:
        page = client.get("/").text
        assert '<script type="application/json" id="study-data">null</script>' in page
        data = client.get("/api/data").json()
        assert data["study"] is None
        assert (
            data["progress"]["line"] == f"waiting for study 'later' to begin in {tmp_path / 's.db'}"
        )
    watch.stop()


def events(lines: Iterator[str]) -> Iterator[dict[str, Any]]:
    """The ``study`` events of a server-sent event stream, decoded."""
    kind, data = None, ""
    for line in lines:
        if line.startswith("event: "):
            kind = line[len("event: ") :]
        elif line.startswith("data: "):
            data = line[len("data: ") :]
        elif line == "" and kind == "study":
            yield json.loads(data, parse_constant=refuse)
            kind, data = None, ""


@pytest.mark.slow
def test_a_trial_told_is_pushed_within_two_seconds(
    stored: Path, writer: Study, capfd: pytest.CaptureFixture[str]
) -> None:
    with serve_study("live", stored) as dashboard:
        base, token = dashboard.url.split("/?")[0], dashboard.server.token
        with httpx.stream("GET", f"{base}/api/events?token={token}", timeout=10) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            received = events(response.iter_lines())
            assert next(received)["progress"]["done"] == 4

            started = time.monotonic()
            threading.Timer(0.2, lambda: writer.tell(5, state=TrialState.PRUNED)).start()
            second = next(received)
            assert time.monotonic() - started < 2.5  # polled every second
            assert second["progress"]["done"] == 5
            assert [t["state"] for t in second["study"]["trials"]][5] == "pruned"

        # a WebSocket attempt on the real server: 400, and nothing printed in the terminal
        request = (
            f"GET /ws?token={token} HTTP/1.1\r\nHost: 127.0.0.1:{dashboard.server.port}\r\n"
            f"Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
            f"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        )
        with socket.create_connection(("127.0.0.1", dashboard.server.port), timeout=5) as sock:
            sock.sendall(request.encode())
            answer = ""
            while not answer.endswith("}"):
                answer += sock.recv(65536).decode("latin-1")
        assert answer.startswith("HTTP/1.1 400 ") and "dashboard: no protocol upgrade" in answer
    out, err = capfd.readouterr()
    assert "upgrade" not in (out + err).lower() and "websocket" not in (out + err).lower()


# -- the command ----------------------------------------------------------------------------------
def test_a_study_that_does_not_exist_is_one_line(
    stored: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["dashboard", "nope", "--storage", str(stored)]) == 2
    err = capsys.readouterr().err
    assert err == f"caviar: error: no study named 'nope' in {stored}\n"
    assert main(["dashboard", "live", "--storage", str(stored.parent / "none.db")]) == 2
    assert capsys.readouterr().err.count("\n") == 1
