"""The babysitting page in a real headless Chromium (Debian's ``chromium``, driven by playwright):
the curve grows, a learning-rate change made in the page shows as a marker, a rollback made in
the page starts a branch that the tree shows. Screenshots go to ``$CAVIAR_SCREENSHOTS`` if set."""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from _fake_controller import FakeController

from caviar.panda.server import serve
from caviar.panda.trainer import PandaRun
from chromium import ARGS, CHROMIUM, sync_api_or_skip

sync_api = sync_api_or_skip()

#: the number of points of branch 0's train-loss curve on the page, the labels of its markers
#: (JavaScript expressions; waits are written as functions, as the page's CSP forbids eval)
POINTS = "(document.getElementById('loss-chart').data?.[0]?.x.length ?? 0)"
ANNOTATIONS = "(document.getElementById('loss-chart').layout?.annotations ?? []).map(a => a.text)"


@pytest.fixture
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield browser
        browser.close()


@pytest.fixture
def shots() -> Path | None:
    folder = os.environ.get("CAVIAR_SCREENSHOTS")
    if not folder:
        return None
    path = Path(folder)
    path.mkdir(parents=True, exist_ok=True)
    return path


def screenshot(page: Any, shots: Path | None, name: str) -> None:
    if shots is not None:
        page.screenshot(path=str(shots / name), full_page=True)


def babysit(browser: Any, url: str, shots: Path | None, prefix: str) -> None:
    """Open the page and drive it: see the curve grow, set lr, roll back to epoch 1 of branch 0
    (fresh), pause and stop; no script error, no failed request but the refused value."""
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.goto(url)

    # 1. the curve grows, pushed by the server
    page.wait_for_function(f"() => {POINTS} >= 1", timeout=10_000)
    seen = page.evaluate(f"() => {POINTS}")
    page.wait_for_function(f"() => {POINTS} >= {seen + 2}", timeout=5_000)
    assert "running" in page.locator("#status").inner_text()

    # 2. a learning-rate change from the page: recorded, then a marker once applied
    page.fill("input[name=lr]", "3e-3")
    page.click("#set")
    page.wait_for_selector("#notice:not([hidden])")
    assert "lr 1e-3 → 3e-3" in page.locator("#notice").inner_text()
    page.wait_for_function(f"() => {ANNOTATIONS}.includes('lr 1e-3 → 3e-3')", timeout=5_000)
    marker = page.locator("#loss-chart .annotation-text", has_text="lr 1e-3 → 3e-3")
    assert marker.first.is_visible()
    screenshot(page, shots, f"{prefix}-1-lr-marker.png")

    # 3. a bad value is refused in the page
    page.fill("input[name=lr]", "-1")
    page.click("#set")
    page.wait_for_selector("#error:not([hidden])")
    assert "lr: must be a number in (0, inf)" in page.locator("#error").inner_text()
    page.fill("input[name=lr]", "")

    # 4. a rollback from the page: a new branch, overlaid and in the tree
    page.fill("#rollback-epoch", "1")
    page.select_option("#rollback-branch", "0")
    page.select_option("#rollback-mode", "fresh")
    page.click("#rollback")
    page.wait_for_selector("#tree li.active[data-branch='1']", timeout=5_000)
    assert "branch 1 · from branch 0 @ epoch 1, fresh" in page.locator("#tree").inner_text()
    page.wait_for_function(
        "() => document.getElementById('loss-chart').data"
        ".some(t => t.meta.branch === 1 && t.x.length >= 3)",
        timeout=5_000,
    )
    assert not page.locator("#error").is_visible()
    screenshot(page, shots, f"{prefix}-2-rollback-branch.png")

    # 5. pause and stop from the page
    page.click("#pause")
    page.wait_for_function(
        "() => document.getElementById('status').textContent.startsWith('paused')"
    )
    page.click("#stop")
    page.wait_for_function(
        "() => document.getElementById('status').textContent.startsWith('stopped')"
    )
    screenshot(page, shots, f"{prefix}-3-stopped.png")
    # the refused value (step 3) is the one failed request Chromium reports
    refused = "the server responded with a status of 400"
    assert [p for p in problems if refused not in p] == []


@pytest.mark.slow
def test_babysitting_a_fake_run(browser: Any, shots: Path | None) -> None:
    run = FakeController(epochs=1)
    url, server = serve(run)
    with server:
        run.tick(every=0.4, until=25)
        babysit(browser, url, shots, "fake")
    assert [c for c in run.calls if c[0] != "set"] == [
        ("rollback", (1, 0, "fresh")),
        ("pause", None),
        ("stop", None),
    ]
    assert [c for c in run.calls if c[0] == "set"] == [("set", {"lr": 0.003})]  # not the -1


@pytest.mark.slow
def test_babysitting_a_real_run(
    browser: Any, shots: Path | None, make_config: Callable[..., Any]
) -> None:
    """The same, with the real trainer (tiny net, one epoch every 0.3 s) and its stored tree."""
    run = PandaRun.create(make_config(epochs=100))
    controller = run.controller()
    done = threading.Event()

    def train() -> None:  # paced, so that the page sees epochs arrive
        while not done.is_set() and run.status != "stopped":
            run.step()
            done.wait(0.3)

    trainer = threading.Thread(target=train, daemon=True)
    url, server = serve(controller)
    with server:
        trainer.start()
        try:
            babysit(browser, url, shots, "real")
        finally:
            done.set()
            trainer.join(10)
    state = controller.state()
    commands = [(c["branch"], c["key"], c["new"]) for c in state["commands"]]
    assert commands[:2] == [(0, "lr", 0.003), (0, "rollback", 1)]
    assert [key for _, key, _ in commands[2:]] == ["pause", "stop"]
    assert [(b["id"], b["parent"], b["from_epoch"], b["mode"]) for b in state["branches"]] == [
        (0, None, None, None),
        (1, 0, 1, "fresh"),
    ]
    assert state["run"]["status"] == "stopped"


def test_chromium_is_debians() -> None:
    """The test drives the distribution's browser, not a downloaded one."""
    assert shutil.which("chromium") is not None or CHROMIUM.exists()
