"""Datasets for tuning: MNIST, Fashion-MNIST, the embedded digits, the user's npz/csv files, and
the seeded, stratified validation split that every trial of a study shares."""

from caviar.data.dataset import Dataset
from caviar.data.download import DownloadError, cache_root
from caviar.data.idx import parse_idx, read_idx
from caviar.data.load import NAMES, SUFFIXES, load_dataset
from caviar.data.splits import Split, split_validation

__all__ = [
    "NAMES",
    "SUFFIXES",
    "Dataset",
    "DownloadError",
    "Split",
    "cache_root",
    "load_dataset",
    "parse_idx",
    "read_idx",
    "split_validation",
]
