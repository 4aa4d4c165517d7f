"""The budget's end game: members whose next decision cannot come before the deadline go back to
the queue, so the others finish; a new trial starts only if its first decision fits.

The plan is checked against hand-worked cases; the search against schedules worked out by hand
on a fake clock where every member-epoch costs the same seconds (the test's trials all have the
same parameters: 4 to 12 units, padded to 32)."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from test_tune_pool import config, restore_torch_threads  # noqa: F401 (autouse fixture)

from caviar.core.records import TrialState
from caviar.nn.pool import Pool
from caviar.search.endgame import Running, epochs_to_decision, plan
from caviar.search.halving import Halving
from caviar.search.job import tune
from caviar.study import Study

# (done, epochs, halving) -> epochs to the next decision, by hand
DECISIONS = {
    "no halving: the end": ((2, 5, None), 3),
    "halving 1, 3: the first rung": ((0, 5, Halving(1, 3)), 1),
    "halving 1, 3: from 1 to 3": ((1, 5, Halving(1, 3)), 2),
    "halving 1, 3: from 3 to the end": ((3, 5, Halving(1, 3)), 2),
    "halving 1, 3: a rung at the end is the end": ((1, 3, Halving(1, 3)), 2),
    "halving 2, 2 of 9: from 4 to 8": ((4, 9, Halving(2, 2)), 4),
    "complete": ((5, 5, None), 0),
}


@pytest.mark.parametrize("case", list(DECISIONS))
def test_epochs_to_the_next_decision(case: str) -> None:
    (done, epochs, halving), expected = DECISIONS[case]
    assert epochs_to_decision(done, epochs, halving) == expected


def test_the_plan_keeps_the_members_furthest_along_and_what_fits_after_them() -> None:
    running = [
        Running(key=4, done=0, cost=5.0),
        Running(key=1, done=3, cost=20.0),
        Running(key=2, done=3, cost=30.0),  # fits no more after key 1: 20 + 30 > 45
        Running(key=3, done=1, cost=15.0),  # fits after key 1: 35; key 4's 5 then leaves 5
    ]
    release, spare = plan(running, 45.0)
    assert release == [2]
    assert spare == pytest.approx(5.0)
    assert plan(running, 100.0) == ([], pytest.approx(30.0))
    assert plan(running, 0.0) == ([1, 2, 3, 4], 0.0)
    assert plan([], 7.0) == ([], 7.0)


class RoundClock:
    """Fake seconds that move only when a round ends: ``per_epoch`` for each member in it (the
    first round ``first`` instead, if given: a round slowed by something else)."""

    def __init__(self, per_epoch: float, first: float | None = None) -> None:
        self.now, self.per_epoch, self.first = 0.0, per_epoch, first

    def __call__(self) -> float:
        return self.now

    def cost(self, members: int) -> float:
        per_epoch, self.first = (self.first or self.per_epoch), None
        return per_epoch * members


def run(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    timeout: float,
    clock: RoundClock | None = None,
    **search: Any,
) -> tuple[Study, list[str], dict[int, set[int]]]:
    """A search of 3-epoch trials, every member-epoch 10 fake seconds (or as ``clock`` says);
    the study, the notes it printed, and the epochs each trial trained (as reported, requeued
    ones included)."""
    clock = clock or RoundClock(10.0)
    step: Callable[..., Any] = Pool.step

    def timed(self: Pool, *args: Any, **kwargs: Any) -> Any:
        members = len(self)
        result = step(self, *args, **kwargs)
        clock.now += clock.cost(members)
        return result

    trained: dict[int, set[int]] = {}
    report = Study.report_epochs

    def spy(self: Study, rows: Any) -> None:
        rows = list(rows)
        for trial, record in rows:
            number = trial if isinstance(trial, int) else trial.number
            trained.setdefault(number, set()).add(record.epoch)
        report(self, rows)

    monkeypatch.setattr(Pool, "step", timed)
    monkeypatch.setattr(Study, "report_epochs", spy)
    cfg = config(tmp_path, space={"epochs": 3}, trials=8, timeout=timeout, **search)
    line = io.StringIO()
    study = tune(cfg, progress=True, report=False, clock=clock, stream=line)
    notes = [s for s in line.getvalue().splitlines() if s.startswith("caviar: ") and "p:" not in s]
    return study, notes, trained


def test_a_budget_too_short_for_two_members_finishes_one_instead_of_cutting_both(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # By hand: trials 0 and 1 start at 0; round 1 ends at 20 s, with 35 s left and each needing
    # 2 more epochs (20 s). Trial 0 is kept (20 s; 15 left), trial 1 does not fit: back to the
    # queue. No new trial fits (30 s). Trial 0 alone: rounds end at 30 and 40 s, complete; the
    # run ends there. Without the end game both would train on and be cut at 55 s.
    study, notes, trained = run(tmp_path, monkeypatch, timeout=55, population=2)
    states = {t.number: t.state for t in study.trials()}
    assert states == {0: TrialState.COMPLETE, 1: TrialState.QUEUED}
    assert trained == {0: {1, 2, 3}, 1: {1}}
    assert notes == [
        "caviar: trial 1 cannot reach a rung or the end in the budget left; back to the queue, "
        "so the others finish"
    ]


def test_one_slow_round_does_not_end_the_search(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # By hand: the first round of trials 0 and 1 takes 40 s a member-epoch (something else held
    # the machine), 80 s, and leaves 120 s: trial 0 is kept for 80 s, trial 1 goes back to the
    # queue, and a new trial (120 s at that pace) does not fit. The next rounds take 5 s a
    # member-epoch: measured again, the time left holds trial 1 and then the others. (A search
    # that closed for good after the slow round completed trial 0 alone, and ended at 90 s.)
    clock = RoundClock(5.0, first=40.0)
    study, notes, trained = run(tmp_path, monkeypatch, 200, clock, population=2)
    complete = [t.number for t in study.trials() if t.state is TrialState.COMPLETE]
    assert complete == list(range(8))
    assert trained[1] == {1, 2, 3}  # trained again from its seed after going back
    assert notes == [
        "caviar: trial 1 cannot reach a rung or the end in the budget left; back to the queue, "
        "so the others finish"
    ]
    assert clock.now <= 200


def test_no_new_trial_starts_that_cannot_finish(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # By hand: rounds of two end at 20, 40, 60 s; trials 0 and 1 are complete at 60 s with 10 s
    # left, and a new trial needs 30 s: none starts (the asked ones go back to the queue), and
    # the run ends at 60 s with nothing trained in vain.
    study, notes, trained = run(tmp_path, monkeypatch, timeout=70, population=2)
    trials = study.trials()
    assert {t.number: t.state for t in trials if t.state is not TrialState.QUEUED} == {
        0: TrialState.COMPLETE,
        1: TrialState.COMPLETE,
    }
    assert all(t.curve == () for t in trials if t.state is TrialState.QUEUED)
    assert set(trained) == {0, 1}
    assert notes == []


def test_under_halving_a_new_trial_needs_only_its_first_rung_to_fit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Halving at 1 epoch (eta 2) of 3. By hand, a pool of one: trial 0 reaches rung 1 at 10 s
    # (kept: the first value), then needs 2 epochs to its end (20 s): 30 s. Trial 1 starts at
    # 30 s with 15 s left; its first rung costs 10 s, so it starts, and is judged at 40 s with
    # 5 s left: below trial 0 it is pruned, above it it would need 20 s and go back.
    study, _, trained = run(
        tmp_path, monkeypatch, timeout=45, population=1, halving={"min_epochs": 1, "eta": 2}
    )
    trials = {t.number: t for t in study.trials()}
    assert trials[0].state is TrialState.COMPLETE
    assert trained[0] == {1, 2, 3}
    assert trained[1] == {1}
    if trials[1].state is TrialState.PRUNED:  # below trial 0 at the rung
        assert trials[1].attrs["rung"] == 1
        assert trials[1].attrs["rung_value"] < trials[0].curve[0].val_accuracy
    else:  # kept at the rung, then 20 s to its end with 5 s left: back to the queue
        assert trials[1].state is TrialState.QUEUED and trials[1].curve == ()
    assert set(trained) == {0, 1}
