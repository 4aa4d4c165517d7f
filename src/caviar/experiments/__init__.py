"""The textbook lessons as experiments: each trains its variants together on the population
engine, writes a PNG and a JSON of its numbers, and prints a short table.

The names below are imported on first use, so that ``caviar --help`` does not load torch.
"""

from __future__ import annotations

import importlib

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from caviar.experiments.base import Experiment, Options, Result, run_experiment
    from caviar.experiments.registry import EXPERIMENTS

__all__ = ["EXPERIMENTS", "Experiment", "Options", "Result", "run_experiment"]

_HOMES = {
    "EXPERIMENTS": "caviar.experiments.registry",
    "Experiment": "caviar.experiments.base",
    "Options": "caviar.experiments.base",
    "Result": "caviar.experiments.base",
    "run_experiment": "caviar.experiments.base",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'caviar.experiments' has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)
