"""``load_dataset``: one entry point for the named datasets and for the user's own files."""

from __future__ import annotations

import os
from pathlib import Path

from caviar.core.errors import InvalidValue, got
from caviar.core.suggest import did_you_mean
from caviar.data.dataset import Dataset
from caviar.data.digits import load_digits
from caviar.data.download import DownloadError
from caviar.data.files import load_csv, load_npz
from caviar.data.mnist import FILES, load_idx_dataset

#: names that need no file from the user ("digits" needs no network either)
NAMES = ("digits", "fashion-mnist", "mnist")
#: file suffixes read as user data
SUFFIXES = (".csv", ".npz")


def load_dataset(
    name_or_path: str | os.PathLike[str],
    *,
    data_dir: str | os.PathLike[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    train_size: int | None = None,
    test_size: int | None = None,
    label_column: str = "label",
    download: bool = True,
    key_prefix: str = "",
) -> Dataset:
    """A classification dataset by name ("mnist", "fashion-mnist", "digits") or from a ``.npz``
    or ``.csv`` file, cut to its first ``train_size`` / ``test_size`` examples.

    MNIST and Fashion-MNIST are read from ``data_dir`` if given (and only from there), else from
    the cache (``cache_dir``, ``$CAVIAR_CACHE``, ``$XDG_CACHE_HOME/caviar`` or
    ``~/.cache/caviar``), downloading missing files unless ``download`` is False. ``label_column``
    names the label column of a csv file. Bad input raises
    :class:`~caviar.core.errors.InvalidValue`; a download that fails on every mirror raises
    :class:`~caviar.data.DownloadError`. An error about ``data_dir`` or ``cache_dir`` (missing,
    not a folder, not writable: with the path and the OS reason) is owned by ``key_prefix`` +
    the parameter's name, e.g. ``data.cache_dir`` for ``key_prefix="data."``.
    """
    owner = f"{key_prefix}dataset" if key_prefix else "load_dataset.name_or_path"
    dir_owner = f"{key_prefix}data_dir" if key_prefix else "load_dataset.data_dir"
    if not isinstance(name_or_path, str | os.PathLike):
        raise InvalidValue(owner, f"must be a name or a path, {got(name_or_path)}")
    text = os.fspath(name_or_path)
    suffix = Path(text).suffix.lower()
    key = text.strip().lower().replace("_", "-")
    if data_dir is not None and key not in FILES:
        raise InvalidValue(
            dir_owner,
            f"applies only to {', '.join(sorted(FILES))}, got data_dir for {text!r}",
        )
    try:
        dataset = _load(key, text, suffix, data_dir, cache_dir, label_column, download, key_prefix)
    except InvalidValue as e:
        if not key_prefix or e.owner.startswith(key_prefix):
            raise
        raise InvalidValue(owner, f"{e.owner}: {e.reason}") from None  # a file's own complaint
    except OSError as e:
        if isinstance(e, DownloadError) or not key_prefix:
            raise
        raise InvalidValue(owner, f"cannot read {text!r}: {e.strerror or e}") from None
    try:
        return dataset.head(train_size, test_size)
    except InvalidValue as e:  # "Dataset 'digits': train_size must be in [1, 1438], got 5000"
        size, _, rest = e.reason.partition(" ")
        if key_prefix and size in ("train_size", "test_size"):
            raise InvalidValue(f"{key_prefix}{size}", f"{rest} for {dataset.name!r}") from None
        raise


def _load(
    key: str,
    text: str,
    suffix: str,
    data_dir: str | os.PathLike[str] | None,
    cache_dir: str | os.PathLike[str] | None,
    label_column: str,
    download: bool,
    key_prefix: str,
) -> Dataset:
    if key in FILES:
        return load_idx_dataset(
            key, data_dir=data_dir, cache_dir=cache_dir, download=download, key_prefix=key_prefix
        )
    if key == "digits":
        return load_digits()
    if suffix == ".npz":
        return load_npz(Path(text).expanduser())
    if suffix == ".csv":
        return load_csv(Path(text).expanduser(), label_column=label_column)
    raise InvalidValue(
        f"{key_prefix}dataset" if key_prefix else "load_dataset.name_or_path",
        f"must be one of {', '.join(NAMES)} or a file ending in {' or '.join(SUFFIXES)}, "
        f"{got(text)}" + did_you_mean(text, NAMES),
    )
