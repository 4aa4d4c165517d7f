"""Threads and worker processes a hostile user asks for (issue 27): each case ends in one line
naming what went wrong and what is allowed, with its exit status (``caviar.cli.main``), and the
study stored before is unchanged; a run its workers stopped is continued by the same command,
to the trials of an undisturbed run.

The base config is issue 27's: the digits, ``lr`` log in [1e-3, 1e-1], 2 epochs, 4 trials, a
pool of 4, one thread. Worker faults are staged through a transport whose workers are pools in
this process (real training, no process to start), and once with real worker processes.
"""

from __future__ import annotations

import itertools
import os
import resource
import shutil
import signal
import subprocess
import sys
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch

from caviar.cli.main import main
from caviar.core import threads
from caviar.core.records import FrozenTrial, TrialState
from caviar.distributed import PoolWorker, WorkerPlan
from caviar.distributed.local_workers import LocalTransport, WorkerDied
from caviar.study import Study

BASE = """\
[study]
threads = 1
[data]
dataset = "digits"
[space]
lr = {low = 1e-3, high = 1e-1, scale = "log"}
epochs = 2
[search]
trials = 4
population = 4
"""

#: how a run its workers stopped ends its line (exit status 75)
CONTINUE = "; the finished trials are kept: run the same command again to continue"


@pytest.fixture(autouse=True)
def restore_torch_threads() -> Iterator[None]:
    """A run sets this process's torch thread count; the next test gets its own."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.fixture
def two_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    """This process may run on 2 cores (so ``--devices auto`` is 2 workers), and no limit on
    the user's processes applies."""
    monkeypatch.setattr(threads, "machine_cores", lambda: 2)
    monkeypatch.setattr(threads, "_process_room", lambda: None)
    monkeypatch.setattr("caviar.distributed.cluster.machine_cores", lambda: 2)


def write_config(folder: Path, text: str = BASE) -> Path:
    path = folder / "base.toml"  # the study is named 'base'
    path.write_text(text)
    return path


def stored(db: Path) -> list[FrozenTrial]:
    study = Study.load("base", db)
    try:
        return study.trials()
    finally:
        study.close()


def results(trials: list[FrozenTrial]) -> list[tuple[Any, ...]]:
    """What must not depend on how a run was stopped and continued."""
    return [(t.number, t.state, t.value, dict(t.params), t.curve) for t in trials]


@dataclass(frozen=True)
class Runs:
    reference: list[tuple[Any, ...]]  # the 4 trials of an undisturbed run, in one process
    half: Path  # a study file holding the first 2 trials, complete


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    folder = tmp_path_factory.mktemp("runs")
    config = str(write_config(folder))
    reference, half = folder / "reference.db", folder / "half.db"
    for db, trials in ((reference, "4"), (half, "2")):
        argv = [config, "--storage", str(db), "--trials", trials, "--quiet", "--no-report"]
        assert main(["tune", *argv]) == 0
    assert [t.state for t in stored(half)] == [TrialState.COMPLETE] * 2
    return Runs(results(stored(reference)), half)


def half_done(runs: Runs, folder: Path) -> tuple[Path, Path]:
    """The config and a copy of the half-done study in ``folder``."""
    db = folder / "s.db"
    shutil.copyfile(runs.half, db)
    return write_config(folder), db


# -- 1. thread counts: at most what the machine can run -------------------------------------

REFUSED = "caviar: error: study.threads: must be at most 2, the cores this process may run on, "


@pytest.mark.parametrize(
    ("config", "flags", "bad"),
    [
        (BASE, ["--threads", "1000000"], 1000000),
        (BASE.replace("threads = 1", "threads = 1000000"), [], 1000000),
        (BASE, ["--threads", "1000000", "--dry-run"], 1000000),
        (BASE, ["--threads", "3"], 3),
        (BASE, ["--threads", "64", "--devices", "auto"], 64),
        (BASE, ["--threads", "64", "--devices", "cpu,cpu"], 64),
    ],
    ids=["flag", "config key", "dry run", "one above", "devices auto", "worker processes"],
)
@pytest.mark.usefixtures("two_cores")
def test_a_thread_count_above_the_cores_is_refused_before_anything_is_written(
    config: str,
    flags: list[str],
    bad: int,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``study.threads = 1000000`` started that many threads: OpenBLAS's pthread_create failed,
    caviar said "interrupted", and the process died with SIGSEGV."""
    monkeypatch.chdir(tmp_path)
    path = write_config(tmp_path, config)
    assert main(["tune", str(path), "--storage", "s.db", "--quiet", *flags]) == 2
    out, err = capsys.readouterr()
    assert err == f"{REFUSED}got {bad}\n" and out == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["base.toml"]  # no study, no report


def test_a_count_the_process_limit_cannot_hold_is_refused_below_the_cores(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """8 cores, but ulimit -u 100 with 96 in use: 4 threads left, so a count of 3 (which
    starts 4) and no more."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(threads, "machine_cores", lambda: 8)
    monkeypatch.setattr(threads, "_process_room", lambda: (100, 96))
    path = write_config(tmp_path)
    assert main(["tune", str(path), "--storage", "s.db", "--threads", "4", "--dry-run"]) == 2
    assert capsys.readouterr().err == (
        "caviar: error: study.threads: must be at most 3, the threads the limit on this user's "
        "processes leaves room for (ulimit -u 100, 96 in use), got 4\n"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["base.toml"]


def _at_most_a_few_thousand_threads() -> None:
    """In the child, before it runs: 16 GiB of address space and 8 MiB thread stacks, so that
    without the cap it could start about 2000 threads, not a million (root is not held by
    RLIMIT_NPROC, but is by these)."""
    resource.setrlimit(resource.RLIMIT_AS, (16 << 30, 16 << 30))
    resource.setrlimit(resource.RLIMIT_STACK, (8 << 20, 8 << 20))


@pytest.mark.slow
@pytest.mark.skipif(sys.platform != "linux", reason="the limits are Linux's")
def test_a_million_threads_on_a_real_run_is_one_line_not_a_crash(
    runs: Runs, tmp_path: Path
) -> None:
    config, db = half_done(runs, tmp_path)
    before = db.read_bytes()
    command = [sys.executable, "-m", "caviar.cli.start", "tune", str(config), "--quiet"]
    done = subprocess.run(
        [*command, "--storage", str(db), "--threads", "1000000"],
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=_at_most_a_few_thousand_threads,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert done.returncode == 2, done.stderr
    cores = len(os.sched_getaffinity(0))
    if threads._process_room() is None:  # no limit on processes here (or root): the cores
        assert done.stderr == (
            f"caviar: error: study.threads: must be at most {cores}, the cores this process "
            "may run on, got 1000000\n"
        )
    else:  # the limit may leave room for fewer
        assert done.stderr.startswith("caviar: error: study.threads: must be at most ")
        assert done.stderr.endswith(", got 1000000\n") and done.stderr.count("\n") == 1
    assert db.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["base.toml", "s.db"]


# -- 2. worker processes that die: one resumable line ---------------------------------------


class InProcessWorkers:
    """A transport whose workers are pools in this process, numbered in the order started
    (pid 4000 + number): ``dead_at_start`` die before they answer, ``dead_in_step`` under
    their first round, each as a killed process is reported."""

    lost: tuple[type[Exception], ...] = (WorkerDied,)
    failed_start: tuple[type[Exception], ...] = (WorkerDied,)

    def __init__(
        self,
        training: Any,
        *,
        threads: int,
        dead_at_start: Collection[int] = (),
        dead_in_step: Collection[int] = (),
        **options: Any,
    ) -> None:
        self.training, self.threads, self.options = training, threads, options
        self.dead_at_start, self.dead_in_step = dead_at_start, dead_in_step
        self.numbers = itertools.count()
        self.workers: dict[int, PoolWorker] = {}

    def start(self, plan: WorkerPlan) -> int:
        number = next(self.numbers)
        if number not in self.dead_at_start:
            self.workers[number] = PoolWorker(
                self.training, device=plan.device, threads=self.threads, **self.options
            )
        return number

    def call(self, handle: int, method: str, *args: Any) -> tuple[int, str, tuple[Any, ...]]:
        return handle, method, args

    def get(self, pending: list[Any], timeout: float | None = None) -> list[Any]:
        answers = []
        for number, method, args in pending:
            dead = self.dead_at_start if method == "describe" else self.dead_in_step
            if number in dead:
                raise WorkerDied(
                    f"the worker process {4000 + number} on cpu was killed by signal 9"
                )
            answers.append(getattr(self.workers[number], method)(*args))
        return answers

    def kill(self, handle: int) -> None:
        self.workers.pop(handle, None)

    def where(self) -> str:
        return "in this process"

    def close(self) -> None:
        self.workers.clear()


def workers(monkeypatch: pytest.MonkeyPatch, **faults: Collection[int]) -> None:
    """The next spread run's workers: pools in this process, with these faults."""

    def transport(training: Any, **options: Any) -> InProcessWorkers:
        return InProcessWorkers(training, **options, **faults)

    monkeypatch.setattr("caviar.distributed.launch.LocalTransport", transport)


def run(config: Path, db: Path) -> int:
    argv = [str(config), "--storage", str(db), "--devices", "auto", "--quiet", "--no-report"]
    return main(["tune", *argv])


@pytest.mark.slow
@pytest.mark.usefixtures("two_cores")
def test_a_worker_killed_while_starting_is_one_resumable_line_and_a_rerun_completes(
    runs: Runs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """It was a traceback ending ``WorkerDied: the worker process ... was killed by signal 9``
    (in SpreadPool.__init__ -> _ready)."""
    config, db = half_done(runs, tmp_path)
    before = results(stored(db))
    workers(monkeypatch, dead_at_start={1})
    assert run(config, db) == 75
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1] == (
        f"caviar: error: the worker process 4001 on cpu was killed by signal 9 while starting"
        f"{CONTINUE}"
    )
    assert "Traceback" not in err
    assert results(stored(db)) == before  # nothing asked, nothing told
    workers(monkeypatch)
    assert run(config, db) == 0
    assert results(stored(db)) == runs.reference


@pytest.mark.slow
@pytest.mark.usefixtures("two_cores")
def test_every_worker_lost_with_no_replacement_is_one_resumable_line_and_a_rerun_completes(
    runs: Runs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Both workers die in their first round, and the replacements too, while starting: it
    was a traceback ending ``WorkersLost: every worker was lost, and none could be started
    again``. The trials they held go back to the queue, with no epoch of theirs kept."""
    config, db = half_done(runs, tmp_path)
    before = results(stored(db))
    workers(monkeypatch, dead_in_step={0, 1}, dead_at_start={2, 3, 4, 5})
    assert run(config, db) == 75
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1] == (
        "caviar: error: every worker was lost (the last: the worker process 4001 on cpu was "
        f"killed by signal 9), and none could be started again{CONTINUE}"
    )
    assert "Traceback" not in err
    after = stored(db)
    assert results(after[:2]) == before
    assert len(after) == 4
    assert all(t.state is TrialState.QUEUED and not t.curve for t in after[2:])
    workers(monkeypatch)
    assert run(config, db) == 0
    assert results(stored(db)) == runs.reference


@pytest.mark.slow
@pytest.mark.usefixtures("two_cores")
def test_a_real_worker_process_killed_while_starting_is_one_resumable_line(
    runs: Runs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The first worker process is sent SIGKILL as soon as it exists, before it has imported
    torch; the study is unchanged."""
    config, db = half_done(runs, tmp_path)
    before = results(stored(db))
    start, killed = LocalTransport.start, []

    def start_and_kill_the_first(self: LocalTransport, plan: WorkerPlan) -> Any:
        worker = start(self, plan)
        if not killed:
            os.kill(worker.process.pid, signal.SIGKILL)
            killed.append(worker.process.pid)
        return worker

    monkeypatch.setattr(LocalTransport, "start", start_and_kill_the_first)
    assert run(config, db) == 75
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [
        f"caviar: error: the worker process {killed[0]} on cpu was killed by signal 9 while "
        f"starting{CONTINUE}"
    ]
    assert results(stored(db)) == before
