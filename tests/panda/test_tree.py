"""The persisted tree: reopened whole, shared with another process, kept under a disk budget."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from conftest import MakeConfig

from caviar.core.records import EpochRecord
from caviar.panda.listing import list_runs
from caviar.panda.trainer import PandaRun
from caviar.panda.tree import PandaTree
from caviar.storage import InMemoryTreeStore, SQLiteStorage
from caviar.storage.tree_rows import StoredEpoch
from caviar.study import Study


def test_a_reopened_run_shows_the_whole_tree_and_continues_exactly(
    make_config: MakeConfig, db: Path
) -> None:
    run = PandaRun.create(make_config())
    controller = run.controller()
    for _ in range(3):
        run.step()
    controller.set({"lr": 0.01})
    run.step()
    controller.rollback(2, mode="fresh")
    run.step()
    controller.set({"beta1": 0.8})  # pending when the process "dies"
    state = controller.state()
    run.tree.close()

    again = PandaRun.open("babysat", db)  # a new tree, new connections, as a new process
    assert again.controller().state() == state
    assert again.branch == 1 and again.epoch == 3 and again.spec.lr == 0.001
    again.step()
    assert again.spec.beta1 == 0.8 and again.epoch == 4
    assert PandaRun.create(make_config()).epoch == 4  # create reopens a run of that name


def test_the_tree_shares_the_study_file(make_config: MakeConfig, db: Path) -> None:
    study = Study.create("searched", {"lr": {"choice": [1e-4, 1e-1]}}, storage=db)
    study.close()
    run = PandaRun.create(make_config())
    run.step()
    run.tree.close()
    (summary,) = list_runs(db)
    assert summary.name == "babysat" and summary.status == "running" and summary.source == "config"
    assert summary.describe()[1].startswith("  branch 0: root, epoch 1, val acc")
    storage = SQLiteStorage(db, read_only=True)
    assert storage.study_names() == ["searched"]
    storage.close()
    assert list_runs(db.parent / "none.db") == []


def test_a_file_without_panda_tables_lists_no_runs(db: Path) -> None:
    Study.create("searched", {"lr": {"choice": [1e-4, 1e-1]}}, storage=db).close()
    assert list_runs(db) == []
    assert "panda" not in " ".join(
        r[0] for r in __import__("sqlite3").connect(db).execute("SELECT name FROM sqlite_master")
    )  # listing wrote nothing


@pytest.mark.slow
def test_a_command_from_another_process_is_picked_up(run: PandaRun, db: Path) -> None:
    run.step()
    controller = run.controller()
    version = controller.version()
    script = textwrap.dedent(
        f"""
        from caviar.panda.controller import PandaController
        from caviar.panda.tree import PandaTree
        PandaController(PandaTree({str(db)!r}), "babysat").set({{"lr": 0.02}})
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)
    assert controller.wait(version, timeout=5) > version  # seen through the store
    run.step()
    (command,) = controller.state()["commands"]
    assert command["applied"] and command["epoch"] == 1 and run.spec.lr == 0.02


def test_retention_drops_the_oldest_and_says_which(make_config: MakeConfig, db: Path) -> None:
    probe = PandaRun.create(make_config(name="probe"))
    size = len(probe.state.to_bytes())
    run = PandaRun.create(make_config(epochs=8), snapshot_budget_mb=4.5 * size / 2**20)
    controller = run.controller()
    for _ in range(5):
        run.step()
    assert controller.state()["snapshots"] == {"0": [0, 3, 4, 5]}  # 4 fit; the root's start
    controller.rollback(3)
    for _ in range(2):
        run.step()
    state = controller.state()
    dropped = [(d["branch"], d["epoch"]) for d in state["dropped"]]
    assert dropped == [(0, 1), (0, 2), (0, 4), (1, 4)]  # the oldest first
    # kept: the root's start, the epoch branch 1 grew from, each branch's latest
    assert state["snapshots"] == {"0": [0, 3, 5], "1": [5]}
    assert all(d["bytes"] == size for d in state["dropped"])
    assert "4 snapshots dropped" in list_runs(db)[1].describe()[0]
    # what was kept still loads, bit for bit what was trained
    tree = PandaTree(db)
    assert torch.equal(tree.snapshot(run.run_id, 1, 5).params["W0"], run.state.params["W0"])


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
def test_snapshots_come_back_bit_for_bit_from_either_store(
    run: PandaRun, tmp_path: Path, backend: str
) -> None:
    tree = PandaTree(InMemoryTreeStore() if backend == "memory" else tmp_path / "other.db")
    start = run.state
    row = tree.create_run(
        "copy", config={}, spec=run.spec.to_dict(), source={}, budget=2**30, first=start
    )
    run.step()
    tree.add_epoch(row.run_id, 0, StoredEpoch(EpochRecord(1), 1.0), run.state)
    assert tree.snapshot_epochs(row.run_id) == {0: [0, 1]}
    for stored, trained in (
        (tree.snapshot(row.run_id, 0, 0), start),
        (tree.snapshot(row.run_id, 0, 1), run.state),
    ):
        assert (stored.epoch, stored.optimizer_steps) == (trained.epoch, trained.optimizer_steps)
        assert stored.spec == trained.spec
        assert stored.params.keys() == trained.params.keys()
        assert all(torch.equal(stored.params[k], trained.params[k]) for k in trained.params)
    assert (start.epoch, run.state.epoch) == (0, 1)
