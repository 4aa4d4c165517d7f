"""Hostile input that used to pass silently or end in a traceback: each is now an InvalidValue
naming the key or the file, the place (line, column) and the bad value or the OS reason."""

from __future__ import annotations

import re
import tempfile
import time
import zipfile
import zlib

import numpy as np
import pytest
from hostile_files import (
    Raw,
    X,
    Y,
    bomb,
    deflated,
    good,
    gzip_raw,
    idx,
    npy,
    npy_header,
    raw_zip,
    stored,
)

from caviar.core.errors import InvalidValue
from caviar.data import idx as idx_module
from caviar.data import load_dataset, parse_idx, read_idx
from caviar.data import mnist as mnist_module
from caviar.data import npz as npz_module

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


# --- npz files that lie (issue 27): sizes checked before anything is allocated --------------------

GIB = 2**30


@pytest.fixture
def memory(monkeypatch: pytest.MonkeyPatch):
    """Set the memory a data file may take, as caviar.data.memory would report it."""

    def set_available(n: int) -> None:
        monkeypatch.setattr(npz_module, "available_bytes", lambda: n)
        monkeypatch.setattr(idx_module, "available_bytes", lambda: n)

    return set_available


def test_a_npy_file_renamed_npz_says_what_it_is(tmp_path) -> None:
    """It was `TypeError: 'numpy.ndarray' object does not support the context manager protocol`."""
    np.save(tmp_path / "data.npy", np.zeros((10, 2)))
    path = (tmp_path / "data.npy").rename(tmp_path / "data.npz")
    with pytest.raises(InvalidValue) as info:
        load_dataset(path)
    assert str(info.value) == (
        f"{path}: is a .npy array, not a .npz archive; save the arrays with "
        "numpy.savez(path, x=x, y=y)"
    )


def test_a_header_claiming_600_by_1e9_is_refused_against_the_memory_available(
    tmp_path, memory
) -> None:
    """It was `_ArrayMemoryError: Unable to allocate 2.18 TiB`. 600 x 1e9 float32 values are
    2.4e12 bytes = 2.18 TiB; with their float32 copy 4.8e12 = 4.37 TiB."""
    path = tmp_path / "huge.npz"
    path.write_bytes(good(x=npy_header((600, 10**9), "<f4") + bytes(4000)))
    memory(16 * GIB)
    with pytest.raises(InvalidValue) as info:
        load_dataset(path)
    assert info.value.reason == (
        "array 'x' claims shape [600, 1000000000] of float32, 2.18 TiB (2400000000000 bytes); "
        "reading it with its float32 copy needs 4.37 TiB, more than the 16 GiB of memory available"
    )


def test_a_header_claiming_more_than_its_member_holds_is_refused(tmp_path, memory) -> None:
    path = tmp_path / "lies.npz"
    path.write_bytes(good(x=npy_header((600, 10**9), "<f4") + bytes(4000)))
    memory(2**50)  # as if the machine had the memory: the member still holds 4000 bytes
    with pytest.raises(InvalidValue) as info:
        load_dataset(path)
    assert info.value.reason == (
        "array 'x' claims shape [600, 1000000000] of float32, 2.18 TiB (2400000000000 bytes), "
        "but its member holds 3.91 KiB (4000 bytes) of data after the header (by the zip "
        "directory); the header lies or the file is damaged"
    )


def test_a_6_gib_zip_bomb_is_refused_at_once(tmp_path, memory) -> None:
    """It decompressed for 40 s before `_ArrayMemoryError`. 6 GiB of compressed zeros (6 MiB on
    disk), with a true header and zip directory, on a machine with 4 GiB available."""
    path = tmp_path / "bomb.npz"
    rows = 6 * GIB // 8 // 64
    path.write_bytes(raw_zip(bomb((rows, 64), "<f8", 6 * 1024), stored("y.npy", npy(Y))))
    memory(4 * GIB)
    start = time.perf_counter()
    with pytest.raises(InvalidValue) as info:
        load_dataset(path)
    assert time.perf_counter() - start < 1.0
    assert info.value.reason == (
        f"array 'x' claims shape [{rows}, 64] of float64, 6 GiB (6442450944 bytes); reading it "
        "with its float32 copy needs 9 GiB, more than the 4 GiB of memory available"
    )


def test_a_zip_directory_that_understates_a_bomb_bounds_what_is_read(tmp_path) -> None:
    """The header and the directory agree on 10 x 2 float64 (160 bytes) but the member's deflate
    stream runs on for 6 GiB: numpy reads count * itemsize bytes, zipfile no more than the
    directory's size, so the 10 rows load at once and the rest is never decompressed."""
    header = npy_header((10, 2))
    data = deflated(header, 6 * 1024)
    crc = zlib.crc32(header + bytes(160))
    member = Raw("x.npy", data, len(header) + 160, crc, zipfile.ZIP_DEFLATED)
    path = tmp_path / "understated.npz"
    path.write_bytes(raw_zip(member, stored("y.npy", npy(np.arange(10) % 2))))
    start = time.perf_counter()
    data = load_dataset(path)
    assert time.perf_counter() - start < 1.0
    assert len(data.x_train) + len(data.x_test) == 10
    assert not data.x_train.any() and not data.x_test.any()


def test_a_zip_directory_that_overstates_a_member_is_refused(tmp_path, memory) -> None:
    path = tmp_path / "overstated.npz"
    path.write_bytes(raw_zip(bomb((2**20, 4), "<f8", 32, size=6 * GIB), stored("y.npy", npy(Y))))
    memory(16 * GIB)
    with pytest.raises(InvalidValue) as info:
        load_dataset(path)
    assert info.value.reason == (
        "array 'x' claims shape [1048576, 4] of float64, 32 MiB (33554432 bytes), but its member "
        "holds 6 GiB (6442450816 bytes) of data after the header (by the zip directory); the "
        "header lies or the file is damaged"
    )


def test_memory_taken_by_earlier_arrays_counts(tmp_path, memory) -> None:
    """x (40 x 3 float64: 960 bytes, 1440 with its float32 copy) fits in 1500 bytes; then y (80
    int64: 640 bytes) does not fit in the 540 left."""
    path = tmp_path / "two.npz"
    np.savez(path, x=X, y=np.arange(80) % 2)
    memory(1500)
    with pytest.raises(InvalidValue) as info:
        load_dataset(path)
    assert info.value.reason == (
        "array 'y' claims shape [80] of int64, 640 bytes; that is more than the 540 bytes of "
        "memory available after the 960 bytes of the arrays before it"
    )


def test_a_member_compressed_with_bzip2_is_refused_before_it_is_decompressed(tmp_path) -> None:
    """zipfile decompresses a bzip2 member's compressed bytes whole: 4 KiB can be gigabytes."""
    path = tmp_path / "bz.npz"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_BZIP2) as archive:
        archive.writestr("x.npy", npy(X))
        archive.writestr("y.npy", npy(Y))
    with pytest.raises(InvalidValue) as info:
        load_dataset(path)
    assert info.value.reason == (
        "array 'x' (member 'x.npy') is compressed with bzip2; caviar reads members stored or "
        "deflated, as numpy.savez and numpy.savez_compressed write them"
    )


def test_npz_written_by_numpy_still_loads(tmp_path) -> None:
    for save in (np.savez, np.savez_compressed):
        path = tmp_path / f"{save.__name__}.npz"
        save(path, x=X, y=Y, x_test=X[:4], y_test=Y[:4])
        data = load_dataset(path)
        np.testing.assert_array_equal(data.x_train, X.astype(np.float32))
        np.testing.assert_array_equal(data.x_test, X[:4].astype(np.float32))


# --- IDX files that lie ---------------------------------------------------------------------------


def test_an_idx_gzip_bomb_is_refused_before_it_is_decompressed(tmp_path, memory) -> None:
    """A gzip stream of 6 GiB of zeros under a true IDX header of [8217411, 28, 28] ubyte."""
    n = 6 * GIB // 784
    path = tmp_path / "bomb-idx3-ubyte.gz"
    path.write_bytes(gzip_raw(deflated(idx(0x08, (n, 28, 28)), 6 * 1024)))
    memory(4 * GIB)
    start = time.perf_counter()
    with pytest.raises(InvalidValue) as info:
        read_idx(path)
    assert time.perf_counter() - start < 1.0
    assert info.value.reason == (
        f"IDX dims {n}x28x28 of uint8 claim 6 GiB ({n * 784} bytes), and reading them takes "
        "twice that: more than the 4 GiB of memory available"
    )


def test_idx_dims_whose_product_overflows_int64_are_not_wrapped() -> None:
    """(2**32 - 1)**3 is about 7.9e28; in int64 it wrapped to a number that could match."""
    with pytest.raises(InvalidValue) as info:
        parse_idx(idx(0x08, (2**32 - 1,) * 3))
    assert info.value.reason == (
        f"IDX payload must hold {(2**32 - 1) ** 3} bytes for dims "
        "4294967295x4294967295x4294967295 of uint8, got 0 bytes"
    )


def test_a_padded_gzip_idx_is_refused_without_reading_the_padding(tmp_path) -> None:
    path = tmp_path / "padded.gz"
    path.write_bytes(gzip_raw(deflated(idx(0x08, (4,)), 64)))  # 4 bytes promised, 64 MiB given
    with pytest.raises(InvalidValue) as info:
        read_idx(path)
    assert (
        info.value.reason
        == "IDX payload must hold 4 bytes for dims 4 of uint8, got more than 4 bytes"
    )
