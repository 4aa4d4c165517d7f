"""Samplers: they see only the unit cube; the search space maps their points to values."""

from caviar.samplers.base import Proposal, Sampler
from caviar.samplers.coarse_to_fine import CoarseToFineSampler
from caviar.samplers.grid import GridSampler, GridWarning
from caviar.samplers.random import RandomSampler
from caviar.samplers.tpe import TPESampler

__all__ = [
    "CoarseToFineSampler",
    "GridSampler",
    "GridWarning",
    "Proposal",
    "RandomSampler",
    "Sampler",
    "TPESampler",
]
