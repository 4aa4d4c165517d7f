"""Datasets for tuning: MNIST, Fashion-MNIST, the embedded digits, the user's npz/csv files, and
the seeded, stratified validation split that every trial of a study shares."""

from caviar.data.checks import DataWarning, check_batch_size, split_for_study
from caviar.data.dataset import Dataset
from caviar.data.download import DownloadError, cache_root
from caviar.data.idx import parse_idx, read_idx
from caviar.data.load import NAMES, SUFFIXES, load_dataset
from caviar.data.splits import Split, split_validation

__all__ = [
    "NAMES",
    "SUFFIXES",
    "DataWarning",
    "Dataset",
    "DownloadError",
    "Split",
    "cache_root",
    "check_batch_size",
    "load_dataset",
    "parse_idx",
    "read_idx",
    "split_for_study",
    "split_validation",
]
