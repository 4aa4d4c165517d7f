"""What a run writes beside its numbers: strict JSON (null where a net diverged, said in words),
the threads it ran with, and figures that say what they show."""

from __future__ import annotations

import argparse
import importlib
import json
import math
from pathlib import Path
from typing import Any

import matplotlib
import pytest
import torch

from caviar.cli.experiment import add_parser, run
from caviar.core.errors import InvalidValue
from caviar.experiments import EXPERIMENTS, Experiment, Options, Result, run_experiment
from caviar.experiments.base import strict, title
from caviar.experiments.batchnorm_init import last_finite
from caviar.experiments.overfit import book_note
from caviar.experiments.pace import Pacer
from conftest import QuickRuns, refuse

matplotlib.use("Agg")


def strict_load(path: Path) -> Any:
    """The file as JavaScript's JSON.parse reads it: NaN and Infinity refused."""
    return json.loads(path.read_text(), parse_constant=refuse)


def test_strict_makes_every_non_finite_float_null() -> None:
    value = {"a": [1.0, math.nan, (math.inf, 2)], "b": "x", "c": {"d": -math.inf}}
    assert strict(value) == {"a": [1.0, None, [None, 2]], "b": "x", "c": {"d": None}}


def fake(numbers: dict[str, Any], drawn: dict[str, Any]) -> Experiment:
    return Experiment(
        "fake",
        "a run that diverged",
        lambda o: Result(numbers, ["t"]),
        lambda n, p: drawn.update(n),
    )


def test_a_nan_is_written_as_null_and_the_threads_are_recorded(tmp_path: Path) -> None:
    drawn: dict[str, Any] = {}
    numbers = {"curve": [0.5, math.nan], "diverged": ["diverged at epoch 2"], "data": "d"}
    run_experiment(fake(numbers, drawn), Options(out=tmp_path, threads=1), echo=lambda s: None)
    written = strict_load(tmp_path / "fake.json")
    assert written["curve"] == [0.5, None] and written["diverged"] == ["diverged at epoch 2"]
    assert drawn["curve"] == [0.5, None]  # the figure draws what the JSON holds
    assert written["meta"]["threads"] == {"setting": 1, "used": [1]}
    assert written["meta"]["data"] == "d"


def test_threads_above_the_cores_are_refused_before_the_run(tmp_path: Path) -> None:
    ran: list[Options] = []
    experiment = Experiment(
        "fake", "", lambda o: ran.append(o) or Result({}, []), lambda n, p: None
    )
    with pytest.raises(InvalidValue, match=r"^experiment\.threads: must be at most \d+, the "):
        run_experiment(experiment, Options(out=tmp_path, threads=10**6), echo=lambda s: None)
    assert not ran
    with pytest.raises(InvalidValue, match=r"experiment\.threads: must be 'auto' or an integer"):
        Options(threads=0)


def test_the_pacer_records_its_setting_and_the_counts_used() -> None:
    assert Pacer(1).record() == {"setting": 1, "used": [1]}
    try:
        auto = Pacer(None)  # the governor starts at the cores other work leaves free
        assert auto.record() == {"setting": "auto", "used": [auto.governor.threads]}
    finally:
        torch.set_num_threads(1)  # as the session's fixture set it


def test_the_pacer_asks_the_governor_at_most_once_a_second() -> None:
    now = [0.0]
    pacer = Pacer(1, clock=lambda: now[0])
    asked: list[float] = []
    pacer.governor.adjust = lambda: asked.append(now[0]) or 1  # type: ignore[method-assign]
    for t in (0.1, 0.5, 1.0, 1.5, 2.1, 2.2):
        now[0] = t
        pacer()
    assert asked == [1.0, 2.1] and pacer.used == {1}


def _parse(argv: list[str]) -> Any:
    p = argparse.ArgumentParser(prog="caviar")
    add_parser(p.add_subparsers(dest="command", required=True))
    return p.parse_args(argv)


def test_the_threads_flag_is_auto_by_default_and_named_when_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _parse(["experiment", "softmax"]).threads == "auto"
    assert _parse(["experiment", "softmax", "--threads", "1"]).threads == 1
    with pytest.raises(SystemExit):
        _parse(["experiment", "softmax", "--threads", "many"])
    assert "--threads: must be auto or an integer >= 1, got 'many'" in capsys.readouterr().err
    args = _parse(
        ["experiment", "softmax", "--quick", "--threads", "1000000", "--out", str(tmp_path)]
    )
    with pytest.raises(InvalidValue, match=r"^--threads: must be at most \d+, the cores"):
        run(args)


def test_a_figure_title_names_experiment_way_seeds_and_data() -> None:
    meta = {"experiment": "overfit", "way": "book", "quick": True, "seeds": [0, 1], "data": "d"}
    assert title({"meta": meta}) == "overfit --quick, way: book, seeds 0 1\nd"


def test_last_finite_marks_where_a_curve_stops() -> None:
    assert last_finite([0.1, 0.2, math.nan, math.nan]) == (2, 0.2)
    assert last_finite([0.1, 0.2]) is None and last_finite([math.nan]) is None


def test_the_books_figures_say_their_epochs() -> None:
    assert book_note("plain", 200).startswith("book, plain (200 epochs): train 1.000")
    assert book_note("dropout 0.2", 300).startswith("book, dropout 0.2 (301 epochs): ")
    assert book_note("plain", 300).startswith("book, plain: no figure at 300 epochs; after 200: ")


# -- the quick forms' output -----------------------------------------------------------------
def drawn(name: str, numbers: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Any:
    """The figure an experiment draws from ``numbers``, laid out and kept open."""
    import matplotlib.pyplot as plt  # deferred: matplotlib, for the figure tests only

    figures: list[Any] = []

    def keep(fig: Any, path: Path, numbers: Any = None) -> None:
        if numbers is not None:
            fig.suptitle(title(numbers))
        fig.tight_layout()
        fig.canvas.draw()
        figures.append(fig)

    module = importlib.import_module(EXPERIMENTS[name].draw.__module__)
    monkeypatch.setattr(module, "save_figure", keep)
    EXPERIMENTS[name].draw(numbers, Path("unused.png"))
    (fig,) = figures
    plt.close(fig)
    return fig


@pytest.mark.slow
@pytest.mark.parametrize("name", list(EXPERIMENTS))
def test_quick_json_is_strict_and_its_figure_is_titled(
    quick: QuickRuns, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    quick(name)
    numbers = strict_load(quick.root / f"{name}-caviar" / f"{name}.json")
    assert numbers["meta"]["threads"] == {"setting": 1, "used": [1]}
    heading = drawn(name, numbers, monkeypatch).get_suptitle()
    assert heading.startswith(f"{name} --quick, way: caviar, seed 0\n")
    assert numbers["meta"]["data"] and heading.split("\n")[1][:20] == numbers["meta"]["data"][:20]


@pytest.mark.slow
def test_batchnorm_init_says_where_a_net_diverged_and_marks_it(
    quick: QuickRuns, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = quick("batchnorm-init")
    diverged = result.numbers["diverged"]
    assert diverged and all("diverged at epoch" in words for words in diverged)
    assert diverged[0].startswith("no batch norm, W std 1, seed 0: diverged at epoch ")
    assert any(note.startswith("-: diverged") for note in result.notes)
    fig = drawn("batchnorm-init", result.numbers, monkeypatch)
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == ["batch norm", "no batch norm", "diverged"]
    # the book's loop goes on predicting one class: nothing diverged, nothing to explain
    book = quick("batchnorm-init", "book")
    assert book.numbers["diverged"] == []
    assert not any("diverged" in note for note in book.notes)


@pytest.mark.slow
def test_hparam_search_fills_its_rows_and_says_which_line_is_which(
    quick: QuickRuns, monkeypatch: pytest.MonkeyPatch
) -> None:
    numbers = quick("hparam-search").numbers
    fig = drawn("hparam-search", numbers, monkeypatch)
    panels = min(20, len(numbers["seeds"][0]["round1"]))
    assert len(fig.axes) == panels + 1  # the curves, then the scatter: no empty row
    assert fig.axes[panels].get_position().y0 < min(a.get_position().y0 for a in fig.axes[:panels])
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == ["validation", "training"]


@pytest.mark.slow
def test_random_vs_grid_legend_covers_no_point(
    quick: QuickRuns, monkeypatch: pytest.MonkeyPatch
) -> None:
    fig = drawn("random-vs-grid", quick("random-vs-grid").numbers, monkeypatch)
    points = fig.axes[0]
    legend = points.get_legend().get_window_extent()
    assert not legend.overlaps(points.get_window_extent())


@pytest.mark.slow
def test_dropout_quotes_the_books_figures_for_their_own_epochs(quick: QuickRuns) -> None:
    notes = quick("dropout").notes
    assert "book, plain: no figure at 300 epochs; after 200: train 1.000, test 0.756" in " ".join(
        notes
    )
    assert any(note.startswith("book, dropout 0.2 (301 epochs): ") for note in notes)
