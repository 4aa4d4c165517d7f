"""Fixtures for the panda tests: tiny nets on 300 digits, one CPU thread, a study file per test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from caviar.panda.trainer import PandaRun
from caviar.search.config import StudyConfig, config_from_mapping

#: a small net that learns something in a few epochs of 240 examples
TINY: dict[str, Any] = {"hidden_units": 8, "n_layers": 1, "batch_size": 60, "epochs": 5}

MakeConfig = Callable[..., StudyConfig]


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """Results bit for bit need fixed threads (and one is fastest for nets this small)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "caviar.db"


@pytest.fixture
def make_config(db: Path) -> MakeConfig:
    def make(*, dtype: str = "float32", name: str = "babysat", **space: Any) -> StudyConfig:
        return config_from_mapping(
            {
                "study": {"name": name, "storage": str(db), "dtype": dtype, "device": "cpu"},
                "data": {"dataset": "digits", "train_size": 300},
                "search": {"trials": 1},
                "space": {**TINY, **space},
            }
        )

    return make


@pytest.fixture
def run(make_config: MakeConfig) -> PandaRun:
    return PandaRun.create(make_config())
