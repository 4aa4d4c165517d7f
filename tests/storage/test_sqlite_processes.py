"""SQLiteStorage under real processes: two writers at once, and workers killed with SIGKILL.

The workers are tests/storage/_worker.py, run with this interpreter. Their objective is
10 x + k and epoch e of E reports val_accuracy = value * e / E: both are restated here, so every
stored number is checked against a hand formula.
"""

import itertools
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from caviar import (
    GridSampler,
    InMemoryStorage,
    IntUniform,
    RandomSampler,
    SearchSpace,
    SQLiteStorage,
    Study,
    TrialState,
    Uniform,
)
from caviar.samplers import GridWarning

WORKER = Path(__file__).with_name("_worker.py")
SPACE = SearchSpace({"x": Uniform(0.0, 1.0), "k": IntUniform(1, 4)})


def start(db: Path, mode: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(WORKER), str(db), "study", mode, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(proc: subprocess.Popen, timeout: float = 60.0) -> None:
    _, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err


def wait_for(condition, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def check_curve(trial, epochs: int) -> None:
    assert [r.epoch for r in trial.curve] == list(range(1, epochs + 1))
    for r in trial.curve:
        assert r.val_accuracy == pytest.approx(trial.value * r.epoch / epochs)
        assert r.train_loss == pytest.approx(1.0 / r.epoch)


@pytest.mark.slow
def test_two_writer_processes_lose_nothing(tmp_path):
    db = tmp_path / "two.db"
    Study.create("study", SPACE, storage=db, sampler=RandomSampler(seed=9), seed=9).close()
    epochs, per_worker = 4, 40
    ready = [tmp_path / "ready-a", tmp_path / "ready-b"]
    go = tmp_path / "go"
    procs = [
        start(db, "fixed", "--trials", str(per_worker), "--epochs", str(epochs),
              "--sleep", "0.002", "--tag", tag, "--ready", str(r), "--go", str(go))
        for tag, r in zip("ab", ready, strict=True)
    ]  # fmt: skip
    wait_for(lambda: all(r.exists() for r in ready))
    go.touch()
    for proc in procs:
        finish(proc)

    trials = SQLiteStorage(db).get_trials("study")
    assert [t.number for t in trials] == list(range(2 * per_worker))
    assert all(t.state is TrialState.COMPLETE for t in trials)
    assert all(t.attempt == 0 for t in trials)
    by_worker = {tag: [t.number for t in trials if t.attrs["worker"] == tag] for tag in "ab"}
    assert [len(v) for v in by_worker.values()] == [per_worker, per_worker]
    # they really ran at the same time: neither took one block of numbers
    assert by_worker["a"] != list(range(per_worker))
    assert by_worker["a"] != list(range(per_worker, 2 * per_worker))
    for t in trials:
        assert t.value == 10.0 * t.params["x"] + t.params["k"]
        check_curve(t, epochs)
    # and each number has the configuration a single sequential worker would have had
    alone = Study.create("alone", SPACE, storage=InMemoryStorage(), sampler=RandomSampler(9))
    assert [dict(t.params) for t in trials] == [dict(t.params) for t in alone.ask(80)]


def running_under(db: Path, pid: int) -> list[int]:
    storage = SQLiteStorage(db)
    try:
        return [
            t.number
            for t in storage.get_trials("study", states=[TrialState.RUNNING], curves=False)
            if t.owner.split(":")[1] == str(pid)
        ]
    finally:
        storage.close()


@pytest.mark.slow
def test_workers_killed_at_random_moments_resume_without_loss(tmp_path):
    db = tmp_path / "kill.db"
    xs, ks = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0], [1, 2, 3, 4]
    grid = GridSampler({"x": len(xs), "k": len(ks)})  # 24 points: x slowest, k fastest
    n, epochs = len(xs) * len(ks), 5
    with pytest.warns(GridWarning):
        Study.create("study", SPACE, storage=db, sampler=grid).close()
    drain = ("drain", "--batch", "2", "--epochs", str(epochs), "--sleep", "0.03")

    rng = random.Random(1234)
    killed_while_running: list[int] = []
    for _ in range(4):
        proc = start(db, *drain)
        # kill only once it holds trials, then at a random moment within the next 0.4 s
        wait_for(lambda p=proc: running_under(db, p.pid) or p.poll() is not None)
        time.sleep(rng.uniform(0.0, 0.4))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()  # reaped: its pid no longer exists, so the next worker sees it dead
        killed_while_running += running_under(db, proc.pid)
    finish(start(db, *drain))

    trials = SQLiteStorage(db).get_trials("study")
    assert [t.number for t in trials] == list(range(n))
    assert all(t.state is TrialState.COMPLETE for t in trials)
    expected = list(itertools.product(xs, ks))
    for t in trials:
        assert (t.params["x"], t.params["k"]) == pytest.approx(expected[t.number])
        assert t.value == 10.0 * t.params["x"] + t.params["k"]
        check_curve(t, epochs)
    # every trial a kill left running was re-queued once per kill, and nothing else was
    assert killed_while_running, "no kill caught a running trial"
    attempts = {t.number: t.attempt for t in trials if t.attempt}
    assert attempts == {m: killed_while_running.count(m) for m in set(killed_while_running)}
