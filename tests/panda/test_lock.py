"""One trainer per run: the lock row in the study file, with fake holders written by hand (a live
one elsewhere, a dead process here, a silent one) and two trainers of one run in this process."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pytest
from _fake_holder import dead_pid, fake_holder

from caviar.panda import lock
from caviar.panda.lock import RunHeld, RunLock, holder
from caviar.panda.trainer import PandaRun
from caviar.storage import SQLiteStorage


@pytest.fixture
def study(tmp_path: Path) -> Path:
    path = tmp_path / "caviar.db"
    SQLiteStorage(path).close()
    return path


def test_a_live_holder_is_named_in_one_line(study: Path) -> None:
    described = fake_holder(study)
    with pytest.raises(RunHeld) as refused:
        RunLock(study, "sit").take()
    assert str(refused.value) == (
        f"panda run 'sit' in {study} is held by a trainer ({described}): one trainer per run; "
        f"stop it first (caviar panda stop --run sit), or train another run (--name)"
    )
    assert "host elsewhere, pid 4242, since 2026-12-07 " in described
    assert holder(study, "sit") is not None


def test_a_holder_whose_process_is_gone_is_taken_over(study: Path) -> None:
    pid = dead_pid()
    fake_holder(study, host=socket.gethostname(), pid=pid)
    assert holder(study, "sit") is None  # the controls see no trainer
    with RunLock(study, "sit") as taken:
        assert taken.took_over is not None
        gone, why = taken.took_over
        assert (gone.pid, why) == (pid, f"its process {pid} on this host is gone")
        now = holder(study, "sit")
        assert now is not None and now.token == taken.token


def test_a_silent_holder_is_taken_over_after_the_stale_time(study: Path) -> None:
    fake_holder(study, heartbeat=time.time() - 31)
    with RunLock(study, "sit") as taken:
        assert taken.took_over is not None
        assert taken.took_over[1].startswith("its last heartbeat was 31 s ago (stale after 30)")


def test_one_trainer_per_run_in_one_process_too_and_another_run_is_free(study: Path) -> None:
    with RunLock(study, "sit"):
        with pytest.raises(RunHeld, match=rf"host {socket.gethostname()}, pid \d+, since "):
            RunLock(study, "sit").take()
        with RunLock(study, "other") as other:
            assert other.took_over is None
    assert holder(study, "sit") is None  # released
    with RunLock(study, "sit") as again:
        assert again.took_over is None


def test_the_heartbeat_and_the_address_are_written(study: Path) -> None:
    with RunLock(study, "sit", heartbeat=0.05) as held:
        first = holder(study, "sit")
        assert first is not None and first.address is None
        held.set_address("http://127.0.0.1:8000/")
        time.sleep(0.3)
        later = holder(study, "sit")
        assert later is not None and later.address == "http://127.0.0.1:8000/"
        assert later.heartbeat > first.heartbeat and later.since == first.since


def test_a_holder_taken_over_notices_and_leaves_the_new_row(study: Path) -> None:
    held = RunLock(study, "sit", heartbeat=0.05).take()
    fake_holder(study)  # another trainer decided this one was gone
    assert held.lost.wait(5)
    held.release()
    found = holder(study, "sit")
    assert found is not None and found.token == "theirs"


@pytest.mark.slow
def test_a_second_trainer_of_a_run_is_refused_and_a_taken_over_one_stops(
    run: PandaRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two PandaRun objects of one run, as two trainers: the second is refused while the first
    holds it; a trainer whose row another one took stops at its next boundary."""
    monkeypatch.setattr(lock, "HEARTBEAT", 0.05)
    second = PandaRun.open(run.name, run.tree.where)
    run.hold()
    with pytest.raises(RunHeld, match=r"panda run 'babysat' .* is held by a trainer"):
        second.train(exit_when_finished=True)
    fake_holder(Path(run.tree.where), run="babysat")
    trainer = threading.Thread(target=run.train, daemon=True)
    trainer.start()
    trainer.join(timeout=30)
    assert not trainer.is_alive() and run.taken_over
    run.release()
