"""The storage contract (see caviar.storage.base), run against every backend by one suite."""

import math
import threading
import time

import pytest

from caviar.core.records import EpochRecord, Trial, TrialState
from caviar.storage import (
    DuplicateStudyError,
    DuplicateTrialError,
    InMemoryStorage,
    SQLiteStorage,
    StaleTrialError,
    StudyRecord,
    UnknownStudyError,
)

A, B = "host:1:aaaa", "host:2:bbbb"


@pytest.fixture(params=["memory", "sqlite"])
def storage(request, tmp_path):
    backend = InMemoryStorage() if request.param == "memory" else SQLiteStorage(tmp_path / "s.db")
    yield backend
    backend.close()


def record(name: str = "s", **changes) -> StudyRecord:
    fields = {
        "name": name,
        "direction": "maximize",
        "space": {"x": {"scale": "linear", "low": 0.0, "high": 1.0}, "epochs": 5},
        "sampler": {"name": "random", "seed": 3},
        "seed": 3,
        "attrs": {"note": "first try", "tags": ("a", "b")},
    }
    return StudyRecord(**{**fields, **changes})


def new(number: int) -> Trial:
    return Trial(
        number=number,
        params={"x": number / 10, "epochs": 5},
        unit=(number / 10,),
        seed=1000 + number,
        attrs={"round": 0},
    )


@pytest.fixture
def study(storage):
    storage.create_study(record())
    return "s"


def numbers(trials) -> list[int]:
    return [t.number for t in trials]


def only(storage, number):
    (trial,) = [t for t in storage.get_trials("s") if t.number == number]
    return trial


# -- 1. studies ---------------------------------------------------------------------------------


def test_a_created_study_loads_back_as_json_values(storage):
    before = time.time()
    storage.create_study(record())
    loaded = storage.load_study("s")
    assert loaded.name == "s"
    assert loaded.direction == "maximize"
    assert loaded.space == {"x": {"scale": "linear", "low": 0.0, "high": 1.0}, "epochs": 5}
    assert loaded.sampler == {"name": "random", "seed": 3}
    assert loaded.seed == 3
    assert loaded.attrs == {"note": "first try", "tags": ["a", "b"]}  # a tuple comes back a list
    assert before <= loaded.created <= time.time()


def test_a_taken_name_is_a_duplicate_study(storage):
    storage.create_study(record())
    with pytest.raises(DuplicateStudyError):
        storage.create_study(record(seed=4))
    assert storage.load_study("s").seed == 3
    storage.create_study(record("t"))
    assert storage.study_names() == ["s", "t"]


@pytest.mark.parametrize(
    "call",
    [
        lambda s: s.load_study("nope"),
        lambda s: s.set_study_attrs("nope", {"a": 1}),
        lambda s: s.create_trials("nope", [new(0)], owner=A),
        lambda s: s.claim_queued("nope", A, 1),
        lambda s: s.requeue("nope", 0, A),
        lambda s: s.heartbeat("nope", [0], A),
        lambda s: s.add_epochs("nope", [(0, EpochRecord(1))], owner=A),
        lambda s: s.finish_trial("nope", 0, TrialState.COMPLETE, 1.0, owner=A),
        lambda s: s.set_trial_attrs("nope", 0, {"a": 1}),
        lambda s: s.get_trials("nope"),
    ],
    ids=[
        "load_study",
        "set_study_attrs",
        "create_trials",
        "claim_queued",
        "requeue",
        "heartbeat",
        "add_epochs",
        "finish_trial",
        "set_trial_attrs",
        "get_trials",
    ],
)
def test_every_call_on_an_unknown_study_raises(storage, call):
    storage.create_study(record())
    with pytest.raises(UnknownStudyError, match="nope"):
        call(storage)
    assert issubclass(UnknownStudyError, KeyError)


def test_study_attrs_merge(storage, study):
    storage.set_study_attrs(study, {"note": "second try", "best": 0.9})
    assert storage.load_study(study).attrs == {
        "note": "second try",
        "tags": ["a", "b"],
        "best": 0.9,
    }


# -- 2. creating trials -------------------------------------------------------------------------


def test_created_trials_run_under_their_owner_or_wait_in_the_queue(storage, study):
    before = time.time()
    running = storage.create_trials(study, [new(0), new(1)], owner=A)
    queued = storage.create_trials(study, [new(2)], owner=None)
    assert [(t.number, t.state, t.owner) for t in running + queued] == [
        (0, TrialState.RUNNING, A),
        (1, TrialState.RUNNING, A),
        (2, TrialState.QUEUED, None),
    ]
    first = running[0]
    assert first.params == {"x": 0.0, "epochs": 5}
    assert first.unit == (0.0,)
    assert first.seed == 1000
    assert first.attrs == {"round": 0}
    assert first.value is None and first.curve == () and first.attempt == 0
    assert before <= first.created <= first.started <= time.time()
    assert first.heartbeat == first.started
    assert queued[0].started is None and queued[0].heartbeat is None
    assert storage.get_trials(study) == running + queued


def test_create_trials_is_all_or_nothing(storage, study):
    storage.create_trials(study, [new(0), new(1)], owner=A)
    with pytest.raises(DuplicateTrialError):
        storage.create_trials(study, [new(2), new(1), new(3)], owner=B)
    with pytest.raises(DuplicateTrialError):
        storage.create_trials(study, [new(4), new(4)], owner=B)
    assert numbers(storage.get_trials(study)) == [0, 1]
    assert only(storage, 1).owner == A
    storage.create_trials(study, [new(2), new(3), new(4)], owner=B)
    assert numbers(storage.get_trials(study)) == [0, 1, 2, 3, 4]


# -- 4. claiming the queue ----------------------------------------------------------------------


def test_claim_queued_takes_the_lowest_numbers_first_and_each_once(storage, study):
    storage.create_trials(study, [new(5), new(2), new(9), new(0)], owner=None)
    storage.create_trials(study, [new(1)], owner=B)  # running: never claimed
    first = storage.claim_queued(study, A, 2)
    assert [(t.number, t.state, t.owner) for t in first] == [
        (0, TrialState.RUNNING, A),
        (2, TrialState.RUNNING, A),
    ]
    assert all(t.started is not None and t.heartbeat is not None for t in first)
    second = storage.claim_queued(study, B, 5)
    assert numbers(second) == [5, 9]
    assert all(t.owner == B for t in second)
    assert storage.claim_queued(study, A, 5) == []
    assert {t.number: t.owner for t in storage.get_trials(study)} == {
        0: A,
        1: B,
        2: A,
        5: B,
        9: B,
    }


def test_concurrent_claims_never_hand_out_a_trial_twice(storage, study):
    storage.create_trials(study, [new(n) for n in range(60)], owner=None)
    claimed: dict[str, list[int]] = {}

    def claim(owner):
        mine = claimed.setdefault(owner, [])
        while batch := storage.claim_queued(study, owner, 2):
            mine += numbers(batch)

    threads = [threading.Thread(target=claim, args=(f"host:{i}:t",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    everything = sorted(n for mine in claimed.values() for n in mine)
    assert everything == list(range(60))
    owners = {t.number: t.owner for t in storage.get_trials(study)}
    for owner, mine in claimed.items():
        assert all(owners[n] == owner for n in mine)


# -- 5. requeue ---------------------------------------------------------------------------------


def test_requeue_keeps_the_configuration_drops_the_curve_and_counts_an_attempt(storage, study):
    (created,) = storage.create_trials(study, [new(0)], owner=A)
    storage.add_epochs(study, [(0, EpochRecord(1, val_accuracy=0.3))], owner=A)
    storage.requeue(study, 0, A)
    queued = only(storage, 0)
    assert queued.state is TrialState.QUEUED
    assert (queued.owner, queued.heartbeat, queued.started) == (None, None, None)
    assert queued.curve == ()
    assert queued.attempt == 1
    assert (queued.number, queued.params, queued.unit, queued.seed, queued.attrs) == (
        created.number,
        created.params,
        created.unit,
        created.seed,
        created.attrs,
    )
    # the old owner holds nothing now; the next one gets the same trial and a second attempt
    with pytest.raises(StaleTrialError):
        storage.add_epochs(study, [(0, EpochRecord(2))], owner=A)
    (again,) = storage.claim_queued(study, B, 1)
    assert (again.number, again.params, again.seed, again.attempt) == (0, created.params, 1000, 1)
    storage.requeue(study, 0, B)
    assert only(storage, 0).attempt == 2


# -- 3. only the owner changes a running trial ------------------------------------------------


def test_only_the_owner_can_change_a_running_trial(storage, study):
    storage.create_trials(study, [new(0)], owner=A)
    with pytest.raises(StaleTrialError):
        storage.add_epochs(study, [(0, EpochRecord(1))], owner=B)
    with pytest.raises(StaleTrialError):
        storage.finish_trial(study, 0, TrialState.COMPLETE, 1.0, owner=B)
    with pytest.raises(StaleTrialError):
        storage.requeue(study, 0, B)
    unchanged = only(storage, 0)
    assert (unchanged.state, unchanged.owner, unchanged.curve, unchanged.attempt) == (
        TrialState.RUNNING,
        A,
        (),
        0,
    )


def test_queued_and_missing_trials_are_stale(storage, study):
    storage.create_trials(study, [new(0)], owner=None)
    for number in (0, 7):
        with pytest.raises(StaleTrialError):
            storage.finish_trial(study, number, TrialState.COMPLETE, 1.0, owner=A)
        with pytest.raises(StaleTrialError):
            storage.requeue(study, number, A)
    assert only(storage, 0).state is TrialState.QUEUED


def test_a_finished_trial_never_changes_again(storage, study):
    storage.create_trials(study, [new(0)], owner=A)
    storage.add_epochs(study, [(0, EpochRecord(1, val_accuracy=0.5))], owner=A)
    storage.finish_trial(study, 0, TrialState.COMPLETE, 0.5, owner=A)
    done = only(storage, 0)
    for attempt in (
        lambda: storage.finish_trial(study, 0, TrialState.COMPLETE, 0.9, owner=A),
        lambda: storage.finish_trial(study, 0, TrialState.FAILED, None, owner=A),
        lambda: storage.requeue(study, 0, A),
        lambda: storage.add_epochs(study, [(0, EpochRecord(1, val_accuracy=0.9))], owner=A),
        lambda: storage.add_epochs(study, [(0, EpochRecord(2))], owner=A),
    ):
        with pytest.raises(StaleTrialError):
            attempt()
    assert storage.claim_queued(study, B, 5) == []
    after = only(storage, 0)
    assert (after.state, after.value, after.attempt, after.finished) == (
        TrialState.COMPLETE,
        0.5,
        0,
        done.finished,
    )
    assert [r.val_accuracy for r in after.curve] == [0.5]


# -- learning curves --------------------------------------------------------------------------


def test_add_epochs_writes_a_batch_for_several_trials(storage, study):
    storage.create_trials(study, [new(0), new(1)], owner=A)
    storage.add_epochs(
        study,
        [
            (0, EpochRecord(1, train_loss=2.0, val_accuracy=0.1)),
            (1, EpochRecord(1, train_loss=1.5, val_accuracy=0.2)),
            (0, EpochRecord(2, train_loss=1.0, val_accuracy=0.3)),
        ],
        owner=A,
    )
    curves = {
        t.number: [(r.epoch, r.train_loss, r.val_accuracy) for r in t.curve]
        for t in storage.get_trials(study)
    }
    assert curves == {0: [(1, 2.0, 0.1), (2, 1.0, 0.3)], 1: [(1, 1.5, 0.2)]}


def test_a_batch_with_one_stale_trial_writes_nothing(storage, study):
    storage.create_trials(study, [new(0)], owner=A)
    storage.create_trials(study, [new(1)], owner=B)
    with pytest.raises(StaleTrialError):
        storage.add_epochs(study, [(0, EpochRecord(1)), (1, EpochRecord(1))], owner=A)
    assert [t.curve for t in storage.get_trials(study)] == [(), ()]


def test_an_epoch_recorded_again_replaces_the_old_point_and_curves_sort_by_epoch(storage, study):
    storage.create_trials(study, [new(0)], owner=A)
    for epoch in (3, 1, 2):
        storage.add_epochs(study, [(0, EpochRecord(epoch, val_loss=float(epoch)))], owner=A)
    storage.add_epochs(study, [(0, EpochRecord(2, val_loss=0.25))], owner=A)
    curve = only(storage, 0).curve
    assert [(r.epoch, r.val_loss) for r in curve] == [(1, 1.0), (2, 0.25), (3, 3.0)]


def test_nan_metrics_come_back_as_nan(storage, study):
    storage.create_trials(study, [new(0)], owner=A)
    storage.add_epochs(
        study,
        [(0, EpochRecord(1)), (0, EpochRecord(2, train_loss=0.5, val_loss=math.nan))],
        owner=A,
    )
    first, second = only(storage, 0).curve
    assert all(
        math.isnan(first.metric(m))
        for m in ("train_loss", "train_accuracy", "val_loss", "val_accuracy")
    )
    assert second.train_loss == 0.5
    assert math.isnan(second.val_loss) and math.isnan(second.val_accuracy)


# -- finishing --------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, "0.5", True])
def test_a_finished_value_must_be_finite_or_none(storage, study, bad):
    storage.create_trials(study, [new(0)], owner=A)
    with pytest.raises(ValueError, match="a trial's value must be a finite number or None"):
        storage.finish_trial(study, 0, TrialState.COMPLETE, bad, owner=A)
    assert only(storage, 0).state is TrialState.RUNNING  # nothing changed: it can still finish
    finished = storage.finish_trial(study, 0, TrialState.COMPLETE, 0.75, owner=A)
    assert finished.value == 0.75


def test_finish_records_state_value_attrs_and_time(storage, study):
    storage.create_trials(study, [new(0), new(1)], owner=A)
    storage.add_epochs(study, [(0, EpochRecord(1, val_accuracy=0.8))], owner=A)
    done = storage.finish_trial(study, 0, TrialState.COMPLETE, 0.8, owner=A, attrs={"s": 2.5})
    assert (done.state, done.value, done.attrs) == (
        TrialState.COMPLETE,
        0.8,
        {"round": 0, "s": 2.5},
    )
    assert [r.val_accuracy for r in done.curve] == [0.8]
    assert done.started <= done.finished <= time.time()
    failed = storage.finish_trial(study, 1, TrialState.FAILED, None, owner=A)
    assert (failed.state, failed.value) == (TrialState.FAILED, None)


def test_finish_needs_a_finished_state(storage, study):
    storage.create_trials(study, [new(0)], owner=A)
    with pytest.raises(ValueError, match="finish_trial needs a finished state, got 'running'"):
        storage.finish_trial(study, 0, TrialState.RUNNING, None, owner=A)


def test_trial_attrs_merge_in_any_state(storage, study):
    storage.create_trials(study, [new(0)], owner=A)
    storage.finish_trial(study, 0, TrialState.COMPLETE, 1.0, owner=A, attrs={"b": 2})
    storage.set_trial_attrs(study, 0, {"round": 5, "c": [1, 2]})
    assert only(storage, 0).attrs == {"round": 5, "b": 2, "c": [1, 2]}
    with pytest.raises(KeyError):
        storage.set_trial_attrs(study, 9, {"a": 1})


# -- heartbeats ---------------------------------------------------------------------------------


def test_heartbeat_stamps_only_the_owners_running_trials(storage, study, monkeypatch):
    storage.create_trials(study, [new(0), new(1)], owner=A)
    storage.create_trials(study, [new(2)], owner=B)
    storage.create_trials(study, [new(3)], owner=None)
    storage.finish_trial(study, 1, TrialState.COMPLETE, 1.0, owner=A)
    before = {t.number: t.heartbeat for t in storage.get_trials(study)}
    monkeypatch.setattr(time, "time", lambda: 4_000_000_000.0)
    storage.heartbeat(study, [0, 1, 2, 3], A)
    after = {t.number: t.heartbeat for t in storage.get_trials(study)}
    assert after == {**before, 0: 4_000_000_000.0}


# -- 7. reading -------------------------------------------------------------------------------


def test_get_trials_sorts_by_number_and_filters_by_state(storage, study):
    for n in (3, 0, 2, 1, 4):
        storage.create_trials(study, [new(n)], owner=A if n != 4 else None)
    storage.finish_trial(study, 2, TrialState.COMPLETE, 0.5, owner=A)
    storage.finish_trial(study, 3, TrialState.PRUNED, None, owner=A)
    assert numbers(storage.get_trials(study)) == [0, 1, 2, 3, 4]
    assert numbers(storage.get_trials(study, states=[TrialState.COMPLETE])) == [2]
    assert numbers(storage.get_trials(study, states=[TrialState.RUNNING, "queued"])) == [0, 1, 4]
    assert numbers(storage.get_trials(study, states=[TrialState.PRUNED, "complete"])) == [2, 3]
    assert storage.get_trials(study, states=[]) == []
    assert storage.get_trials(study, states=[TrialState.FAILED]) == []


def test_get_trials_without_curves(storage, study):
    storage.create_trials(study, [new(0)], owner=A)
    storage.add_epochs(study, [(0, EpochRecord(1, val_accuracy=0.5))], owner=A)
    assert only(storage, 0).curve != ()
    (bare,) = storage.get_trials(study, curves=False)
    assert bare.curve == ()
    assert bare.params == {"x": 0.0, "epochs": 5}


def test_records_handed_out_are_copies_of_what_is_stored(storage, study):
    # as with SQLite, changing a returned record changes nothing in the store
    (created,) = storage.create_trials(study, [new(0)], owner=A)
    created.params["x"] = 99.0
    (claimed,) = storage.get_trials(study)
    claimed.attrs["round"] = 99
    done = storage.finish_trial(study, 0, TrialState.COMPLETE, 1.0, owner=A)
    done.params["epochs"] = 99
    storage.load_study(study).attrs["note"] = "changed"
    storage.load_study(study).space["x"]["low"] = 99.0
    stored = only(storage, 0)
    assert (stored.params, stored.attrs) == ({"x": 0.0, "epochs": 5}, {"round": 0})
    assert storage.load_study(study) == record(
        attrs={"note": "first try", "tags": ["a", "b"]}, created=storage.load_study(study).created
    )


def test_get_trials_filters_by_number(storage, study):
    storage.create_trials(study, [new(n) for n in range(4)], owner="a")
    storage.add_epochs(study, [(2, EpochRecord(1, 0.5))], owner="a")
    picked = storage.get_trials(study, numbers=[2, 0])
    assert [t.number for t in picked] == [0, 2] and picked[1].curve == (EpochRecord(1, 0.5),)
    both = storage.get_trials(study, numbers=[0, 3], states=[TrialState.RUNNING])
    assert [t.number for t in both] == [0, 3]
    assert storage.get_trials(study, numbers=[]) == []
