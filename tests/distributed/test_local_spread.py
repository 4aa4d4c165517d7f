"""A study spread over worker processes of this machine (``--devices cpu,cpu`` without Ray):
the same trials as one process, errors that reach the driver, and nothing lost or left running
when a worker or the driver is killed.

Tiny trials: 240 training and 60 validation digits, 4 to 12 units, 3 epochs, one thread per
worker and in the single-process run (so the float results are bit for bit equal).
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
import torch
import yaml
from _spread_support import (
    HALVING,
    assert_whole,
    check_a_killed_worker_loses_nothing,
    config,
    processes_running,
    results,
    start_driver,
    training,
    wait_for,
)

from caviar.cli.main import main
from caviar.core.errors import InvalidValue
from caviar.core.records import TrialState
from caviar.distributed import WorkerPlan
from caviar.distributed.local_workers import LocalTransport, WorkerDied
from caviar.nn import TrainingData
from caviar.search.job import tune
from caviar.study import Study

WORKER_MODULE = b"caviar.distributed.worker_process"


def worker_pids() -> list[int]:
    return processes_running(WORKER_MODULE)


@pytest.mark.slow
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_two_local_workers_give_the_trials_of_one_process(tmp_path: Path, dtype: str) -> None:
    """With halving, so the rungs judge members that ran in different processes; bit for bit
    in the default float32 as in float64."""
    one = tune(
        config(tmp_path, "one", dtype=dtype, halving=HALVING), progress=False, report=False
    ).trials()
    spread = tune(
        config(tmp_path, "two", dtype=dtype, halving=HALVING, devices=["cpu", "cpu"]),
        progress=False,
        report=False,
    ).trials()
    assert results(spread) == results(one)
    assert_whole(spread, 12)
    assert {t.attrs["pool_size"] for t in spread} == {4}
    workers = {t.attrs["worker"] for t in spread}
    assert len(workers) == 2 and f"(pid {os.getpid()})" not in " ".join(workers)
    assert {t.state for t in one} == {TrialState.COMPLETE, TrialState.PRUNED}


@pytest.mark.slow
@pytest.mark.parametrize("devices", ["cpu,cpu", "auto"])
def test_devices_on_the_command_line_need_no_ray(
    tmp_path: Path, without_ray: None, devices: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--devices cpu,cpu``, or ``auto`` on a machine of 2 cores: two worker processes, the
    same trials, where ``import ray`` fails."""
    monkeypatch.setattr("caviar.distributed.cluster.machine_cores", lambda: 2)
    one = tune(config(tmp_path, "one", trials=6), progress=False, report=False).trials()
    path = tmp_path / "two.yaml"
    path.write_text(yaml.safe_dump(config(tmp_path, "two", trials=6)))
    assert main(["tune", str(path), "--devices", devices, "--quiet", "--no-report"]) == 0
    spread = Study.load("two", tmp_path / "s.db").trials()
    assert results(spread) == results(one)
    assert {t.attrs["device"] for t in spread} == {"cpu"}
    assert len({t.attrs["worker"] for t in spread}) == 2
    assert wait_for(lambda: not worker_pids(), 10), "workers outlived the run"


@pytest.mark.slow
def test_a_killed_worker_loses_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A worker process killed after the first round: its members go back to the queue and
    train again from their seeds on a new worker. Without halving every trial's curve and value
    then equal the undisturbed single-process run's."""
    err = check_a_killed_worker_loses_nothing(tmp_path, monkeypatch, capsys, devices=["cpu", "cpu"])
    assert "was lost (WorkerDied)" in err


@pytest.mark.slow
def test_a_killed_driver_leaves_no_worker_and_loses_nothing(tmp_path: Path) -> None:
    """A driver (`caviar tune --devices cpu,cpu` in another process) SIGKILLed mid-run: its
    workers see their pipe close and exit, and the next `caviar tune` continues the study."""
    raw = config(tmp_path, "killed", trials=60, devices=["cpu", "cpu"])
    before_run = set(worker_pids())
    driver, db = start_driver(raw, tmp_path)
    assert wait_for(training(driver, db), 90), "the driver trained nothing"
    ours = set(worker_pids()) - before_run
    assert len(ours) == 2
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    assert wait_for(lambda: not ours & set(worker_pids()), 30), "workers outlived their driver"
    before = Study.load("killed", db).trials()
    # killed mid-run: trials running (or, on a loaded machine, the kill may land between a
    # round's results and the next asks: then none runs, but the study is still unfinished)
    assert sum(t.state.is_finished for t in before) < 60
    after = tune(raw, progress=False, report=False).trials()
    assert_whole(after, 60)
    done_before = {t.number: t for t in before if t.state.is_finished}
    assert results([t for t in after if t.number in done_before]) == results(
        list(done_before.values())
    )


@pytest.mark.slow
def test_a_budget_that_ends_mid_round_leaves_every_trial_whole_or_queued(tmp_path: Path) -> None:
    """The workers stop at the budget's end by their own clocks: every trial is then finished
    with a whole curve, or back in the queue without one (none is half-told)."""
    raw = config(tmp_path, "budget", trials=40, devices=["cpu", "cpu"], timeout=5.0)
    raw["space"]["epochs"] = 50
    started = time.monotonic()
    trials = Study.load("budget", tune(raw, progress=False, report=False).storage).trials()
    assert time.monotonic() - started < 5.0 * 1.05 + 2.0  # the budget (the workers' start in
    # it), and closing the study
    assert trials and not any(t.state is TrialState.RUNNING for t in trials)
    for t in trials:
        if t.state is TrialState.QUEUED:
            assert list(t.curve) == [], t.number
        else:
            assert [r.epoch for r in t.curve] == list(range(1, len(t.curve) + 1))


def tiny_data() -> TrainingData:
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(40, 5, generator=g), torch.arange(40) % 3
    return TrainingData.from_arrays(x[:30], y[:30], x[30:], y[30:])


def transport() -> LocalTransport:
    return LocalTransport(
        tiny_data(),
        threads=1,
        dtype="float32",
        data_seed=0,
        train_metrics="pass",
        keep_states=False,
    )


def test_an_error_in_a_worker_is_raised_in_the_driver_with_the_worker_traceback() -> None:
    t = transport()
    try:
        worker = t.start(WorkerPlan("cpu", 1, 0))
        (info,) = t.get([t.call(worker, "describe")], timeout=60)
        assert info.pid == worker.process.pid and info.threads == 1
        with pytest.raises(AttributeError, match="no_such_method") as raised:
            t.get([t.call(worker, "no_such_method")])
        assert any("in the worker process" in note for note in raised.value.__notes__)
        (again,) = t.get([t.call(worker, "describe")])  # the worker lives on
        assert again == info
    finally:
        t.close()
    assert worker.process.returncode == 0  # it read EOF and left on its own


@pytest.mark.slow
def test_a_worker_that_cannot_build_its_pool_says_why_at_its_first_call(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A device the worker lacks: the driver gets the worker's own InvalidValue, not a hang."""
    t = transport()
    try:
        worker = t.start(WorkerPlan("cuda:7", 1, 0))
        with pytest.raises(InvalidValue, match=r"cuda:7|CUDA"):
            t.get([t.call(worker, "describe")], timeout=60)
    finally:
        t.close()


@pytest.mark.slow
def test_a_dead_worker_is_named_with_how_it_died() -> None:
    t = transport()
    try:
        worker = t.start(WorkerPlan("cpu", 1, 0))
        t.get([t.call(worker, "describe")], timeout=60)
        os.kill(worker.process.pid, signal.SIGKILL)
        died = rf"process {worker.process.pid} on cpu was killed by signal 9"
        with pytest.raises(WorkerDied, match=died):
            t.get([t.call(worker, "describe")])
    finally:
        t.close()


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(os, "memfd_create"), reason="memfd_create is Linux's")
def test_workers_map_one_shared_copy_of_the_data_already_in_the_study_dtype() -> None:
    t = transport()
    try:
        workers = [t.start(WorkerPlan("cpu", 1, 0)) for _ in range(2)]
        t.get([t.call(w, "describe") for w in workers], timeout=60)
        for w in workers:  # each maps the driver's one in-memory file
            assert "/memfd:caviar-training-data" in Path(f"/proc/{w.process.pid}/maps").read_text()
        assert t.shared is not None
        stored = torch.load(f"/proc/self/fd/{t.shared}", weights_only=True)
        given = tiny_data()  # float64, as TrainingData.from_arrays makes it
        for name in ("x_train", "x_val"):  # converted once, by the driver, as a pool would
            assert stored[name].dtype == torch.float32
            assert torch.equal(stored[name], getattr(given, name).to(torch.float32))
        for name in ("y_train", "y_val"):
            assert torch.equal(stored[name], getattr(given, name))
        assert stored["n_classes"] == given.n_classes == 3
    finally:
        t.close()
    assert t.shared is None  # the driver's hold on it is gone; the exited workers held the rest


@pytest.mark.slow
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_where_memfd_is_missing_each_worker_is_sent_a_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dtype: str
) -> None:
    """As on macOS: the same trials bit for bit, from data sent over the socket (each worker
    converting it to the study's dtype itself)."""
    monkeypatch.delattr(os, "memfd_create", raising=False)
    one = tune(config(tmp_path, "one", trials=4, dtype=dtype), progress=False, report=False)
    spread = tune(
        config(tmp_path, "two", trials=4, dtype=dtype, devices=["cpu", "cpu"]),
        progress=False,
        report=False,
    )
    assert results(spread.trials()) == results(one.trials())
    assert len({t.attrs["worker"] for t in spread.trials()}) == 2
