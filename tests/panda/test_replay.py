"""Replay: every leaf trained again from the root with its commands gives its stored curve, bit
for bit, on the CPU; and a run started from a caviar trial continues its kept state."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from conftest import TINY, MakeConfig

from caviar.panda.trainer import PandaRun
from caviar.search.config import config_from_mapping
from caviar.search.job import tune
from caviar.search.kept import kept_state_path, read_state

NETS = {
    "adam, dropout": {"dropout": 0.25},
    "momentum, batch norm, step decay": {
        "optimizer": "momentum",
        "batch_norm": True,
        "lr": 0.05,
        "lr_decay": "step",
        "decay_rate": 0.5,
        "decay_every": 2,
    },
}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("net", list(NETS))
def test_every_leaf_replays_bit_for_bit(make_config: MakeConfig, dtype: str, net: str) -> None:
    run = PandaRun.create(make_config(dtype=dtype, **NETS[net]))
    controller = run.controller()
    for _ in range(2):
        run.step()
    controller.set({"lr": 0.02, "beta1": 0.8})  # applied at boundary 2
    for _ in range(2):
        run.step()
    exact = controller.rollback(1)
    controller.set({"lr": 0.005, "weight_decay": 1e-3})  # at boundary 1 of the new branch
    for _ in range(3):
        run.step()
    fresh = controller.rollback(3, branch=0, mode="fresh")
    controller.set({"dropout": 0.1})
    for _ in range(2):
        run.step()
    assert run.status == "finished"
    for leaf, epochs in ((0, 4), (exact, 4), (fresh, 5)):
        stored = run.stored_curve(leaf)
        assert [r.epoch for r in stored] == list(range(1, epochs + 1))
        assert run.replay(leaf) == stored, f"branch {leaf}"
    assert run.stored_curve(exact)[1] != run.stored_curve(0)[1]  # the changes changed things


def test_a_run_from_a_kept_trial_continues_its_state(tmp_path: Path) -> None:
    db = tmp_path / "caviar.db"
    config = config_from_mapping(
        {
            "study": {"name": "searched", "storage": str(db), "device": "cpu"},
            "data": {"dataset": "digits", "train_size": 300},
            "search": {"trials": 2, "keep_models": 1},
            "space": {**TINY, "epochs": 2, "lr": {"low": 1e-3, "high": 1e-2, "scale": "log"}},
        }
    )
    study = tune(config, progress=False, report=False)
    best = study.best_trial
    assert best is not None
    study.close()
    kept = read_state(kept_state_path(db, "searched", best.number))

    run = PandaRun.from_trial("searched", best.number, storage=db)
    assert run.epoch == 2 and run.spec.epochs == 4 and run.spec.lr == best.params["lr"]
    assert torch.equal(run.state.params["W0"], kept.params["W0"])
    run.step()
    assert run.epoch == 3 and run.state.optimizer_steps == kept.optimizer_steps + 4
    state: dict[str, Any] = run.controller().state()
    assert state["run"]["name"] == f"searched-trial-{best.number}"
    assert run.replay(0) == run.stored_curve(0)  # from the root's first snapshot, the kept state

    scratch = PandaRun.from_trial("searched", best.number, storage=db, name="s", use_state=False)
    assert scratch.epoch == 0 and scratch.spec.seed == best.seed
    assert scratch.replay(0) == []
