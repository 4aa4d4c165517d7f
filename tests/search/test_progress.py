"""The live progress line: finished trials counted as they finish, the best *complete* trial, the
pruned and diverged counters, the budget left or an ETA; every expected line written by hand. On a
terminal the line fits its width: which fields survive at 40, 60, 80 and 120 columns.
(test_progress_terminal.py draws the bytes on an emulated terminal.)"""

from __future__ import annotations

import io

import pytest

from caviar.core.records import TrialState
from caviar.search.progress import Progress, columns


class Clock:
    """A clock that moves only when the test moves it."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def lines(stream: io.StringIO) -> list[str]:
    return stream.getvalue().splitlines()


def test_a_log_gets_a_line_at_start_first_finish_every_interval_and_close() -> None:
    clock, out = Clock(), io.StringIO()
    p = Progress("book", 5, stream=out, interval=10.0, clock=clock)
    p.resume(0, None)  # t=0: printed
    clock.now = 5
    p.epochs_done(4, running=4)  # 5 s after the last line: not printed
    clock.now = 20
    p.trial_finished(TrialState.COMPLETE, 0.5)  # the first finish: printed
    clock.now = 25
    p.trial_finished(TrialState.PRUNED, 0.9)  # 5 s: not printed; a pruned value is not a best
    clock.now = 30
    p.trial_finished(TrialState.DIVERGED, 0.95)  # 10 s: printed; a diverged value neither
    clock.now = 35
    p.trial_finished(TrialState.COMPLETE, 0.4)
    clock.now = 38
    p.trial_finished(TrialState.COMPLETE, 0.625)
    clock.now = 39
    p.epochs_done(2, running=0)  # 9 s: not printed
    clock.now = 45
    p.close()  # printed
    assert lines(out) == [
        "caviar book: trials 0/5 done, 0 training  best val acc -  pruned 0  diverged 0  "
        "elapsed 0:00  ETA ?",
        # ETA: 4 trials left at 20 s per trial; the finished member left the 4 training
        "caviar book: trials 1/5 done, 3 training  best val acc 0.5000  pruned 0  diverged 0  "
        "elapsed 0:20  ETA 1:20",
        # 2 left at 30 s / 3 trials = 10 s each; 3 of the 4 members finished
        "caviar book: trials 3/5 done, 1 training  best val acc 0.5000  pruned 1  diverged 1  "
        "elapsed 0:30  ETA 0:20",
        "caviar book: trials 5/5 done, 0 training  best val acc 0.6250  pruned 1  diverged 1  "
        "elapsed 0:45  ETA 0:00",
    ]
    assert p.model_epochs == 6
    assert (p.finished, p.pruned, p.diverged, p.best) == (5, 1, 1, 0.625)


def test_trials_that_finish_in_waves_get_an_eta_from_the_pace_of_epochs() -> None:
    """A pool of 4 starts 8 trials of 3 epochs in two waves, a round (one epoch of each
    member) every 2 s after 2 s of start-up. When the first wave ends at 6 s, 4 trials of 3
    epochs are left: 12 model-epochs at the pace since the first round, (12 - 4) / (6 - 2) =
    2 a second, so 6 s. By the count of finished trials it would be 7 x 6 s = 42 s."""
    clock, out = Clock(), io.StringIO()
    p = Progress("w", 8, stream=out, interval=10.0, clock=clock)
    for now in (2, 4, 6):
        clock.now = now
        p.epochs_done(4, running=4)
    p.trial_finished(TrialState.COMPLETE, 0.5, epochs=3)
    assert lines(out)[-1] == (  # the first member to finish left the pool
        "caviar w: trials 1/8 done, 3 training  best val acc 0.5000  pruned 0  diverged 0  "
        "elapsed 0:06  ETA 0:06"
    )
    for _ in range(3):
        p.trial_finished(TrialState.COMPLETE, 0.5, epochs=3)
    assert p.time_left() == 6.0
    clock.now = 9  # the pace slowed: 12 - 4 epochs in 7 s since the first round
    p.epochs_done(4, running=4)  # 16 done, 8 left at 12 / 7 a second
    assert p.time_left() == 8 / (12 / 7)
    p.trial_finished(TrialState.PRUNED, None, epochs=1)  # trials now take 13 / 5 epochs
    assert p.time_left() == (8 * 13 / 5 - 16) / (12 / 7)


def test_a_failed_trial_counts_as_finished_and_as_failed() -> None:
    """The line shows failed trials once there are any (a run used to end with `pruned 0
    diverged 0` and say nothing of 5 failed trials of 12)."""
    clock, out = Clock(), io.StringIO()
    p = Progress("f", 3, stream=out, clock=clock, interval=0)
    clock.now = 12
    p.trial_finished(TrialState.COMPLETE, 0.5)
    p.trial_finished(TrialState.FAILED, None)
    assert lines(out) == [
        "caviar f: trials 1/3 done, 0 training  best val acc 0.5000  pruned 0  diverged 0  "
        "elapsed 0:12  ETA 0:24",
        "caviar f: trials 2/3 done, 0 training  best val acc 0.5000  pruned 0  diverged 0  "
        "failed 1  elapsed 0:12  ETA 0:06",
    ]


def test_a_time_budget_shows_the_budget_left_not_an_eta() -> None:
    clock, out = Clock(), io.StringIO()
    p = Progress("b", 20, stream=out, clock=clock, timeout=90.0)
    p.resume(0, None)
    clock.now = 30
    p.trial_finished(TrialState.COMPLETE, 0.75)
    clock.now = 100  # past the budget: none left, never negative
    p.close()
    assert lines(out) == [
        "caviar b: trials 0/20 done, 0 training  best val acc -  pruned 0  diverged 0  "
        "elapsed 0:00  budget left 1:30",
        "caviar b: trials 1/20 done, 0 training  best val acc 0.7500  pruned 0  diverged 0  "
        "elapsed 0:30  budget left 1:00",
        "caviar b: trials 1/20 done, 0 training  best val acc 0.7500  pruned 0  diverged 0  "
        "elapsed 1:40  budget left 0:00",
    ]


def test_an_unbounded_search_prints_no_total() -> None:
    clock, out = Clock(), io.StringIO()
    with_budget = Progress("u", None, stream=out, clock=clock, timeout=60.0)
    without = Progress("u", None, stream=out, clock=clock)
    clock.now = 15
    with_budget.trial_finished(TrialState.COMPLETE, 0.5)
    without.trial_finished(TrialState.COMPLETE, 0.5)
    assert lines(out) == [
        "caviar u: trials 1 done, 0 training  best val acc 0.5000  pruned 0  diverged 0  "
        "elapsed 0:15  budget left 0:45",
        # no total: nothing to estimate from
        "caviar u: trials 1 done, 0 training  best val acc 0.5000  pruned 0  diverged 0  "
        "elapsed 0:15  ETA ?",
    ]


def test_a_continued_study_counts_its_earlier_trials_and_best() -> None:
    clock, out = Clock(), io.StringIO()
    p = Progress("c", 10, stream=out, clock=clock)
    p.resume(3, 0.7)
    clock.now = 60
    p.trial_finished(TrialState.COMPLETE, 0.65)  # worse than the earlier best
    assert lines(out) == [
        "caviar c: trials 3/10 done, 0 training  best val acc 0.7000  pruned 0  diverged 0  "
        "elapsed 0:00  ETA ?",
        # 10 - 3 - 1 = 6 left at 60 s each (only this run's trials set the pace)
        "caviar c: trials 4/10 done, 0 training  best val acc 0.7000  pruned 0  diverged 0  "
        "elapsed 1:00  ETA 6:00",
    ]


def test_hours_are_shown_as_h_mm_ss() -> None:
    clock = Clock()
    p = Progress("h", None, stream=io.StringIO(), clock=clock, timeout=4000.0)
    clock.now = 275
    assert p.time_left() == 3725.0
    assert p.line().endswith("elapsed 4:35  budget left 1:02:05")


def test_a_terminal_gets_one_line_redrawn_in_place(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "120")  # wide enough for the whole line
    clock, tty = Clock(), Terminal()
    p = Progress("d", 2, stream=tty, clock=clock, interval=1e9)
    p.resume(0, None)
    clock.now = 3600
    p.trial_finished(TrialState.COMPLETE, 0.5)
    clock.now = 3601
    p.trial_finished(TrialState.PRUNED, None)  # no interval on a terminal: redrawn at once
    p.close()
    first = (
        "caviar d: trials 0/2 done, 0 training  best val acc -  pruned 0  diverged 0  "
        "elapsed 0:00  ETA ?"
    )
    second = (
        "caviar d: trials 1/2 done, 0 training  best val acc 0.5000  pruned 0  diverged 0  "
        "elapsed 1:00:00  ETA 1:00:00"
    )
    third = (  # 3 characters shorter than the second: padded to wipe them
        "caviar d: trials 2/2 done, 0 training  best val acc 0.5000  pruned 1  diverged 0  "
        "elapsed 1:00:01  ETA 0:00"
    )
    assert tty.getvalue() == "\r" + first + "\r" + second + "\r" + third + "   " + "\n"


def test_disabled_progress_writes_nothing() -> None:
    clock, out = Clock(), io.StringIO()
    p = Progress("q", 2, stream=out, clock=clock, enabled=False)
    p.resume(0, None)
    p.trial_finished(TrialState.COMPLETE, 0.5)
    p.close()
    assert out.getvalue() == ""


def test_a_note_in_a_log_is_a_line_of_its_own_even_when_progress_is_off() -> None:
    """Notes say why a run waits or what it lost: --quiet turns off the progress, not them."""
    clock, out, quiet = Clock(), io.StringIO(), io.StringIO()
    p = Progress("n", 2, stream=out, clock=clock)
    p.resume(0, None)
    p.note("caviar: waiting for other processes: trial 1 of 'n' is held by h:12")
    Progress("n", 2, stream=quiet, clock=clock, enabled=False).note("caviar: a note")
    assert lines(out) == [
        "caviar n: trials 0/2 done, 0 training  best val acc -  pruned 0  diverged 0  "
        "elapsed 0:00  ETA ?",
        "caviar: waiting for other processes: trial 1 of 'n' is held by h:12",
    ]
    assert quiet.getvalue() == "caviar: a note\n"


def test_a_note_on_a_terminal_wipes_the_live_line_and_draws_it_again_below(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COLUMNS", "120")
    clock, tty = Clock(), Terminal()
    p = Progress("d", 2, stream=tty, clock=clock)
    p.resume(0, None)
    p.note("caviar: short")
    line = (
        "caviar d: trials 0/2 done, 0 training  best val acc -  pruned 0  diverged 0  "
        "elapsed 0:00  ETA ?"
    )
    wipe = " " * (len(line) - len("caviar: short"))
    assert tty.getvalue() == "\r" + line + "\r" + "caviar: short" + wipe + "\n" + "\r" + line


def test_the_members_training_drop_as_they_finish_and_are_none_when_all_are_done() -> None:
    """A run used to end on `96/96 done, 16 training`: the last round's members still counted
    until the round's epochs were told. A failed trial never joined the pool (its member could
    not be built), so it leaves the count as it was."""
    clock, out = Clock(), io.StringIO()
    p = Progress("t", 6, stream=out, clock=clock, interval=0)
    p.training(4)
    p.trial_finished(TrialState.COMPLETE, 0.5, epochs=2)
    p.trial_finished(TrialState.PRUNED, None, epochs=1)
    p.epochs_done(4, running=2)  # the round's epochs told: 2 in the pool
    p.trial_finished(TrialState.FAILED, None)  # filling the pool: this one could not be built
    p.training(3)  # the last trial joined the 2 left
    p.trial_finished(TrialState.DIVERGED, None, epochs=2)
    p.trial_finished(TrialState.COMPLETE, 0.75, epochs=3)
    p.trial_finished(TrialState.COMPLETE, 0.25, epochs=3)
    counts = [line.split(": ")[1].split("  ")[0] for line in lines(out)]
    assert counts == [
        "trials 1/6 done, 3 training",
        "trials 2/6 done, 2 training",
        "trials 2/6 done, 2 training",
        "trials 3/6 done, 2 training",
        "trials 4/6 done, 2 training",
        "trials 5/6 done, 1 training",
        "trials 6/6 done, 0 training",
    ]


def test_the_members_training_are_never_more_than_the_trials_left() -> None:
    p = Progress("s", 10, stream=io.StringIO(), clock=Clock())
    p.resume(7, None)
    p.training(16)  # a count from before the last trials finished
    assert "trials 7/10 done, 3 training" in p.line()


def midway(name: str = "book", *, timeout: float | None = None, diverged: int = 0) -> Progress:
    """96 trials on a pool of 16, 20 s in: 3 complete (the best 0.88), 2 pruned, 1 failed and
    ``diverged`` diverged, every trial 3 epochs; the pool full again."""
    clock = Clock()
    p = Progress(name, 96, stream=io.StringIO(), clock=clock, timeout=timeout, enabled=False)
    p.epochs_done(16, running=16)
    clock.now = 20
    states = [TrialState.COMPLETE] * 3 + [TrialState.PRUNED] * 2 + [TrialState.FAILED]
    for state in states + [TrialState.DIVERGED] * diverged:
        p.trial_finished(state, 0.88, epochs=3)
    p.epochs_done(0, running=16)
    return p


LONG = (
    "demo-fashion-mnist-trainsize6000-epochs5-trials16"  # a name `caviar tune --dataset ...` makes
)

# (progress, columns, the line): each line at most columns - 1 characters, written by hand.
FITTED = {
    "120 columns: the whole line, 119 characters": (
        midway(),
        120,
        "caviar book: trials 6/96 done, 16 training  best val acc 0.8800  pruned 2  diverged 0  "
        "failed 1  elapsed 0:20  ETA 5:40",
    ),
    "80: a zero count, explaining words, the elapsed time and `trials` go": (
        midway(),
        80,
        "caviar book: 6/96 done, 16 training  best 0.8800  pruned 2  failed 1  ETA 5:40",
    ),
    "60: then the members training and `caviar`": (
        midway(),
        60,
        "book: 6/96 done  best 0.8800  pruned 2  failed 1  ETA 5:40",
    ),
    "40: then every count and `done`; name, trials, best and ETA stay": (
        midway(),
        40,
        "book: 6/96  best 0.8800  ETA 5:40",
    ),
    "119: one column short of the whole line, which `diverged 0` gives": (
        midway(),
        119,
        "caviar book: trials 6/96 done, 16 training  best val acc 0.8800  pruned 2  failed 1  "
        "elapsed 0:20  ETA 5:40",
    ),
    "120 on a budget: `diverged 0` goes first": (
        midway(timeout=90.0),
        120,
        "caviar book: trials 6/96 done, 16 training  best val acc 0.8800  pruned 2  failed 1  "
        "elapsed 0:20  budget left 1:10",
    ),
    "80 on a budget: `budget left` is `left`": (
        midway(timeout=90.0),
        80,
        "caviar book: 6/96 done, 16 training  best 0.8800  pruned 2  failed 1  left 1:10",
    ),
    "40 on a budget": (midway(timeout=90.0), 40, "book: 6/96  best 0.8800  left 1:10"),
    "80 with a diverged trial: its count stays, the members training go": (
        midway(diverged=1),
        80,
        "caviar book: 7/96 done  best 0.8800  pruned 2  diverged 1  failed 1  ETA 5:40",
    ),
    "60 with a diverged trial: the failed count outlives pruned and diverged": (
        midway(diverged=1),
        60,
        "book: 7/96 done  best 0.8800  failed 1  ETA 5:40",
    ),
    "120 with a long name: whole, the members training gone": (
        midway(LONG),
        120,
        f"caviar {LONG}: 6/96 done  best 0.8800  pruned 2  failed 1  ETA 5:40",
    ),
    "80 with a long name: cut in its middle": (
        midway(LONG),
        80,
        "demo-fashion~hs5-trials16: 6/96 done  best 0.8800  pruned 2  failed 1  ETA 5:40",
    ),
    "60 with a long name: to 15 characters, not below 12, before the failed count goes": (
        midway(LONG),
        60,
        "demo-fa~rials16: 6/96 done  best 0.8800  failed 1  ETA 5:40",
    ),
    "40 with a long name: it grows again as the best value goes": (
        midway(LONG),
        40,
        "demo-fashio~s5-trials16: 6/96  ETA 5:40",
    ),
    "22: narrower than the shortest form, the name below 12": (
        midway(LONG),
        22,
        "de~16: 6/96  ETA 5:40",
    ),
    "15: then whole fields from the end": (midway(), 15, "b~k: 6/96"),
    "3: then the name at the edge": (midway(), 3, "b~"),
}


@pytest.mark.parametrize("case", FITTED)
def test_a_line_too_wide_for_the_terminal_drops_fields_in_order(case: str) -> None:
    progress, width, expected = FITTED[case]
    assert progress.line(width) == expected
    assert len(expected) <= width - 1  # the cursor never reaches the last column


@pytest.mark.parametrize(
    "progress", [midway(), midway(timeout=90.0), midway(diverged=1), midway(LONG)]
)
def test_a_line_never_reaches_the_last_column_at_any_width(progress: Progress) -> None:
    whole = progress.line()
    for width in range(1, len(whole) + 3):
        assert len(progress.line(width)) <= width - 1, width
    assert progress.line(len(whole) + 1) == whole


def test_the_width_is_the_columns_variable_else_the_terminal_else_80(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """As shutil.get_terminal_size finds it, but for the progress's own stream."""
    monkeypatch.setenv("COLUMNS", "57")
    assert columns(io.StringIO()) == 57
    for unusable in ("0", "wide", ""):
        monkeypatch.setenv("COLUMNS", unusable)
        assert columns(io.StringIO()) == 80  # no terminal behind a StringIO
    monkeypatch.delenv("COLUMNS")
    assert columns(io.StringIO()) == 80


def test_a_terminal_line_fits_80_columns_and_a_log_line_stays_whole(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A log has no width to fit and no `\\r` to redraw with: every line whole, one a line."""
    monkeypatch.delenv("COLUMNS", raising=False)
    clock, tty, log = Clock(), Terminal(), io.StringIO()
    for stream in (tty, log):
        clock.now = 0
        p = Progress("book", 96, stream=stream, clock=clock, interval=0)
        p.resume(0, None)
        clock.now = 30
        p.trial_finished(TrialState.COMPLETE, 0.5)
        p.close()
    assert tty.getvalue() == (
        "\rcaviar book: trials 0/96 done, 0 training  best val acc -  elapsed 0:00  ETA ?"
        "\rcaviar book: trials 1/96 done, 0 training  best 0.5000  elapsed 0:30  ETA 47:30\n"
    )  # 79 characters: `val acc` went, on 80 columns when no COLUMNS says otherwise
    assert "\r" not in log.getvalue()
    assert lines(log) == [
        "caviar book: trials 0/96 done, 0 training  best val acc -  pruned 0  diverged 0  "
        "elapsed 0:00  ETA ?",
        "caviar book: trials 1/96 done, 0 training  best val acc 0.5000  pruned 0  diverged 0  "
        "elapsed 0:30  ETA 47:30",
        "caviar book: trials 1/96 done, 0 training  best val acc 0.5000  pruned 0  diverged 0  "
        "elapsed 0:30  ETA 47:30",
    ]
