"""The trainer and its controls: commands at the boundary, checks, rollback modes, statuses."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
import torch
from conftest import MakeConfig

from caviar.core.errors import InvalidValue
from caviar.core.records import EpochRecord
from caviar.nn import MemberSpec
from caviar.panda.control_api import Controller
from caviar.panda.controller import parse_assignments
from caviar.panda.epochs import panda_config, spec_from_config
from caviar.panda.trainer import PandaRun


def train(run: PandaRun, epochs: int) -> list[EpochRecord]:
    out = []
    for _ in range(epochs):
        record = run.step()
        assert record is not None
        out.append(record)
    return out


def same_tensors(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_the_controller_meets_the_contract(run: PandaRun) -> None:
    controller: Controller = run.controller()
    train(run, 1)
    state = controller.state()
    assert set(state) == {
        "run", "branch", "epoch", "hyperparameters", "mutable", "branches", "curves",
        "commands", "snapshots", "version", "dropped",
    }  # fmt: skip
    json.dumps(state, allow_nan=False)
    assert state["run"]["status"] == "running" and state["run"]["dtype"] == "float32"
    assert state["epoch"] == 1 and state["snapshots"] == {"0": [0, 1]}
    assert [p["epoch"] for p in state["curves"]["0"]] == [1]
    assert state["hyperparameters"]["hidden_units"] == 8
    assert "lr" in state["mutable"] and "hidden_units" not in state["mutable"]


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"lr": -1.0}, r"set lr: must be a number in \(0, inf\), got -1.0"),
        ({"hidden_units": 16}, r"set hidden_units: cannot change mid-run.*may change: \['lr'"),
        ({"learning_rate": 0.1}, r"set learning_rate: unknown hyperparameter"),
        ({"lr_decay": "cosine"}, r"set lr_decay: must be one of \['none'"),
        ({"lr": 0.1, "beta1": 1.5}, r"set beta1: must be a number in \[0, 1\)"),
        ({"lr_decay": "exponential", "decay_rate": 2.0}, r"set.decay_rate.*\(0, 1\]"),
        ({"epochs": 1}, r"set epochs: must be >= the 2 epochs done, got 1"),
        ({}, r"set: give at least one of"),
    ],
)
def test_a_bad_key_or_value_is_refused_and_nothing_recorded(
    run: PandaRun, changes: dict[str, object], match: str
) -> None:
    controller = run.controller()
    train(run, 2)
    before = controller.state()
    with pytest.raises(InvalidValue, match=match):
        controller.set(changes)
    assert controller.state() == before  # no command, not even a version


def test_assignments_are_read_as_their_hyperparameters_kinds() -> None:
    assert parse_assignments(["lr=3e-3", "epochs=7", "lr_decay=step"]) == {
        "lr": 0.003,
        "epochs": 7,
        "lr_decay": "step",
    }
    with pytest.raises(InvalidValue, match=r"set epochs: must be an integer.*got '7.5'"):
        parse_assignments(["epochs=7.5"])
    with pytest.raises(InvalidValue, match=r"key=value, got 'lr'"):
        parse_assignments(["lr"])


def test_a_change_given_mid_epoch_waits_for_the_boundary(make_config: MakeConfig) -> None:
    reference = PandaRun.create(make_config(name="reference"))
    train(reference, 2)
    reference.controller().set({"lr": 0.02})
    expected = train(reference, 2)

    run = PandaRun.create(make_config(name="probed"))
    controller = run.controller()
    batches: list[int] = []

    def probe() -> None:  # before every mini-batch: give the change in epoch 2's third batch
        batches.append(run.state.epoch)
        if batches.count(1) == 3:
            assert controller.set({"lr": 0.02})[0]["applied"] is False

    run.engine.before_batch = probe
    first = train(run, 2)
    (command,) = controller.state()["commands"]
    assert command["applied"] and command["epoch"] == 2 and command["old"] == 0.001
    assert first == reference.stored_curve(0)[:2]  # epoch 2 ran on at the old rate
    assert train(run, 2) == expected  # and the change took effect at boundary 2, exactly


def test_a_change_after_a_restore_wins_over_the_restored_optimizer(run: PandaRun) -> None:
    """Lightning-AI/pytorch-lightning #12118: a restored optimizer kept its old learning rate."""
    controller = run.controller()
    original = train(run, 3)
    branch = controller.rollback(1)
    controller.set({"lr": 0.05})  # given after the rollback, for the new branch
    assert controller.state()["commands"][-1]["branch"] == branch
    (record,) = train(run, 1)
    assert run.branch == branch and run.spec.lr == 0.05
    snapshot = run.tree.snapshot(run.run_id, 0, 1)
    expected = run.engine.train_epoch(
        MemberSpec(**{**snapshot.spec.to_dict(), "lr": 0.05}), snapshot
    )
    assert record == expected.record != original[1]
    assert run.tree.snapshot(run.run_id, branch, 2).spec.lr == 0.05


def test_rollback_exact_continues_bit_for_bit(make_config: MakeConfig) -> None:
    run = PandaRun.create(make_config(batch_norm=True, dropout=0.2))
    controller = run.controller()
    original = train(run, 4)
    branch = controller.rollback(2)
    again = train(run, 2)
    assert again == original[2:]
    for epoch in (3, 4):
        a = run.tree.snapshot(run.run_id, 0, epoch)
        b = run.tree.snapshot(run.run_id, branch, epoch)
        assert same_tensors(a.params, b.params) and a.optimizer_steps == b.optimizer_steps
        for slot in a.optimizer:
            assert same_tensors(a.optimizer[slot], b.optimizer[slot])
        assert all(map(torch.equal, a.running_var, b.running_var))


def test_rollback_fresh_zeroes_the_optimizer_and_keeps_the_weights(
    make_config: MakeConfig,
) -> None:
    run = PandaRun.create(make_config(batch_norm=True))
    controller = run.controller()
    train(run, 3)
    controller.rollback(2, mode="fresh")
    run.apply_commands()
    snapshot = run.tree.snapshot(run.run_id, 0, 2)
    assert run.state.optimizer_steps == 0 and snapshot.optimizer_steps == 8  # 4 batches/epoch
    for slot in ("exp_avg", "exp_avg_sq"):
        assert all(not t.any() for t in run.state.optimizer[slot].values())
        assert any(t.any() for t in snapshot.optimizer[slot].values())
    assert same_tensors(run.state.params, snapshot.params)
    assert all(map(torch.equal, run.state.running_mean, snapshot.running_mean))
    assert controller.state()["branches"][1]["mode"] == "fresh"
    train(run, 1)
    assert run.state.optimizer_steps == 4


def test_rollback_refuses_what_it_cannot_do(run: PandaRun) -> None:
    controller = run.controller()
    train(run, 2)
    with pytest.raises(InvalidValue, match=r"rollback mode: must be one of \['exact', 'fresh'\]"):
        controller.rollback(1, mode="warm")
    with pytest.raises(
        InvalidValue, match=r"rollback epoch: branch 0 can return to epochs \[0, 1, 2\]"
    ):
        controller.rollback(3)
    with pytest.raises(InvalidValue, match=r"rollback branch: must be one of \[0\], got 4"):
        controller.rollback(1, branch=4)
    assert controller.state()["commands"] == []


def test_a_branch_returns_to_its_parents_epochs(run: PandaRun) -> None:
    controller = run.controller()
    train(run, 3)
    first = controller.rollback(2)
    train(run, 2)
    second = controller.rollback(1)  # epoch 1 belongs to the root
    branches = controller.state()["branches"]
    assert branches[first]["parent"] == 0 and branches[second] == {
        **branches[second], "parent": 0, "from_epoch": 1, "mode": "exact",
    }  # fmt: skip
    third = controller.rollback(4, branch=first)
    assert controller.state()["branches"][third]["parent"] == first


def test_pause_resume_stop_and_more_epochs(run: PandaRun) -> None:
    controller = run.controller()
    train(run, 1)
    controller.pause()
    assert run.step() is None and run.status == "paused"
    controller.set({"lr": 0.01})  # applied at this boundary while paused
    assert run.step() is None and run.spec.lr == 0.01
    controller.resume()
    train(run, 4)
    assert run.step() is None and run.status == "finished" and run.epoch == 5
    controller.set({"epochs": 6})
    train(run, 1)
    assert run.status == "finished" and run.epoch == 6
    keys = [(c["key"], c["applied"]) for c in controller.state()["commands"]]
    assert keys == [("pause", True), ("lr", True), ("resume", True), ("epochs", True)]


def test_the_loop_in_a_thread_stops_on_command(run: PandaRun) -> None:
    controller = run.controller()
    version = controller.version()
    thread = threading.Thread(target=run.train)
    thread.start()
    assert controller.wait(version, timeout=30) > version  # an epoch came
    controller.stop()
    thread.join(timeout=30)
    assert not thread.is_alive()
    state = controller.state()
    assert state["run"]["status"] == "stopped"
    assert controller.wait(state["version"], timeout=0.3) == state["version"]  # nothing moves


def test_a_panda_config_is_one_model(tmp_path: Path) -> None:
    path = tmp_path / "babysit.toml"
    path.write_text("[space]\nlr = 0.01\n[data]\ntrain_size = 300\n")
    config = panda_config(path)  # no [search] trials needed
    assert config.name == "babysit" and spec_from_config(config).lr == 0.01
    searched = panda_config({"space": {"lr": {"low": 1e-3, "high": 1e-1, "scale": "log"}}})
    with pytest.raises(InvalidValue, match=r"space.lr: a panda run trains one model"):
        spec_from_config(searched)
