"""Fixtures for the experiment tests: one CPU thread (tiny tensors: thread hand-offs dominate on
a shared 2-core machine), and the --quick results computed once per session."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from caviar.experiments import EXPERIMENTS, Options, Result, run_experiment

MNIST = Path(__file__).resolve().parents[2].parent / "shared" / "datasets" / "mnist"


@pytest.fixture(autouse=True, scope="session")
def one_thread() -> Any:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def refuse(constant: str) -> Any:
    """json.loads' parse_constant as JavaScript's JSON.parse: NaN and Infinity are not JSON."""
    raise ValueError(f"not strict JSON (JSON.parse refuses it): {constant}")


class QuickRuns:
    """Each experiment's --quick run (on digits), made on first use and kept."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.results: dict[tuple[str, str], Result] = {}

    def __call__(self, name: str, way: str = "caviar") -> Result:
        key = (name, way)
        if key not in self.results:
            out = self.root / f"{name}-{way}"
            self.results[key] = run_experiment(
                EXPERIMENTS[name],
                Options(quick=True, way=way, out=out, threads=1),
                echo=lambda s: None,
            )
        return self.results[key]


@pytest.fixture(scope="session")
def quick(tmp_path_factory: pytest.TempPathFactory) -> QuickRuns:
    return QuickRuns(tmp_path_factory.mktemp("experiments"))
