"""The textbook lessons as experiments: each trains its variants together on the population
engine, writes a PNG and a JSON of its numbers, and prints a short table."""

from caviar.experiments.base import Experiment, Options, Result, run_experiment
from caviar.experiments.registry import EXPERIMENTS

__all__ = ["EXPERIMENTS", "Experiment", "Options", "Result", "run_experiment"]
