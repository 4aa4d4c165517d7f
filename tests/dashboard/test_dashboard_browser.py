"""The live dashboard in a real headless Chromium (Debian's ``chromium``, driven by playwright, as
tests/report/test_report_browser.py does), during a real ``caviar tune --serve`` in a process
of its own: the trial table grows while the study runs, "babysit this one" on a kept trial
starts ``caviar panda`` and shows its page (which answers; the trainer is stopped afterwards),
and once the tune is over the page stays as it was: a hovered point names its trial and values,
the filter narrows the table."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import caviar as caviar_package
from caviar.panda.lock import holder
from chromium import ARGS, CHROMIUM, sync_api_or_skip

sync_api = sync_api_or_skip()

pytestmark = pytest.mark.slow

#: a digits study slow enough to watch (about 30 s of training on one thread, two trials at a
#: time, while Chromium loads the page beside it) that keeps every trial's model, so the trial
#: babysat keeps its model however the later ones score
TRIALS = 30
CONFIG = f"""
[study]
name = "live"
threads = 1

[data]
dataset = "digits"

[space]
hidden_units = {{ scale = "int", low = 16, high = 128 }}
lr = {{ scale = "log", low = 1e-4, high = 0.1 }}
beta1 = {{ scale = "one_minus_log", low = 0.8, high = 0.99 }}
activation = {{ choice = ["relu", "tanh"] }}
epochs = 16

[search]
sampler = "random"
trials = {TRIALS}
population = 2
halving = false
keep_models = {TRIALS}
"""
#: (waits are functions: the page's policy forbids eval)
ROWS = "() => document.querySelectorAll('#trials tbody tr').length"
VISIBLE_ROWS = "() => [...document.querySelectorAll('#trials tbody tr')].filter(r => !r.hidden)"


class Output:
    """A process's output lines, read as they come (so its pipe never fills)."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self.lines: list[str] = []
        assert process.stdout is not None
        stream = process.stdout
        self._thread = threading.Thread(target=lambda: self.lines.extend(stream), daemon=True)
        self._thread.start()

    def wait_for(self, pattern: str, timeout: float) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                found = re.search(pattern, line)
                if found:
                    return found
            if self.process.poll() is not None:
                time.sleep(0.2)  # its last lines
                found = re.search(pattern, "".join(self.lines))
                if found:
                    return found
                break
            time.sleep(0.05)
        raise AssertionError(f"no line matching {pattern!r} in {self.lines}")


@pytest.fixture
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield browser
        browser.close()


def caviar(*argv: str, cwd: Path) -> subprocess.Popen[str]:
    """``caviar ARGV`` in ``cwd``, from the caviar under test (and so the panda it starts)."""
    source = str(Path(caviar_package.__file__).parents[1])
    path = os.pathsep.join(p for p in (source, os.environ.get("PYTHONPATH")) if p)
    return subprocess.Popen(
        [sys.executable, "-m", "caviar.cli.start", *argv],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONPATH": path, "PYTHONUNBUFFERED": "1"},
    )


def gone(pid: int, timeout: float) -> bool:
    """Whether process ``pid`` (not a child of this one) ends within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.2)
    return False


def test_the_live_dashboard_during_a_tune(browser: Any, tmp_path: Path) -> None:
    (tmp_path / "live.toml").write_text(CONFIG)
    tune = caviar("tune", "live.toml", "--serve", "--quiet", "--no-report", cwd=tmp_path)
    out = Output(tune)
    panda_pid, kept = None, None
    try:
        url = out.wait_for(r"live dashboard: (http://\S+)", 120)[1]
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        problems: list[str] = []
        page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
        page.goto(url)

        # the table grows while the study runs
        page.wait_for_function(ROWS + " > 0", timeout=60_000)
        first = page.evaluate(ROWS)
        assert first < TRIALS, page.locator("#live-line").text_content()
        page.wait_for_function(f"{ROWS} > {first}", timeout=60_000)
        assert " trials done, " in page.locator("#live-line").text_content()

        # a kept trial's row, clicked: "babysit this one" starts panda and links its page
        page.wait_for_function(
            "() => document.querySelectorAll('#trials tbody tr').length > 0 && "
            "document.getElementById('live-line').textContent.includes('trials done')",
            timeout=30_000,
        )
        kept = page.wait_for_function(
            "() => { const r = [...document.querySelectorAll('#trials tbody tr')]"
            ".find(r => r.cells[1].textContent === 'complete'); return r && r.dataset.number; }",
            timeout=60_000,
        ).json_value()
        try:
            response = babysit(page, int(kept))
        except AssertionError as error:
            raise AssertionError(f"{error}\nthe tune's output: {''.join(out.lines)}") from None
        link = page.locator("#panda-link")
        panda_url = link.get_attribute("href")
        assert panda_url == response["url"] and "?token=" in panda_url
        panda_pid = response["pid"]
        assert httpx.get(panda_url, timeout=10).status_code == 200  # panda's page answers
        assert httpx.get(panda_url.split("?")[0], timeout=10).status_code == 401

        # the tune ends; the page stays as it was, with every trial
        assert tune.wait(timeout=240) == 0, "".join(out.lines)
        out.wait_for(r"the dashboard ended with the tune; its page stays as it was", 10)
        page.wait_for_function(
            "() => document.getElementById('live-line').textContent.includes('server has ended')",
            timeout=30_000,
        )
        page.wait_for_function(f"{ROWS} === {TRIALS}", timeout=20_000)  # its last redraw
        ended = page.locator("#live-line").text_content()
        assert ended.startswith(f"{TRIALS} / {TRIALS} trials done, none running, best "), ended

        # a hovered point names its trial and its hyperparameters
        point = page.locator("#figure-scatter .plot[data-name='lr'] .scatterlayer .point").first
        point.scroll_into_view_if_needed()
        box = point.bounding_box()
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        tip = page.locator(".hoverlayer .hovertext").first
        tip.wait_for(timeout=10_000)
        text = tip.text_content()
        assert re.search(r"trial \d+ \(", text), text
        for name in ("lr = ", "beta1 = ", "hidden_units = "):
            assert name in text

        # typing in the filter narrows the table
        page.fill("#trials input[type=search]", "tanh")
        rows = page.evaluate(f"() => ({VISIBLE_ROWS})().map(r => r.textContent)")
        assert 0 < len(rows) < TRIALS and all("tanh" in r for r in rows)
        assert problems == []
    finally:
        if tune.poll() is None:
            tune.send_signal(signal.SIGINT)
            tune.wait(timeout=30)
        if kept is not None:  # a trainer started, whether or not its answer came back
            stop_trainer(tmp_path, f"live-trial-{kept}", panda_pid)


def stop_trainer(folder: Path, run: str, pid: int | None) -> None:
    """``caviar panda stop`` for ``run``; the trainer holding it (or ``pid``) killed if it
    has not ended within a minute."""
    try:
        trainer = holder(folder / "caviar.db", run)
    except Exception:  # no file, no table: no trainer holds the run
        trainer = None
    pids = {p for p in (pid, None if trainer is None else trainer.pid) if p is not None}
    if trainer is not None:
        caviar("panda", "stop", "--run", run, cwd=folder).wait(timeout=60)
    for each in pids:
        if not gone(each, 60):
            os.kill(each, signal.SIGKILL)


def babysit(page: Any, number: int) -> dict[str, Any]:
    """Click trial ``number``'s row, then "babysit this one"; the server's answer."""
    page.click(f"#trials tbody tr[data-number='{number}']")
    answers: list[Any] = []
    page.on("response", lambda r: answers.append(r) if r.url.endswith("/api/babysit") else None)
    page.click("#babysit")
    page.wait_for_function(  # the answer: a link to panda's page, or why not
        "() => !document.querySelector('.babysit-result').textContent.includes('starting')",
        timeout=180_000,
    )
    said = page.locator("#live-trial").text_content()
    assert answers and answers[0].status == 200, said
    page.locator("#panda-link").wait_for(timeout=10_000)
    body: dict[str, Any] = answers[0].json()
    return body
