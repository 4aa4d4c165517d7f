"""The report of a small tuned study in a real headless Chromium (Debian's ``chromium``, driven by
playwright, as tests/panda/test_browser.py does): no script error and no request at 1280 and
390 px, no sideways scroll on a phone, a hovered point names its trial and values, the filter
narrows the table. Screenshots go to ``$CAVIAR_SCREENSHOTS`` if set (docs/report-*.png)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from caviar.report.importance import MIN_TRIALS
from caviar.search.job import tune
from chromium import ARGS, CHROMIUM, sync_api_or_skip

sync_api = sync_api_or_skip()

pytestmark = pytest.mark.slow

#: trials of the study: with halving, 9 of them complete, enough to rank their importance
TRIALS = 60  # enough that halving (1 in 9 through) completes the importance figure's 8

#: the page is drawn once every figure's div is a plotly plot and the trial table is filled
DRAWN = (
    "() => document.querySelectorAll('#figures .plot').length > 0 && "
    "[...document.querySelectorAll('#figures .plot')].every(d => d.classList.contains("
    "'js-plotly-plot')) && document.querySelectorAll('#trials tbody tr').length > 0"
)
VISIBLE_ROWS = "() => [...document.querySelectorAll('#trials tbody tr')].filter(r => !r.hidden)"


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`caviar tune`'s default search (tpe with halving) on the digits, small trials, and the
    report it writes at its end."""
    folder = tmp_path_factory.mktemp("report")
    config = {
        "study": {"name": "digits", "storage": str(folder / "s.db"), "seed": 0},
        "data": {"dataset": "digits", "train_size": 400, "test_size": 100},
        "space": {
            "lr": {"scale": "log", "low": 1e-3, "high": 0.3},
            "beta1": {"scale": "one_minus_log", "low": 0.8, "high": 0.99},
            "hidden_units": {"scale": "int", "low": 8, "high": 48},
            "activation": {"choice": ["relu", "tanh"]},
            "epochs": 4,
            "batch_size": 32,
        },
        "search": {"trials": TRIALS, "population": 8, "keep_models": 0},
    }
    study = tune(config, progress=False)
    complete = sum(t.state.value == "complete" for t in study.trials(curves=False))
    study.close()
    assert complete >= MIN_TRIALS, f"{complete} complete trials: the page would lack a figure"
    return folder / "caviar-reports" / "digits" / "index.html"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield browser
        browser.close()


def study_data(report: Path) -> dict[str, Any]:
    text = report.read_text(encoding="utf-8")
    start = text.index('id="study-data">') + len('id="study-data">')
    data: dict[str, Any] = json.loads(text[start : text.index("</script>", start)])
    return data


def centre(point: Any) -> tuple[float, float]:
    """Where a point of a plot is on the screen, scrolled into view."""
    point.scroll_into_view_if_needed()
    box = point.bounding_box()
    return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2


def opened(browser: Any, report: Path, width: int) -> tuple[Any, list[str]]:
    """The report in a page ``width`` px wide, drawn; what went wrong is collected: script
    errors, console errors, and any request that leaves the file (the page works offline)."""
    page = browser.new_page(viewport={"width": width, "height": 900})
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on(
        "request",
        lambda r: None if r.url.startswith("file:") else problems.append(f"request: {r.url}"),
    )
    page.goto(report.as_uri())
    page.wait_for_function(DRAWN, timeout=20_000)
    return page, problems


@pytest.mark.parametrize("width", [1280, 390])
def test_the_page_draws_offline_and_fits_the_screen(browser: Any, report: Path, width: int) -> None:
    page, problems = opened(browser, report, width)
    titles = page.eval_on_selector_all("#figures h2", "hs => hs.map(h => h.textContent)")
    assert titles[:3] == [
        "Best validation accuracy so far",
        "Validation accuracy against each hyperparameter",
        "Parallel coordinates",
    ]
    assert titles[-2:] == ["Which hyperparameter mattered", "Learning curves"]
    assert page.evaluate("() => document.documentElement.scrollWidth") <= width
    figures_top = page.evaluate("() => document.getElementById('figures').offsetTop")
    assert figures_top < page.evaluate("() => document.getElementById('trials').offsetTop")
    assert page.locator("#figure-curves .chips button.trial").count() == 5  # the best five
    folder = os.environ.get("CAVIAR_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"report-{width}.png"), full_page=True)
    assert problems == []
    page.close()


def test_hovering_a_point_names_its_trial_and_values(browser: Any, report: Path) -> None:
    page, problems = opened(browser, report, 1280)
    panels = {p["name"]: p for p in study_data(report)["figures"]["scatter"]["panels"]}
    (number,) = panels["lr"]["groups"][-1]["numbers"]  # the best trial's star
    star = page.locator("#figure-scatter .plot[data-name='lr'] .scatterlayer .trace").last
    page.mouse.move(*centre(star.locator(".point").first))
    tip = page.locator(".hoverlayer .hovertext").first
    tip.wait_for(timeout=5_000)
    text = tip.text_content()
    assert f"trial {number} (complete)" in text
    for name in ("lr = ", "beta1 = ", "hidden_units = ", "activation = "):
        assert name in text

    # a click on another trial's point adds its learning curves
    first = page.locator("#figure-scatter .plot[data-name='lr'] .scatterlayer .point").first
    page.mouse.click(*centre(first))
    page.wait_for_function(
        "() => document.querySelectorAll('#figure-curves .chips button.trial').length == 6"
    )
    assert problems == []
    page.close()


def test_the_filter_narrows_the_table_and_a_header_sorts_it(browser: Any, report: Path) -> None:
    page, problems = opened(browser, report, 390)
    states = [t["state"] for t in study_data(report)["trials"]]
    assert len(page.evaluate(VISIBLE_ROWS)) == len(states) == TRIALS
    page.fill("#trials input[type=search]", "complete")
    assert len(page.evaluate(VISIBLE_ROWS)) == states.count("complete") < len(states)
    page.fill("#trials input[type=search]", "pruned tanh")
    rows = page.eval_on_selector_all(
        "#trials tbody tr:not([hidden])", "rs => rs.map(r => r.textContent)"
    )
    assert rows and all("pruned" in r and "tanh" in r for r in rows)
    page.fill("#trials input[type=search]", "")

    page.click("#trials th:text-is('trial')")  # numbers sort as numbers: 0, 1, 2, ... 10
    first = page.eval_on_selector_all(
        "#trials tbody tr", "rs => rs.map(r => r.cells[0].textContent)"
    )
    assert first == [str(n) for n in range(TRIALS)]
    page.click(f"#trials tbody tr >> nth={TRIALS - 1}")  # a row adds its trial's curves
    assert f"trial {TRIALS - 1}" in page.locator("#figure-curves .chips").text_content()
    assert problems == []
    page.close()
