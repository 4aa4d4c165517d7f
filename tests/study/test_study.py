"""Study: ask/tell, the leaderboard, what a study records, re-creating it, and recovery."""

import os
import platform
import re
import socket
import subprocess
import sys
import time

import numpy
import pytest
import torch

import caviar
from caviar import (
    EpochRecord,
    InMemoryStorage,
    IntUniform,
    LogUniform,
    RandomSampler,
    SearchSpace,
    SQLiteStorage,
    Study,
    TrialState,
    Uniform,
)
from caviar.core.records import Trial
from caviar.core.seeding import TRIAL, derive_seed
from caviar.storage import DuplicateStudyError, StaleTrialError, UnknownStudyError

SPACE = SearchSpace({"lr": LogUniform(1e-4, 1.0), "units": IntUniform(2, 4)})


def exactly(message: str) -> str:
    return "^" + re.escape(message) + "$"


@pytest.fixture(params=["memory", "sqlite"])
def storage(request, tmp_path):
    backend = InMemoryStorage() if request.param == "memory" else SQLiteStorage(tmp_path / "s.db")
    yield backend
    backend.close()


def make(storage, **kwargs) -> Study:
    return Study.create("s", kwargs.pop("space", SPACE), storage=storage, **kwargs)


# -- ask / tell -------------------------------------------------------------------------------


def test_ask_hands_out_numbered_configurations_with_their_seeds(storage):
    study = make(storage, seed=4)
    trials = study.ask(3)
    assert [t.number for t in trials] == [0, 1, 2]
    for t in trials:
        SPACE.validate(t.params)
        assert t.params == SPACE.from_unit(t.unit)
        assert t.seed == derive_seed(4, TRIAL, t.number)
    assert len({t.seed for t in trials}) == 3
    assert [t.number for t in study.ask(2)] == [3, 4]
    stored = study.trials()
    assert [(t.state, t.owner) for t in stored] == [(TrialState.RUNNING, study.owner)] * 5


def test_tell_finishes_a_trial_with_its_value_and_curve(storage):
    study = make(storage)
    (trial,) = study.ask()
    study.report(trial, EpochRecord(1, val_accuracy=0.5))
    study.report_epochs([(trial, EpochRecord(2, val_accuracy=0.6)), (trial.number, EpochRecord(3))])
    done = study.tell(trial, 0.6, attrs={"seconds": 1.5})
    assert (done.state, done.value, done.attrs) == (TrialState.COMPLETE, 0.6, {"seconds": 1.5})
    assert [r.epoch for r in done.curve] == [1, 2, 3]
    assert study.trials()[0] == done


@pytest.mark.parametrize("value", [None, float("nan"), float("inf")])
def test_a_complete_trial_needs_a_finite_value(storage, value):
    study = make(storage)
    (trial,) = study.ask()
    message = (
        "Study.tell.value: must be a finite number for a complete trial (state='diverged' or "
        f"'failed' otherwise), got {value!r}"
    )
    with pytest.raises(ValueError, match=exactly(message)):
        study.tell(trial, value)
    assert study.trials()[0].state is TrialState.RUNNING
    assert study.tell(trial, state="diverged").state is TrialState.DIVERGED


def test_a_trial_is_told_once(storage):
    study = make(storage)
    (trial,) = study.ask()
    study.tell(trial.number, 0.5)
    with pytest.raises(StaleTrialError):
        study.tell(trial, 0.9)
    assert study.trials()[0].value == 0.5


def test_another_worker_cannot_tell_my_trial(storage):
    mine = make(storage)
    theirs = Study.load("s", storage)
    (trial,) = mine.ask()
    with pytest.raises(StaleTrialError):
        theirs.tell(trial, 0.5)
    assert [t.number for t in theirs.ask(1)] == [1]


@pytest.mark.parametrize("n", [0, -1, 1.5, True])
def test_ask_needs_a_positive_count(storage, n):
    with pytest.raises(
        ValueError, match=exactly(f"Study.ask.n: must be an integer in [1, inf), got {n!r}")
    ):
        make(storage).ask(n)


def test_released_trials_come_back_first_with_the_same_configuration(storage):
    study = make(storage)
    first = study.ask(3)
    study.report(first[1], EpochRecord(1, val_accuracy=0.2))
    study.release([first[1], first[2]])
    other = Study.load("s", storage)
    again = other.ask(3)
    assert [t.number for t in again] == [1, 2, 3]
    assert [(t.params, t.seed) for t in again[:2]] == [(t.params, t.seed) for t in first[1:]]
    by_number = {t.number: t for t in study.trials()}
    assert by_number[1].curve == ()
    assert (by_number[1].attempt, by_number[3].attempt) == (1, 0)


# -- leaderboard --------------------------------------------------------------------------------

VALUES = {0: 0.3, 1: 0.9, 2: 0.5, 3: 0.9, 4: None, 5: 0.1}  # 4 fails, 5 stays running


@pytest.mark.parametrize(
    ("direction", "order"),
    [
        ("maximize", [1, 3, 2, 0]),  # the tie 1 / 3 goes to the lower number
        ("minimize", [0, 2, 1, 3]),
    ],
)
def test_leaderboard_ranks_complete_trials_best_first(storage, direction, order):
    study = make(storage, direction=direction)
    trials = study.ask(6)
    for t in trials[:5]:
        study.report(t, EpochRecord(1, val_accuracy=0.5))
        if VALUES[t.number] is None:
            study.tell(t, state="failed")
        else:
            study.tell(t, VALUES[t.number])
    assert [t.number for t in study.leaderboard()] == order
    assert [t.number for t in study.leaderboard(2)] == order[:2]
    assert [t.value for t in study.leaderboard()] == [VALUES[n] for n in order]
    best = study.best_trial
    assert best.number == order[0]
    assert len(best.curve) == 1


def test_no_best_trial_before_one_completes(storage):
    study = make(storage)
    (trial,) = study.ask()
    assert study.best_trial is None
    study.tell(trial, state="failed")
    assert study.best_trial is None
    assert study.leaderboard() == []


# -- what a study records ---------------------------------------------------------------------


def test_a_study_records_the_library_versions_and_its_attrs(storage):
    study = make(storage, attrs={"dataset": "mnist"})
    assert study.attrs == {
        "versions": {
            "caviar": caviar.__version__,
            "python": platform.python_version(),
            "numpy": numpy.__version__,
            "torch": torch.__version__,
        },
        "dataset": "mnist",
    }
    study.set_attrs({"note": "coarse pass"})
    assert Study.load("s", storage).attrs["note"] == "coarse pass"


def test_a_loaded_study_has_the_stored_definition(tmp_path):
    path = tmp_path / "s.db"
    created = Study.create(
        "s", SPACE, storage=path, sampler=RandomSampler(8), direction="minimize", seed=2
    )
    loaded = Study.load("s", path)
    assert loaded.space == SPACE
    assert loaded.sampler.to_config() == {"name": "random", "seed": 8}
    assert (loaded.direction.value, loaded.seed) == ("minimize", 2)
    created.close()
    loaded.close()


# -- creating again -----------------------------------------------------------------------------


def test_creating_a_taken_name_fails_unless_loading_is_asked_for(storage):
    study = make(storage)
    (trial,) = study.ask()
    study.tell(trial, 0.5)
    with pytest.raises(DuplicateStudyError):
        make(storage)
    again = make(storage, load_if_exists=True)
    assert [t.number for t in again.trials()] == [0]


@pytest.mark.parametrize(
    ("change", "what"),
    [
        (
            {"space": SearchSpace({"lr": LogUniform(1e-5, 1.0), "units": IntUniform(2, 4)})},
            r"space\.lr\.low: stored 0\.0001, given 1e-05",
        ),
        (
            {"space": {"lr": {"scale": "log", "low": 1e-4, "high": 1.0}}},
            r"space\.units: stored \{'scale': 'int', 'low': 2, 'high': 4\}, given None",
        ),
        ({"sampler": RandomSampler(seed=1)}, r"sampler\.seed: stored 0, given 1"),
        ({"direction": "minimize"}, r"direction: stored 'maximize', given 'minimize'"),
        ({"seed": 1, "sampler": RandomSampler(seed=0)}, r"seed: stored 0, given 1"),
    ],
)
def test_load_if_exists_refuses_a_different_definition_naming_what_differs(storage, change, what):
    make(storage)
    with pytest.raises(ValueError, match=rf"^study 's': exists in .* another definition: {what}"):
        make(storage, load_if_exists=True, **change)


def test_load_if_exists_accepts_the_config_form_of_the_same_space(storage):
    make(storage)
    same = {
        "lr": {"scale": "log", "low": 1e-4, "high": 1.0},
        "units": {"scale": "int", "low": 2, "high": 4},
    }
    assert make(storage, space=same, load_if_exists=True).space == SPACE


def test_bad_names_and_seeds(storage):
    rule = (
        "Study.name: must be 1-100 letters, digits, '.', '_' or '-', starting with a letter, "
        "digit or '_'"
    )
    # it names files (no '.', '/'), and appears in commands (no leading '-': `caviar show -rf`)
    for bad in (" ", "", "../up", "/abs", ".hidden", "a b", "x" * 101, "-rf", 7):
        with pytest.raises(ValueError, match=exactly(f"{rule}, got {bad!r}")):
            Study.create(bad, SPACE, storage=storage)
    assert Study.create("book-2.v1_a", SPACE, storage=storage).name == "book-2.v1_a"
    with pytest.raises(
        ValueError, match=exactly("Study.seed: must be an integer in [0, 2**63), got -1")
    ):
        Study.create("s", SPACE, storage=storage, seed=-1)
    with pytest.raises(UnknownStudyError):
        Study.load("missing", storage)


# -- recovery -----------------------------------------------------------------------------------


def dead_pid() -> int:
    """The pid of a child process that has exited and been reaped."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def plant(storage, number: int, owner: str) -> None:
    """A running trial of ``owner``, as another process would have left it."""
    params = SPACE.from_unit((0.5, 0.5))
    storage.create_trials(
        "s", [Trial(number, params, SPACE.to_unit(params), seed=number)], owner=owner
    )


def test_recover_requeues_the_trials_of_a_dead_owner_only(storage):
    study = make(storage)
    host = socket.gethostname()
    dead = f"{host}:{dead_pid()}:deadbeef"
    alive = f"{host}:{os.getppid()}:cafe0001"  # the process that started this test runner
    plant(storage, 0, dead)
    plant(storage, 1, alive)
    elsewhere = f"elsewhere:{dead_pid()}:0000abcd"  # another host: can't tell, so alive
    plant(storage, 2, elsewhere)
    (mine,) = study.ask()
    assert study.recover() == [0]
    states = {t.number: (t.state, t.owner, t.attempt) for t in study.trials()}
    assert states == {
        0: (TrialState.QUEUED, None, 1),
        1: (TrialState.RUNNING, alive, 0),
        2: (TrialState.RUNNING, elsewhere, 0),
        mine.number: (TrialState.RUNNING, study.owner, 0),
    }
    assert [t.number for t in study.ask(1)] == [0]


def test_recover_requeues_an_earlier_process_with_the_same_pid(storage):
    """Containers restart with the same pids: same host and pid, but not a live owner here."""
    study = make(storage)
    plant(storage, 0, f"{socket.gethostname()}:{os.getpid()}:0ldrun00")
    other = Study.load("s", storage)  # alive in this process: its trials are left alone
    (live,) = other.ask()
    assert study.recover() == [0]
    assert {t.number: t.state for t in study.trials()} == {
        0: TrialState.QUEUED,
        live.number: TrialState.RUNNING,
    }


def test_recover_requeues_trials_whose_heartbeat_is_stale(storage, monkeypatch):
    study = make(storage)
    host = socket.gethostname()
    with monkeypatch.context() as m:
        m.setattr(time, "time", lambda: 1_000_000.0)  # long ago
        plant(storage, 0, f"{host}:{os.getppid()}:old0")
        plant(storage, 1, "elsewhere:12:old1")
    plant(storage, 2, f"{host}:{os.getppid()}:new2")  # alive, and beating now
    plant(storage, 3, "elsewhere:12:new3")
    assert study.recover(stale_after=300.0) == [0, 1]
    assert [t.state for t in study.trials()] == [
        TrialState.QUEUED,
        TrialState.QUEUED,
        TrialState.RUNNING,
        TrialState.RUNNING,
    ]


def test_a_heartbeat_keeps_a_slow_trial_from_being_recovered(storage, monkeypatch):
    study = make(storage)
    with monkeypatch.context() as m:
        m.setattr(time, "time", lambda: 1_000_000.0)
        (trial,) = study.ask()
    other = Study.load("s", storage)
    study.heartbeat()
    assert other.recover(stale_after=300.0) == []
    assert study.trials()[0].state is TrialState.RUNNING
    study.tell(trial, 0.5)


def test_recover_leaves_the_callers_own_trials_alone(storage):
    study = make(storage)
    study.ask(2)
    assert study.recover(stale_after=-1.0) == []
    assert [t.state for t in study.trials()] == [TrialState.RUNNING] * 2


def test_recover_skips_a_trial_that_finished_meanwhile(storage, monkeypatch):
    study = make(storage)
    host = socket.gethostname()
    plant(storage, 0, f"{host}:{dead_pid()}:dead")
    # the dead owner's trial finishes between recover's read and its requeue
    real_requeue = storage.requeue

    def finish_first(name, number, owner):
        storage.finish_trial(name, number, TrialState.COMPLETE, 1.0, owner=owner)
        real_requeue(name, number, owner)

    monkeypatch.setattr(storage, "requeue", finish_first)
    assert study.recover() == []
    assert study.trials()[0].state is TrialState.COMPLETE


def test_create_checks_a_space_in_config_form_and_defaults_to_memory():
    with pytest.raises(
        ValueError, match=exactly("space.x: low must be <= high, got low=1.0, high=0.0")
    ):
        Study.create("s", {"x": {"scale": "linear", "low": 1.0, "high": 0.0}})
    study = Study.create("s", {"x": Uniform(0.0, 1.0)})
    assert isinstance(study.storage, InMemoryStorage)


def test_open_file_reads_a_stored_study_without_writing_to_its_file(tmp_path):
    path = tmp_path / "s.db"
    made = Study.create("s", SPACE, storage=path, seed=5)
    (trial,) = made.ask()
    made.tell(trial, 0.5)
    made.close()
    before = path.read_bytes()
    study = Study.open_file("s", path, read_only=True)
    assert (study.name, study.seed, [t.value for t in study.trials()]) == ("s", 5, [0.5])
    study.close()
    assert path.read_bytes() == before  # not even SQLite's WAL switch


def test_open_file_names_whoever_gave_a_path_with_no_study_file(tmp_path):
    missing = tmp_path / "none.db"
    with pytest.raises(caviar.core.errors.InvalidValue, match=r"^--storage: no study file at '"):
        Study.open_file("s", missing, owner="--storage")
    with pytest.raises(caviar.core.errors.InvalidValue, match=r"^storage: no study file at '"):
        Study.open_file("s", tmp_path)  # a folder is no study file
    assert not missing.exists()  # nothing was created
