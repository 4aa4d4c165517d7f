"""Hostile data files given to `caviar tune --dataset FILE` (issue 27): each family of the data
fuzz (tests/data/test_data_fuzz.py) once more through the command line. A refused file is one line
`caviar: error: data.dataset: FILE: ...` with exit status 2, and the study file beside it keeps
every byte; data that can't be learned is one `caviar: warning:` line with the numbers."""

from __future__ import annotations

import gzip
import io
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest

from caviar import LogUniform, Study
from caviar.cli.main import main
from caviar.data import npz as npz_module

GIB = 2**30
X = (np.arange(200 * 4, dtype=np.float64).reshape(200, 4) * 7) % 13  # [200, 4], learnable
Y = np.arange(200) % 2


def npy(array: np.ndarray) -> bytes:
    out = io.BytesIO()
    np.lib.format.write_array(out, array)
    return out.getvalue()


def npy_header(shape: tuple[int, ...], descr: str) -> bytes:
    """A .npy 1.0 header from the format: magic, version, length, a dict literal, padding."""
    text = f"{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}"
    text += " " * (-(10 + len(text) + 1) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text.encode()


def write_zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The working folder, holding a study file with one finished trial."""
    monkeypatch.chdir(tmp_path)
    study = Study.create("kept", {"lr": LogUniform(1e-4, 1.0)}, storage=tmp_path / "studies.db")
    (trial,) = study.ask(1)
    study.tell(trial, 0.5)
    study.close()
    return tmp_path


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def tune(folder: Path, data: Path, *flags: str) -> list[str]:
    return ["tune", "--dataset", str(data), "--storage", str(folder / "studies.db"), *flags]


def refused(folder: Path, data: Path, capsys: pytest.CaptureFixture[str]) -> str:
    """The one line `caviar tune --dataset data` prints, refused with status 2; nothing in
    ``folder`` changed."""
    before = snapshot(folder)
    assert main([*tune(folder, data), "--trials", "2", "--epochs", "1", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert snapshot(folder) == before
    return err.strip()


def error(data: Path, reason: str) -> str:
    return f"caviar: error: data.dataset: {data}: {reason}"


# --- refused: one family each ---------------------------------------------------------------------


def test_wrong_container_a_npy_renamed_npz(folder: Path, capsys) -> None:
    data = folder / "data.npz"
    data.write_bytes(npy(X))
    assert refused(folder, data, capsys) == error(
        data,
        "is a .npy array, not a .npz archive; save the arrays with numpy.savez(path, x=x, y=y)",
    )


def test_lying_header_600_by_1e9(folder: Path, capsys, monkeypatch) -> None:
    data = write_zip(
        folder / "huge.npz",
        {"x.npy": npy_header((600, 10**9), "<f4") + bytes(4000), "y.npy": npy(Y)},
    )
    monkeypatch.setattr(npz_module, "available_bytes", lambda: 16 * GIB)
    assert refused(folder, data, capsys) == error(
        data,
        "array 'x' claims shape [600, 1000000000] of float32, 2.18 TiB (2400000000000 bytes); "
        "reading it with its float32 copy needs 4.37 TiB, more than the 16 GiB of memory "
        "available",
    )


def test_compressed_bomb_larger_than_the_memory(folder: Path, capsys, monkeypatch) -> None:
    """4 MiB of zeros, compressed to a few KiB by numpy.savez_compressed, with 1 MiB free."""
    data = folder / "zeros.npz"
    np.savez_compressed(data, x=np.zeros((2**16, 8)), y=np.arange(2**16) % 2)
    assert data.stat().st_size < 64 * 1024
    monkeypatch.setattr(npz_module, "available_bytes", lambda: 2**20)
    assert refused(folder, data, capsys) == error(
        data,
        "array 'x' claims shape [65536, 8] of float64, 4 MiB (4194304 bytes); reading it with "
        "its float32 copy needs 6 MiB, more than the 1 MiB of memory available",
    )


def test_a_damaged_archive(folder: Path, capsys) -> None:
    """One byte of x's data changed: the zip's CRC says so."""
    raw = bytearray(write_zip(folder / "d.npz", {"x.npy": npy(X), "y.npy": npy(Y)}).read_bytes())
    at = raw.index(b"\x93NUMPY") + 200
    raw[at] ^= 0xFF
    data = folder / "damaged.npz"
    data.write_bytes(bytes(raw))
    assert refused(folder, data, capsys) == error(
        data, "array 'x' (member 'x.npy') cannot be read: Bad CRC-32 for file 'x.npy'"
    )


def test_a_csv_with_a_nul_byte(folder: Path, capsys) -> None:
    data = folder / "nul.csv"
    data.write_bytes(b"a,b,label\n" + b"1,2,0\n3,4,1\n" * 10 + b"5,6\x00,1\n")
    assert refused(folder, data, capsys) == error(
        data, "line 22, column 'b': must be a number, got '6\\x00'"
    )


def test_an_idx_gzip_bomb_in_data_dir_is_refused_by_its_md5(folder: Path, capsys) -> None:
    """MNIST's files are md5-checked before they are read, so a bomb is never decompressed."""
    mnist = folder / "mnist"
    mnist.mkdir()
    c = zlib.compressobj(9, zlib.DEFLATED, 31)  # gzip: 1 GiB of zeros in about 1 MiB
    header = bytes([0, 0, 8, 3]) + struct.pack(">3I", 2**30 // 784, 28, 28)
    head = c.compress(header) + c.flush(zlib.Z_FULL_FLUSH)
    mib = c.compress(bytes(2**20)) + c.flush(zlib.Z_FULL_FLUSH)  # the same bytes every MiB
    bomb = head + mib * 1024 + c.flush()
    assert gzip.GzipFile(fileobj=io.BytesIO(bomb)).read(16) == header
    for name in ("train-images", "train-labels", "t10k-images", "t10k-labels"):
        kind = "idx3" if "images" in name else "idx1"
        (mnist / f"{name}-{kind}-ubyte.gz").write_bytes(bomb)
    before = snapshot(folder)
    argv = ["tune", "--dataset", "mnist", "--data-dir", str(mnist), "--storage", "studies.db"]
    assert main([*argv, "--quiet"]) == 2
    err = capsys.readouterr().err
    path = mnist / "train-images-idx3-ubyte.gz"
    assert (
        err.startswith(f"caviar: error: data.dataset: {path}: md5 must be ")
        and err.count("\n") == 1
    )
    assert err.strip().endswith("(a corrupt or other file)")
    assert snapshot(folder) == before


# --- warned about: data that can't be learned -----------------------------------------------------


@pytest.mark.filterwarnings("always::caviar.data.DataWarning")
@pytest.mark.parametrize(
    ("name", "x", "warning"),
    [
        (
            "big.npz",
            X * 1e30,
            "the largest |feature| is 1.2e+31 (feature 0; 4 of the 4 features exceed 10000); "
            "features this large saturate the network and a study trains at chance: standardize "
            "each feature (subtract its mean, divide by its standard deviation)",
        ),
        (
            "big.csv",
            X * 1e30,
            "the largest |feature| is 1.2e+31 (feature 0; 4 of the 4 features exceed 10000); "
            "features this large saturate the network and a study trains at chance: standardize "
            "each feature (subtract its mean, divide by its standard deviation)",
        ),
        (
            "flat.npz",
            np.tile([1.0, 2.0, 3.0, 4.0], (200, 1)),
            "every row of x is the same (all 4 features are constant over the 160 training "
            "examples), so nothing tells the 2 classes apart and every trial trains at chance",
        ),
    ],
)
def test_data_that_cannot_be_learned_is_warned_about_in_the_dry_run(
    folder: Path, capsys, name: str, x: np.ndarray, warning: str
) -> None:
    """200 rows: 40 carved off as the test set, 160 left to train and validate on."""
    data = folder / name
    if name.endswith(".npz"):
        np.savez(data, x=x, y=Y)
    else:
        rows = "".join(
            f"{','.join(f'{v:.9g}' for v in r)},{k}\n" for r, k in zip(x, Y, strict=True)
        )
        data.write_text("a,b,c,d,label\n" + rows)
    before = snapshot(folder)
    assert main([*tune(folder, data, "--dry-run"), "--quiet"]) == 0
    lines = capsys.readouterr().err.splitlines()
    assert f"caviar: warning: data.dataset: in '{data.stem}', {warning}" in lines
    assert snapshot(folder) == before
