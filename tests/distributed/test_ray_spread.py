"""A study spread over Ray workers on a local two-CPU cluster (started once for the module):
the same trials as one process, and nothing lost or recorded twice when a worker or the driver
is killed mid-run.

Tiny trials: 240 training and 60 validation digits, 4 to 12 units, 3 epochs, float64, one
thread per worker and in the single-process run (so the float results are bit for bit equal).
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from _spread_support import (
    EPOCHS,
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

ray = pytest.importorskip("ray")

from caviar.core.records import TrialState  # noqa: E402
from caviar.search.job import tune  # noqa: E402
from caviar.study import Study  # noqa: E402

pytestmark = pytest.mark.ray
RAY_WORKER = b"ray::PoolWorker"


@pytest.fixture(scope="module", autouse=True)
def cluster() -> Iterator[str]:
    """A local Ray cluster of two CPUs; its address, for drivers in other processes."""
    ray.init(num_cpus=2, include_dashboard=False, logging_level="error", log_to_driver=False)
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


@pytest.mark.slow
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_two_workers_give_the_trials_of_one_process(tmp_path: Path, dtype: str) -> None:
    """With halving, so the rungs judge members that ran on different workers; bit for bit in
    the default float32 as in float64."""
    one = tune(
        config(tmp_path, "one", dtype=dtype, halving=HALVING), progress=False, report=False
    ).trials()
    spread = tune(
        config(tmp_path, "two", dtype=dtype, halving=HALVING, ray="auto"),
        progress=False,
        report=False,
    ).trials()
    assert results(spread) == results(one)
    assert_whole(spread, 12)
    assert {t.attrs["pool_size"] for t in spread} == {4}
    assert len({t.attrs["worker"] for t in spread}) == 2  # both workers trained
    assert {t.state for t in one} == {TrialState.COMPLETE, TrialState.PRUNED}


@pytest.mark.slow
def test_a_killed_worker_loses_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A worker's process killed after the first round: its members go back to the queue and
    train again from their seeds on a new worker. Without halving every trial's curve and value
    then equal the undisturbed single-process run's."""
    check_a_killed_worker_loses_nothing(tmp_path, monkeypatch, capsys, ray="auto")


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="lists processes through /proc")
def test_a_killed_driver_loses_nothing_and_its_workers_stop(tmp_path: Path, cluster: str) -> None:
    """A driver (`caviar tune --ray ADDRESS` in another process) SIGKILLed mid-run: Ray ends its
    workers, and the next `caviar tune` continues the study to the end."""
    raw = config(tmp_path, "killed", trials=60, ray=cluster)
    raw["space"]["epochs"] = EPOCHS
    driver, db = start_driver(raw, tmp_path)
    assert wait_for(training(driver, db), 90), "the driver trained nothing"
    assert processes_running(RAY_WORKER)
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    gone = wait_for(lambda: not processes_running(RAY_WORKER), 30)
    assert gone, "the workers outlived their driver"
    before = Study.load("killed", db).trials()
    assert any(t.state is TrialState.RUNNING for t in before)
    after = tune(raw, progress=False, report=False).trials()
    assert_whole(after, 60)
    # caviar's default search halves: a trial ends complete or pruned at a rung, none lost
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in after)
    done_before = {t.number: t for t in before if t.state.is_finished}
    assert results([t for t in after if t.number in done_before]) == results(
        list(done_before.values())
    )


@pytest.mark.slow
def test_a_budget_that_ends_mid_round_leaves_every_trial_whole_or_queued(tmp_path: Path) -> None:
    """The workers stop at the budget's end by their own clocks: every trial is then finished
    with a whole curve, or back in the queue without one (none is half-told)."""
    raw = config(tmp_path, "budget", trials=40, ray="auto", timeout=5.0)
    raw["space"]["epochs"] = 50
    trials = Study.load("budget", tune(raw, progress=False, report=False).storage).trials()
    assert trials and not any(t.state is TrialState.RUNNING for t in trials)
    for t in trials:
        if t.state is TrialState.QUEUED:
            assert t.curve == () or list(t.curve) == [], t.number
        else:
            assert [r.epoch for r in t.curve] == list(range(1, len(t.curve) + 1))
