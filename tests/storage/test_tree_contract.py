"""The tree-store contract (see caviar.storage.tree_base), run against every backend by one suite.

Snapshots here are 100 bytes each unless a test says otherwise, so a budget of 350 bytes holds
three and a half of them; epochs are stored at the times the tests give, the root's first
snapshot at its creation (now, later than any of those).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from caviar.core.errors import InvalidValue
from caviar.core.records import EpochRecord
from caviar.storage import InMemoryTreeStore, SQLiteTreeStore, TreeStore
from caviar.storage.tree_rows import Branch, RunRow, Snapshot, StoredEpoch

SPEC = {"lr": 0.001, "beta1": 0.9, "seed": 7}


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TreeStore]:
    backend: TreeStore = (
        InMemoryTreeStore() if request.param == "memory" else SQLiteTreeStore(tmp_path / "t.db")
    )
    yield backend
    backend.close()


def snap(epoch: int, *, lr: float = 0.001, size: int = 100) -> Snapshot:
    return Snapshot(epoch, {**SPEC, "lr": lr}, bytes([epoch % 256]) * size)


def point(epoch: int, at: float, *, val: float = 0.5) -> StoredEpoch:
    record = EpochRecord(epoch, train_loss=1.0 / epoch, train_accuracy=0.25, val_accuracy=val)
    return StoredEpoch(record, at)


def new_run(
    store: TreeStore, name: str = "babysat", *, budget: int = 10_000, first: int = 0
) -> RunRow:
    return store.create_run(
        name,
        config={"space": {"lr": 0.001}, "shape": (2, 3)},
        spec=SPEC,
        source={"kind": "config"},
        budget=budget,
        first=snap(first),
    )


def grow(store: TreeStore, run: RunRow, branch: int, epochs: dict[int, float]) -> None:
    """Store ``branch``'s points and snapshots ``{epoch: time}``, in that order."""
    for epoch, at in epochs.items():
        store.add_epoch(run.run_id, branch, point(epoch, at), snap(epoch))


def places(dropped: list[dict[str, Any]]) -> list[tuple[int, int]]:
    return [(d["branch"], d["epoch"]) for d in dropped]


# -- 1. runs by name --------------------------------------------------------------------------


def test_a_created_run_reads_back_as_json_values(store: TreeStore) -> None:
    before = time.time()
    run = new_run(store, budget=4096)
    after = time.time()
    assert run == store.run("babysat")
    assert run.name == "babysat"
    assert run.config == {"space": {"lr": 0.001}, "shape": [2, 3]}  # a tuple comes back a list
    assert run.spec == SPEC and run.source == {"kind": "config"}
    assert (run.status, run.branch, run.budget, run.version) == ("running", 0, 4096, 1)
    assert before <= run.created <= after
    assert store.branches(run.run_id) == [Branch(0, None, None, None, SPEC, run.created)]
    assert store.snapshot_epochs(run.run_id) == {0: [0]}
    assert store.snapshot(run.run_id, 0, 0) == bytes(100)
    assert store.first_snapshot(run.run_id) == 0
    assert store.last_epoch(run.run_id, 0) is None
    assert store.curves(run.run_id) == {}
    assert store.commands(run.run_id) == [] and store.dropped(run.run_id) == []


def test_a_run_started_from_a_trained_state_starts_at_its_epoch(store: TreeStore) -> None:
    run = new_run(store, first=5)
    assert store.first_snapshot(run.run_id) == 5
    assert store.snapshot_epochs(run.run_id) == {0: [5]}
    assert store.snapshot(run.run_id, 0, 5) == bytes([5]) * 100


def test_runs_are_listed_in_the_order_they_were_created(store: TreeStore) -> None:
    b, a = new_run(store, "b"), new_run(store, "a")
    assert store.run_names() == ["b", "a"]
    assert b.run_id != a.run_id
    assert store.run("a") == a and store.run("b") == b


def test_a_taken_name_is_refused_and_changes_nothing(store: TreeStore) -> None:
    run = new_run(store, "a")
    with pytest.raises(InvalidValue, match=r"panda: a run 'a' exists already in "):
        new_run(store, "a", budget=1)
    assert store.run_names() == ["a"]
    assert store.run("a").budget == 10_000 and store.version(run.run_id) == 1


def test_an_unknown_name_names_the_runs_there_are(store: TreeStore) -> None:
    new_run(store, "a")
    new_run(store, "b")
    with pytest.raises(InvalidValue, match=r"panda: no run 'c' in .*; runs: \['a', 'b'\]"):
        store.run("c")


def test_an_empty_store_has_no_runs(store: TreeStore) -> None:
    assert store.run_names() == []
    with pytest.raises(InvalidValue, match=r"no run 'a' in .*; runs: \[\]"):
        store.run("a")


# -- 2. versions ------------------------------------------------------------------------------


def test_every_write_bumps_the_version_by_one_and_reads_none(store: TreeStore) -> None:
    run = new_run(store)
    rid = run.run_id
    store.add_commands(rid, [(0, 0, "lr", 0.001, 0.01), (0, 0, "beta1", 0.9, 0.8)])
    assert store.version(rid) == 2  # two commands, one change
    grow(store, run, 0, {1: 1.0})
    assert store.version(rid) == 3
    store.add_branch(rid, parent=0, from_epoch=1, mode="exact", current=0)
    assert store.version(rid) == 4
    store.boundary(rid, [], status="paused", branch=1, spec=SPEC)
    assert store.version(rid) == 5
    with store.read():
        for read in (
            store.branches,
            store.curves,
            store.commands,
            store.snapshot_epochs,
            store.dropped,
            store.first_snapshot,
            store.version,
        ):
            read(rid)
        store.run("babysat"), store.run_names(), store.snapshot(rid, 0, 1), store.last_epoch(rid, 0)
    assert store.version(rid) == 5 and store.run("babysat").version == 5


def test_each_run_counts_its_own_version(store: TreeStore) -> None:
    a, b = new_run(store, "a"), new_run(store, "b")
    store.add_commands(a.run_id, [(0, 0, "pause", "running", "paused")])
    assert (store.version(a.run_id), store.version(b.run_id)) == (2, 1)


# -- 3. branches ------------------------------------------------------------------------------


def test_a_branch_grows_from_a_snapshot_with_its_spec_and_a_rollback_command(
    store: TreeStore,
) -> None:
    run = new_run(store)
    rid = run.run_id
    store.add_epoch(rid, 0, point(1, 1.0), snap(1, lr=0.002))
    store.add_epoch(rid, 0, point(2, 2.0), snap(2, lr=0.003))
    assert store.add_branch(rid, parent=0, from_epoch=1, mode="fresh", current=0) == 1
    assert store.add_branch(rid, parent=0, from_epoch=2, mode="exact", current=1) == 2
    branches = store.branches(rid)
    assert [(b.id, b.parent, b.from_epoch, b.mode) for b in branches] == [
        (0, None, None, None),
        (1, 0, 1, "fresh"),
        (2, 0, 2, "exact"),
    ]
    assert [b.spec["lr"] for b in branches] == [0.001, 0.002, 0.003]
    rollbacks = store.commands(rid)
    assert [(c.key, c.branch, c.epoch, c.old, c.new, c.applied) for c in rollbacks] == [
        ("rollback", 0, 1, 0, 1, False),
        ("rollback", 0, 2, 1, 2, False),
    ]


def test_a_branch_from_a_missing_snapshot_is_refused_and_changes_nothing(
    store: TreeStore,
) -> None:
    run = new_run(store)
    rid = run.run_id
    with pytest.raises(InvalidValue, match=r"rollback: branch 0 has no snapshot at epoch 5"):
        store.add_branch(rid, parent=0, from_epoch=5, mode="exact", current=0)
    with pytest.raises(InvalidValue, match=r"rollback: branch 3 has no snapshot at epoch 0"):
        store.add_branch(rid, parent=3, from_epoch=0, mode="exact", current=0)
    assert [b.id for b in store.branches(rid)] == [0]
    assert store.commands(rid) == [] and store.version(rid) == 1


# -- 4. commands ------------------------------------------------------------------------------


def test_commands_keep_their_order_until_a_boundary_applies_them(store: TreeStore) -> None:
    run = new_run(store)
    rid = run.run_id
    before = time.time()
    first = store.add_commands(rid, [(0, 0, "lr", 0.001, 0.01), (0, 0, "beta1", 0.9, 0.8)])
    second = store.add_commands(rid, [(0, 0, "pause", "running", "paused")])
    ids = first + second
    assert ids == sorted(ids) and len(set(ids)) == 3
    commands = store.commands(rid)
    assert [(c.id, c.key, c.old, c.new) for c in commands] == [
        (ids[0], "lr", 0.001, 0.01),
        (ids[1], "beta1", 0.9, 0.8),
        (ids[2], "pause", "running", "paused"),
    ]
    assert all(before <= c.time <= time.time() and not c.applied for c in commands)

    later = {**SPEC, "lr": 0.01}
    applied = [(ids[0], 3, 0.002), (ids[2], 3, "running")]
    store.boundary(rid, applied, status="paused", branch=0, spec=later)
    lr, beta1, pause = store.commands(rid)
    assert (lr.applied, lr.epoch, lr.old, lr.new) == (True, 3, 0.002, 0.01)
    assert (pause.applied, pause.epoch) == (True, 3)
    assert (beta1.applied, beta1.epoch, beta1.old) == (False, 0, 0.9)
    assert [c.key for c in store.commands(rid, pending=True)] == ["beta1"]
    row = store.run("babysat")
    assert (row.status, row.branch) == ("paused", 0)
    assert store.branches(rid)[0].spec == later


def test_a_boundary_sets_the_branch_trained_and_that_branchs_spec_only(
    store: TreeStore,
) -> None:
    run = new_run(store)
    rid = run.run_id
    store.add_epoch(rid, 0, point(1, 1.0), snap(1, lr=0.002))
    store.add_branch(rid, parent=0, from_epoch=1, mode="exact", current=0)
    store.boundary(rid, [], status="running", branch=1, spec={**SPEC, "lr": 0.05})
    assert store.run("babysat").branch == 1
    assert [b.spec["lr"] for b in store.branches(rid)] == [0.001, 0.05]


def test_commands_belong_to_their_run_and_ids_are_unique_in_the_store(store: TreeStore) -> None:
    a, b = new_run(store, "a"), new_run(store, "b")
    (ia,) = store.add_commands(a.run_id, [(0, 0, "lr", 0.1, 0.2)])
    (ib,) = store.add_commands(b.run_id, [(0, 0, "lr", 0.3, 0.4)])
    assert ia != ib
    assert [c.new for c in store.commands(a.run_id)] == [0.2]
    assert [c.new for c in store.commands(b.run_id)] == [0.4]


# -- 5 and 6. epochs, snapshots, sorted reads ---------------------------------------------------


def test_curves_and_snapshots_sort_by_branch_then_epoch(store: TreeStore) -> None:
    run = new_run(store)
    rid = run.run_id
    grow(store, run, 0, {3: 3.0, 1: 1.0, 2: 2.0})
    store.add_branch(rid, parent=0, from_epoch=1, mode="exact", current=0)
    grow(store, run, 1, {3: 5.0, 2: 4.0})
    curves = store.curves(rid)
    assert list(curves) == [0, 1]
    assert [p.record.epoch for p in curves[0]] == [1, 2, 3]
    assert [p.time for p in curves[1]] == [4.0, 5.0]
    assert store.snapshot_epochs(rid) == {0: [0, 1, 2, 3], 1: [2, 3]}
    assert (store.last_epoch(rid, 0), store.last_epoch(rid, 1)) == (3, 3)
    assert store.last_epoch(rid, 2) is None
    assert store.first_snapshot(rid) == 0


def test_an_epoch_stored_again_replaces_its_point_and_snapshot(store: TreeStore) -> None:
    run = new_run(store)
    rid = run.run_id
    store.add_epoch(rid, 0, point(1, 1.0, val=0.5), Snapshot(1, SPEC, b"a" * 10))
    store.add_epoch(rid, 0, point(1, 2.0, val=0.75), Snapshot(1, SPEC, b"b" * 10))
    assert store.curves(rid) == {0: [point(1, 2.0, val=0.75)]}
    assert store.snapshot(rid, 0, 1) == b"b" * 10
    assert store.snapshot_epochs(rid) == {0: [0, 1]}


def test_a_missing_snapshot_is_an_error(store: TreeStore) -> None:
    run = new_run(store)
    with pytest.raises(InvalidValue, match=r"rollback: branch 0 has no snapshot at epoch 1"):
        store.snapshot(run.run_id, 0, 1)


# -- 5. retention under the disk budget --------------------------------------------------------


def test_retention_drops_the_oldest_until_the_run_fits(store: TreeStore) -> None:
    run = new_run(store, budget=350)
    rid = run.run_id
    before = time.time()
    grow(store, run, 0, {1: 1.0, 2: 2.0})
    assert store.dropped(rid) == []  # 300 bytes fit
    grow(store, run, 0, {3: 3.0, 4: 4.0, 5: 5.0})
    # each new epoch makes 400 bytes: the oldest not protected goes (epochs 1, 2, 3 in turn);
    # the root's first (epoch 0) and the latest stay
    assert store.snapshot_epochs(rid) == {0: [0, 4, 5]}
    dropped = store.dropped(rid)
    assert places(dropped) == [(0, 1), (0, 2), (0, 3)]
    assert [d["bytes"] for d in dropped] == [100, 100, 100]
    assert all(before <= d["time"] <= time.time() for d in dropped)
    assert [p.record.epoch for p in store.curves(rid)[0]] == [1, 2, 3, 4, 5]  # curves stay


def test_retention_goes_by_the_time_stored_not_the_epoch(store: TreeStore) -> None:
    run = new_run(store, budget=350)
    grow(store, run, 0, {1: 30.0, 2: 20.0, 3: 10.0})  # epoch 3, the latest, is the oldest
    assert places(store.dropped(run.run_id)) == [(0, 2)]
    assert store.snapshot_epochs(run.run_id) == {0: [0, 1, 3]}


def test_retention_keeps_the_roots_first_snapshot_however_old(store: TreeStore) -> None:
    run = new_run(store, budget=250)
    grow(store, run, 0, {1: run.created + 1, 2: run.created + 2})  # epoch 0 is the oldest
    assert places(store.dropped(run.run_id)) == [(0, 1)]
    assert store.snapshot_epochs(run.run_id) == {0: [0, 2]}


def test_retention_keeps_every_branchs_source_and_latest(store: TreeStore) -> None:
    run = new_run(store, budget=450)
    rid = run.run_id
    grow(store, run, 0, {1: 1.0, 2: 2.0, 3: 3.0})  # 400 bytes
    store.add_branch(rid, parent=0, from_epoch=1, mode="exact", current=0)
    grow(store, run, 1, {2: 4.0})  # 500: (0, 1) is branch 1's source, so (0, 2) goes
    assert store.snapshot_epochs(rid) == {0: [0, 1, 3], 1: [2]}
    grow(store, run, 1, {3: 5.0, 4: 6.0})  # (0, 3) is branch 0's latest: branch 1's older go
    assert store.snapshot_epochs(rid) == {0: [0, 1, 3], 1: [4]}
    assert places(store.dropped(rid)) == [(0, 2), (1, 2), (1, 3)]


def test_protected_snapshots_may_keep_a_run_over_its_budget(store: TreeStore) -> None:
    run = new_run(store, budget=150)
    grow(store, run, 0, {1: 1.0})  # 200 bytes, but the root's first and the latest stay
    assert store.dropped(run.run_id) == []
    grow(store, run, 0, {2: 2.0})
    assert places(store.dropped(run.run_id)) == [(0, 1)]
    assert store.snapshot_epochs(run.run_id) == {0: [0, 2]}  # still 200 bytes


def test_retention_breaks_ties_in_time_by_branch_then_epoch(store: TreeStore) -> None:
    run = new_run(store, budget=550)
    rid = run.run_id
    grow(store, run, 0, {1: 5.0})
    store.add_branch(rid, parent=0, from_epoch=1, mode="exact", current=0)
    grow(store, run, 1, {2: 5.0, 3: 5.0})
    grow(store, run, 0, {2: 5.0, 3: 5.0})  # 600: (0, 2) goes before (1, 2)
    assert places(store.dropped(rid)) == [(0, 2)]
    grow(store, run, 0, {4: 5.0})  # 600: (0, 3), branch 0, goes before (1, 2), an earlier epoch
    assert places(store.dropped(rid)) == [(0, 2), (0, 3)]
    assert store.snapshot_epochs(rid) == {0: [0, 1, 4], 1: [2, 3]}


def test_retention_counts_each_snapshots_own_size(store: TreeStore) -> None:
    run = new_run(store, budget=400)  # the root's first: 100 bytes
    rid = run.run_id
    store.add_epoch(rid, 0, point(1, 1.0), snap(1, size=250))
    store.add_epoch(rid, 0, point(2, 2.0), snap(2, size=10))
    store.add_epoch(rid, 0, point(3, 3.0), snap(3, size=10))  # 370: fits
    assert store.dropped(rid) == []
    store.add_epoch(rid, 0, point(4, 4.0), snap(4, size=50))  # 420: epoch 1 goes, 250 bytes
    assert [(d["epoch"], d["bytes"]) for d in store.dropped(rid)] == [(1, 250)]
    assert store.snapshot_epochs(rid) == {0: [0, 2, 3, 4]}


def test_a_dropped_snapshot_can_be_neither_read_nor_returned_to(store: TreeStore) -> None:
    run = new_run(store, budget=250)
    grow(store, run, 0, {1: 1.0, 2: 2.0})
    assert places(store.dropped(run.run_id)) == [(0, 1)]
    with pytest.raises(InvalidValue, match="branch 0 has no snapshot at epoch 1"):
        store.snapshot(run.run_id, 0, 1)
    with pytest.raises(InvalidValue, match="branch 0 has no snapshot at epoch 1"):
        store.add_branch(run.run_id, parent=0, from_epoch=1, mode="exact", current=0)


def test_retention_keeps_each_run_to_its_own_budget(store: TreeStore) -> None:
    tight, roomy = new_run(store, "tight", budget=250), new_run(store, "roomy")
    grow(store, roomy, 0, {1: 1.0, 2: 2.0})
    grow(store, tight, 0, {1: 1.0, 2: 2.0})
    assert places(store.dropped(tight.run_id)) == [(0, 1)]
    assert store.dropped(roomy.run_id) == []
    assert store.snapshot_epochs(roomy.run_id) == {0: [0, 1, 2]}


# -- 7. JSON and copies -----------------------------------------------------------------------


def test_a_curve_value_that_is_not_finite_reads_back_as_nan(store: TreeStore) -> None:
    run = new_run(store)
    record = EpochRecord(1, math.inf, 0.25, -math.inf, math.nan)
    store.add_epoch(run.run_id, 0, StoredEpoch(record, 1.0), snap(1))
    ((stored,),) = store.curves(run.run_id).values()
    r = stored.record
    assert (r.epoch, r.train_accuracy, stored.time) == (1, 0.25, 1.0)
    assert math.isnan(r.train_loss) and math.isnan(r.val_loss) and math.isnan(r.val_accuracy)


def test_a_value_json_cannot_hold_writes_nothing(store: TreeStore) -> None:
    with pytest.raises(ValueError, match="Out of range float values are not JSON compliant"):
        store.create_run(
            "nan", config={"lr": math.nan}, spec=SPEC, source={}, budget=1, first=snap(0)
        )
    assert store.run_names() == []
    run = new_run(store)
    with pytest.raises(ValueError, match="Out of range float values are not JSON compliant"):
        store.add_commands(run.run_id, [(0, 0, "lr", 0.1, 0.2), (0, 0, "lr", 0.2, math.nan)])
    with pytest.raises(ValueError, match="Out of range float values are not JSON compliant"):
        store.boundary(run.run_id, [], status="x", branch=0, spec={"lr": math.inf})
    assert store.commands(run.run_id) == [] and store.version(run.run_id) == 1
    row = store.run("babysat")
    assert (row.status, store.branches(run.run_id)[0].spec) == ("running", SPEC)


def test_what_a_store_hands_out_is_the_callers_to_change(store: TreeStore) -> None:
    run = new_run(store)
    store.add_commands(run.run_id, [(0, 0, "space", {"lr": 0.1}, {"lr": [0.2]})])
    run.config["space"]["lr"] = 99
    store.branches(run.run_id)[0].spec["lr"] = 99
    store.commands(run.run_id)[0].new["lr"].append(99)
    store.run("babysat").spec["lr"] = 99
    assert store.run("babysat").config["space"] == {"lr": 0.001}
    assert store.run("babysat").spec == SPEC
    assert store.branches(run.run_id)[0].spec == SPEC
    assert store.commands(run.run_id)[0].new == {"lr": [0.2]}
    tight = new_run(store, "tight", budget=150)
    grow(store, tight, 0, {1: 1.0, 2: 2.0})
    store.dropped(tight.run_id)[0]["epoch"] = 99
    assert places(store.dropped(tight.run_id)) == [(0, 1)]


# -- 8. reads see one state ---------------------------------------------------------------------


@pytest.mark.slow
def test_a_read_sees_one_state_while_another_thread_writes(store: TreeStore) -> None:
    run = new_run(store)
    rid = run.run_id
    writer = threading.Thread(target=store.add_commands, args=(rid, [(0, 0, "lr", 0.1, 0.2)]))
    with store.read():
        assert store.version(rid) == 1
        writer.start()
        writer.join(timeout=0.5)  # it may wait for the read to end, or write beside it
        with store.read():  # a read inside a read shares it
            assert store.version(rid) == 1 and store.commands(rid) == []
        assert store.run("babysat").version == 1
    writer.join(timeout=30)
    assert not writer.is_alive()
    assert store.version(rid) == 2 and [c.new for c in store.commands(rid)] == [0.2]
