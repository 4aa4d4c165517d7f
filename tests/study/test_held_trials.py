"""Trials held by other processes: what a waiting run says about them, and the plain message a
process gets when it wakes up to find its trials taken over."""

import os
import re
import socket
import time

import pytest

from caviar import (
    EpochRecord,
    IntUniform,
    LogUniform,
    SearchSpace,
    SQLiteStorage,
    Study,
    TrialState,
)
from caviar.core.records import Trial
from caviar.storage import StaleTrialError
from caviar.study import HeldTrials, TrialsTakenOver

SPACE = SearchSpace({"lr": LogUniform(1e-4, 1.0), "units": IntUniform(2, 4)})
NOW = 2_000_000_000.0
HOST = socket.gethostname()


def exactly(message: str) -> str:
    return "^" + re.escape(message) + "$"


@pytest.fixture
def clock(monkeypatch):
    """The wall clock, set by the test."""

    class Clock:
        now = NOW

    monkeypatch.setattr(time, "time", lambda: Clock.now)
    return Clock


def plant(storage, numbers, owner: str) -> None:
    params = SPACE.from_unit((0.5, 0.5))
    storage.create_trials(
        "s", [Trial(n, params, SPACE.to_unit(params), seed=n) for n in numbers], owner=owner
    )


def test_trials_held_by_other_processes_are_described_with_their_countdown(tmp_path, clock):
    storage = SQLiteStorage(tmp_path / "s.db")
    study = Study.create("s", SPACE, storage=storage)
    alive = f"{HOST}:{os.getppid()}:cafe0001"  # a pid that is alive: the runner's parent
    clock.now = NOW - 40
    plant(storage, [3, 4], alive)
    clock.now = NOW - 10
    plant(storage, [5], "elsewhere:12:abcd0002")
    clock.now = NOW
    study.ask()  # the study's own trial is not listed
    held = study.held_elsewhere(stale_after=300.0)
    assert held == [
        HeldTrials(alive, (3, 4), alive=True, heartbeat_age=40.0, requeue_in=260.0),
        HeldTrials("elsewhere:12:abcd0002", (5,), alive=None, heartbeat_age=10.0, requeue_in=290.0),
    ]
    assert [h.describe("s") for h in held] == [
        f"trials [3, 4] of 's' are held by {HOST}:{os.getppid()} (a live process has that pid; "
        "its last heartbeat was 40 s ago): they are requeued if no heartbeat comes within 260 s",
        "trial 5 of 's' is held by elsewhere:12 (on another host; its last heartbeat was 10 s "
        "ago): it is requeued if no heartbeat comes within 290 s",
    ]


def test_a_trial_taken_over_while_this_process_slept_gets_a_plain_message(tmp_path, clock):
    path = tmp_path / "s.db"
    mine = Study.create("s", SPACE, storage=path)
    clock.now = NOW - 400
    (trial, other) = mine.ask(2)
    clock.now = NOW  # this process was stopped for 400 s: no heartbeat went out
    theirs = Study.load("s", path)
    assert theirs.recover(stale_after=300.0) == [0, 1]
    message = (
        f"trials [0] of study 's' were taken over by another process after this one "
        f"({HOST}:{os.getpid()}) sent no heartbeat for 400 s (was it paused or suspended?). "
        "They went back to the queue: whoever runs them keeps their results, and nothing "
        "was lost"
    )
    with pytest.raises(TrialsTakenOver, match=exactly(message)) as caught:
        mine.tell(trial, 0.5)
    assert isinstance(caught.value, StaleTrialError)
    assert caught.value.numbers == (0,)
    with pytest.raises(TrialsTakenOver, match=r"^trials \[1\] of study 's' were taken over"):
        mine.report(other, EpochRecord(1, val_accuracy=0.5))
    assert [t.number for t in theirs.ask(2)] == [0, 1]  # the queue hands them out again
    assert theirs.tell(0, 0.75).state is TrialState.COMPLETE


def test_a_takeover_without_a_pause_does_not_ask_about_one(tmp_path):
    path = tmp_path / "s.db"
    mine = Study.create("s", SPACE, storage=path)
    (trial,) = mine.ask()
    Study.load("s", path).recover(stale_after=-1.0)  # an impatient other process
    with pytest.raises(
        TrialsTakenOver,
        match=r"^trials \[0\] of study 's' were taken over by another process while this one "
        r"\(.*\) was sending heartbeats \(its last \d s ago\)\. They went back to the queue",
    ):
        mine.tell(trial, 0.5)


def test_telling_a_trial_twice_is_not_called_a_takeover(tmp_path):
    study = Study.create("s", SPACE, storage=tmp_path / "s.db")
    (trial,) = study.ask()
    study.tell(trial, 0.5)
    with pytest.raises(StaleTrialError) as caught:
        study.tell(trial, 0.5)
    assert not isinstance(caught.value, TrialsTakenOver)
