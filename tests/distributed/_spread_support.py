"""What the spread tests share: a tiny study config, what must not depend on where a trial
ran, the check that every trial is whole, and finding worker processes."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from caviar.core.records import FrozenTrial, TrialState
from caviar.distributed import SpreadPool
from caviar.search.job import tune

EPOCHS = 3
HALVING = {"min_epochs": 1, "eta": 3}  # a rung at 1 epoch of 3


def config(
    tmp_path: Path, name: str, trials: int = 12, dtype: str = "float64", **search: Any
) -> dict[str, Any]:
    """240 training and 60 validation digits, 4 to 12 units, 3 epochs, one thread (so a
    worker's float results equal a one-thread process's bit for bit)."""
    return {
        "study": {
            "name": name,
            "storage": str(tmp_path / "s.db"),
            "threads": 1,
            "dtype": dtype,
            "seed": 3,
        },
        "data": {"dataset": "digits", "train_size": 300, "test_size": 50},
        "space": {
            "lr": {"scale": "log", "low": 1e-3, "high": 3e-1},
            "hidden_units": {"scale": "int", "low": 4, "high": 12},
            "epochs": EPOCHS,
            "batch_size": 60,
        },
        "search": {"trials": trials, "population": 4, **search},
    }


def results(trials: Sequence[FrozenTrial]) -> list[tuple[Any, ...]]:
    """What must not depend on where a trial ran: number, state, value, params, curve."""
    return [(t.number, t.state, t.value, dict(t.params), t.curve) for t in trials]


def assert_whole(trials: Sequence[FrozenTrial], n: int) -> None:
    """Trials 0..n-1, each finished once, with a curve of epochs 1, 2, ... without a gap or a
    duplicate point: all its epochs if complete, up to its rung if pruned."""
    assert [t.number for t in trials] == list(range(n))
    for t in trials:
        assert t.state in (TrialState.COMPLETE, TrialState.PRUNED), t
        end = t.attrs["rung"] if t.state is TrialState.PRUNED else EPOCHS
        assert [r.epoch for r in t.curve] == list(range(1, end + 1)), t.number


def processes_running(marker: bytes) -> list[int]:
    """Pids of this machine's processes whose command line contains ``marker``."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if marker in cmdline:
                pids.append(int(entry.name))
    return pids


def wait_for(condition: Callable[[], bool], seconds: float) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.05)
    return False


def start_driver(raw: dict[str, Any], tmp_path: Path) -> tuple[subprocess.Popen[bytes], Path]:
    """``caviar tune`` of ``raw`` in another process; it and its study file."""
    path = tmp_path / f"{raw['study']['name']}.yaml"
    path.write_text(yaml.safe_dump(raw))
    driver = subprocess.Popen(
        [sys.executable, "-m", "caviar.cli.start", "tune", str(path), "--quiet", "--no-report"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return driver, Path(raw["study"]["storage"])


def training(driver: subprocess.Popen[bytes], db: Path) -> Callable[[], bool]:
    """Whether the driver's running trials have epochs stored (read cheaply: it is quick)."""

    def check() -> bool:
        if driver.poll() is not None:
            raise AssertionError(f"the driver ended before it was killed ({driver.returncode})")
        try:
            with contextlib.closing(sqlite3.connect(db, timeout=0.1)) as con:
                (n,) = con.execute(
                    "SELECT COUNT(*) FROM epochs JOIN trials USING (trial_id) "
                    "WHERE trials.state = 'running'"
                ).fetchone()
        except sqlite3.Error:
            return False  # not created yet, or busy
        return bool(n)

    return check


def check_a_killed_worker_loses_nothing(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    **spread: Any,
) -> str:
    """Kill a worker's process after the first round of a run spread as ``spread`` says: its
    members go back to the queue and train again from their seeds on a new worker, and every
    trial's curve and value equal the undisturbed single-process run's (no halving). Returns
    what the run wrote to stderr."""
    one = tune(config(tmp_path, "one"), progress=False, report=False).trials()
    step, rounds, killed, pids = SpreadPool.step, [0], [], []

    def kill_in_round_two(self: SpreadPool, should_stop: Any = None) -> Any:
        rounds[0] += 1
        if rounds[0] == 2:
            worker = self.workers[min(self.workers)]
            killed.extend(sorted(worker.keys))
            pids.append(worker.info.pid)
            os.kill(worker.info.pid, signal.SIGKILL)
        return step(self, should_stop)

    monkeypatch.setattr(SpreadPool, "step", kill_in_round_two)
    spread_trials = tune(config(tmp_path, "two", **spread), progress=True, report=False).trials()
    err = capsys.readouterr().err
    assert killed and "was lost" in err and "go back to the queue" in err
    assert results(spread_trials) == results(one)
    assert_whole(spread_trials, 12)
    assert {t.number for t in spread_trials if t.attempt == 1} == set(killed)
    workers = {t.attrs["worker"] for t in spread_trials}  # the survivor and the new one
    assert len(workers) == 2 and f"(pid {pids[0]})" not in " ".join(workers)
    return err
