"""Hostile input that used to pass silently or end in a traceback: each is now an InvalidValue
naming the key or the file, the place (line, column) and the bad value or the OS reason."""

from __future__ import annotations

import re
import tempfile

import numpy as np
import pytest

from caviar.core.errors import InvalidValue
from caviar.data import load_dataset
from caviar.data import mnist as mnist_module

NOWHERE = ("http://127.0.0.1:9/never/",)  # a port nobody serves: a fetch would fail loudly


@pytest.fixture
def offline(monkeypatch) -> None:
    monkeypatch.setitem(mnist_module.MIRRORS, "mnist", NOWHERE)
    monkeypatch.delenv("CAVIAR_CACHE", raising=False)


# --- the cache folder and data_dir ----------------------------------------------------------------


def test_cache_dir_under_a_regular_file(offline, tmp_path) -> None:
    (tmp_path / "afile").write_text("not a folder")
    folder = tmp_path / "afile" / "sub" / "mnist"
    with pytest.raises(
        InvalidValue,
        match=rf"^data\.cache_dir: cannot create the cache folder '{re.escape(str(folder))}': "
        r"Not a directory$",
    ):
        load_dataset("mnist", cache_dir=tmp_path / "afile" / "sub", key_prefix="data.")


def test_cache_folder_from_the_environment_says_so(offline, monkeypatch, tmp_path) -> None:
    (tmp_path / "afile").write_text("not a folder")
    monkeypatch.setenv("CAVIAR_CACHE", str(tmp_path / "afile"))
    folder = tmp_path / "afile" / "mnist"
    with pytest.raises(
        InvalidValue,
        match=rf"^cache_dir: cannot create the cache folder '{re.escape(str(folder))}' "
        r"\(set by \$CAVIAR_CACHE\): Not a directory$",
    ):
        load_dataset("mnist")


def test_cache_folder_that_cannot_be_written(offline, monkeypatch, tmp_path) -> None:
    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)  # as a read-only folder answers, even to root
    folder = tmp_path / "ro" / "mnist"
    with pytest.raises(
        InvalidValue,
        match=rf"^data\.cache_dir: cannot write in the cache folder '{re.escape(str(folder))}': "
        r"Permission denied$",
    ):
        load_dataset("mnist", cache_dir=tmp_path / "ro", key_prefix="data.")


@pytest.mark.parametrize(("make", "state"), [(False, "does not exist"), (True, "is a file")])
def test_data_dir_that_is_not_a_folder(tmp_path, make, state) -> None:
    path = tmp_path / "files"
    if make:
        path.write_text("x")
    with pytest.raises(
        InvalidValue,
        match=rf"^data\.data_dir: must be a folder holding the mnist IDX files, "
        rf"got '{re.escape(str(path))}', which {state}$",
    ):
        load_dataset("mnist", data_dir=path, key_prefix="data.")


# --- csv cells and labels -------------------------------------------------------------------------


def write(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("rows", "match"),
    [
        (
            "1,0.5\n2,1.5\n",
            r"line 2, column 'label': must be an integer or a class name, got '0\.5'",
        ),
        ("1,0\n2,1e3\n", r"line 3, column 'label': must be an integer or a class name, got '1e3'"),
        ("1,1_0\n2,1\n", r"line 2, column 'label': must be an integer or a class name, got '1_0'"),
        ("1,٣\n2,1\n", r"line 2, column 'label': must be an integer or a class name, got '٣'"),
        ("1,0\n2,nan\n", r"line 3, column 'label': must be an integer or a class name, got 'nan'"),
        (
            "1,0\n2,99999999999999999999\n",
            r"line 3, column 'label': must fit in int64 \(from -2\*\*63 to 2\*\*63 - 1\), "
            r"got '99999999999999999999'",
        ),
        ("1_000,0\n2,1\n", r"line 2, column 'a': must be a plain decimal number, got '1_000'"),
        ("1,0\n١٢,1\n", r"line 3, column 'a': must be a plain decimal number, got '١٢'"),
        ("0x10,0\n2,1\n", r"line 2, column 'a': must be a number, got '0x10'"),
    ],
)
def test_csv_numbers_must_be_plain(tmp_path, rows, match) -> None:
    path = write(tmp_path, "bad.csv", "a,label\n" + rows * 5)
    with pytest.raises(InvalidValue, match=rf"^{re.escape(str(path))}: {match}$"):
        load_dataset(path)


def test_csv_plain_numbers_still_read(tmp_path) -> None:
    # integral decimals are integer labels (2.0 -> 2), spaces around a number are fine
    path = write(tmp_path, "ok.csv", "a,label\n" + " 1.5 ,2.0\n-3e2,-1\n.5,+2\n" * 5)
    data = load_dataset(path)
    assert data.class_names == ("-1", "2")
    x = sorted(np.vstack([data.x_train, data.x_test])[:, 0].tolist())
    assert x == [-300.0] * 5 + [0.5] * 5 + [1.5] * 5


def test_csv_utf16_says_so(tmp_path) -> None:
    path = tmp_path / "wide.csv"
    path.write_bytes("a,label\n1,0\n2,1\n".encode("utf-16"))
    with pytest.raises(
        InvalidValue,
        match=r"not a readable UTF-8 csv file: it starts with a UTF-16 byte order mark; "
        r"save it as UTF-8",
    ):
        load_dataset(path)


@pytest.mark.parametrize("name", ["folder.csv", "folder.npz"])
def test_a_folder_is_not_a_data_file(tmp_path, name) -> None:
    (tmp_path / name).mkdir()
    with pytest.raises(InvalidValue, match=r"folder\.(csv|npz): is a folder, not a file$"):
        load_dataset(tmp_path / name)


# --- npz labels -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("y", "shown"),
    [
        (np.array([2**64 - 1, 1] * 5, dtype=np.uint64), "18446744073709551615"),
        (np.array([1e30, 1.0] * 5), "1e+30"),
    ],
)
def test_npz_labels_beyond_int64(tmp_path, y, shown) -> None:
    path = tmp_path / "big.npz"
    np.savez(path, x=np.zeros((10, 2)), y=y)
    with pytest.raises(
        InvalidValue, match=rf"y must hold labels that fit in int64, got {re.escape(shown)}$"
    ):
        load_dataset(path)
