"""A generated fuzz of data files (issue 27): every hostile file either loads or is refused in one
line (an InvalidValue naming the file), never with any other exception, and never by first
allocating what a header claims.

The cases are built deterministically (each from its own seed) in seven families:

- ``container``: the wrong container (a .npy, csv, gzip, tar or junk named .npz, empty, truncated
  or encrypted zips, unknown compression, duplicate members);
- ``header``: lying or malformed .npy headers (more or less data than claimed, negative, huge or
  too many dims, bad or pickled dtypes, fortran order, unknown versions, oversized headers);
- ``bomb``: compressed runs of zeros whose headers and zip directory claim gigabytes, or lie
  about it (the zeros are one compressed MiB repeated: a 6 GiB run is 6 MiB, built in ms);
- ``idx``: IDX files through ``read_idx``: gzip bombs, dims whose product overflows int64;
- ``values``: extreme and constant values, odd dtypes and labels;
- ``csv``: encodings, quoting, ragged rows, numbers Python reads but csv files should not hold;
- ``mutation``: valid archives with seeded random bytes changed.

They run in one child process under ``RLIMIT_AS`` (:data:`MEMORY_LIMIT`), so that a missing size
check fails as a recorded ``MemoryError`` rather than swapping the machine. The child catches
every exception itself and reports each case as JSON, so its stderr holds no traceback, and then
cuts the study's validation split of what loaded to collect the DataWarnings a study would print.
"""

from __future__ import annotations

import bz2
import gzip
import io
import json
import os
import random
import re
import subprocess
import sys
import tarfile
import zipfile
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

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
    npy_text,
    npz,
    raw_zip,
    stored,
    zip_of,
)

pytestmark = pytest.mark.slow  # one child process runs every case: about two seconds

SEED = 27
MEMORY_LIMIT = 1536 * 2**20
#: a refusal by a size check must come before any decompressing: well under this many seconds
QUICK = 1.0
REFUSED = ""  # any one-line InvalidValue
LOADS = "load"
#: the warnings of data that can't be learned (checks.py); their key is "dataset" here
UNLEARNABLE = re.compile(
    r"^dataset: in '[^']*', (every row of x is the same|the largest \|feature)"
)


@dataclass(frozen=True)
class Case:
    family: str
    name: str
    build: Callable[[], bytes]
    suffix: str = ".npz"
    expect: str | None = None  # LOADS, a regex the refusal must match (REFUSED: any), None: either
    unlearnable: str | None = None  # a regex a DataWarning must match; None: no such warning
    quick: bool = False  # a refusal that must come in under QUICK seconds

    @property
    def id(self) -> str:
        return f"{self.family}-{self.name}"


# --- more builders -------------------------------------------------------------------------------


def seeded(name: str) -> random.Random:
    return random.Random(f"{SEED}-{name}")


def junk(name: str, n: int, printable: bool = False) -> bytes:
    rng = seeded(name)
    if printable:
        return "".join(rng.choice("abc ,;.\n0123456789-e\"'") for _ in range(n)).encode()
    return bytes(rng.randrange(256) for _ in range(n))


def csv_rows(x: np.ndarray, y: np.ndarray, fmt: str = "{:.9g}") -> str:
    header = ",".join(f"f{j}" for j in range(x.shape[1])) + ",label\n"
    return header + "".join(
        ",".join(fmt.format(v) for v in row) + f",{label}\n"
        for row, label in zip(x, y, strict=True)
    )


def mutated(base: bytes, name: str) -> bytes:
    rng = seeded(name)
    data = bytearray(base)
    for _ in range(rng.randint(1, 8)):
        data[rng.randrange(len(data))] = rng.randrange(256)
    return bytes(data)


# --- the cases -----------------------------------------------------------------------------------

NOT_NPZ = r"not a \.npz archive \(a zip of \.npy arrays\): it starts with b"
UNREADABLE = r"not a readable \.npz archive \("
BAD_HEADER = r"array 'x' \(member 'x\.npy'\) has an unreadable \.npy header \("
BAD_DESCR = BAD_HEADER + r"descr is not a valid dtype descriptor"
MEMORY = r"of memory available$"
LIES = r"but its member holds .* of data after the header \(by the zip directory\); the header lies"


def container_cases() -> list[Case]:
    npy_named = r"is a \.npy array, not a \.npz archive; save the arrays with numpy\.savez"
    method = r"'x\.npy'\) is compressed with {}; caviar reads members stored or deflated"
    y40 = stored("y.npy", npy(Y))
    table: list[tuple[str, Callable[[], bytes], str | None]] = [
        ("npy-floats", lambda: npy(X), npy_named),
        ("npy-labels", lambda: npy(Y), npy_named),
        ("npy-pickled", lambda: npy(np.array([1, "a"], dtype=object)), npy_named),
        ("csv", lambda: csv_rows(X, Y).encode(), NOT_NPZ + r"'f0,f1,f2'"),
        ("gzip-npy", lambda: gzip.compress(npy(X)), r"is a gzip file, not a \.npz archive"),
        ("gzip-npz", lambda: gzip.compress(good()), r"is a gzip file, not a \.npz archive"),
        ("bzip2-npz", lambda: bz2.compress(good()), NOT_NPZ + r"'BZh9"),
        ("tar", lambda: tar_of({"x.npy": npy(X), "y.npy": npy(Y)}), NOT_NPZ + r"'x\.npy"),
        ("empty", lambda: b"", r"is an empty file, not a \.npz archive"),
        ("one-byte", lambda: b"P", NOT_NPZ + r"'P'"),
        ("pk-only", lambda: b"PK", NOT_NPZ + r"'PK'"),
        ("prefixed-zip", lambda: b"#!/bin/sh\n" + good(), NOT_NPZ + r"'#!/bin/s'"),
        ("zip-magic-then-junk", lambda: b"PK\x03\x04" + junk("pk", 60), UNREADABLE),
        ("empty-zip", lambda: zip_of({}), r"must hold arrays 'x' and 'y', got arrays \[\]$"),
        ("only-a-folder", lambda: zip_of({"x.npy/": b""}), r"got arrays \[\]$"),
        (
            "txt-members",
            lambda: zip_of({"x.txt": b"", "y.txt": b""}),
            r"must hold arrays 'x' and 'y', got arrays \['x\.txt', 'y\.txt'\]$",
        ),
        (
            "many-members",
            lambda: zip_of({f"a{i}": b"" for i in range(3000)}),
            r"got arrays \['a0', 'a1', .*\] and 2990 more$",
        ),
        (
            "text-members",
            lambda: zip_of({"x.npy": b"1,2\n", "y.npy": b"0\n"}),
            r"array 'x' \(member 'x\.npy'\) is not a \.npy array: it starts with b'1,2\\n'$",
        ),
        ("members-without-suffix", lambda: zip_of({"x": npy(X), "y": npy(Y)}), LOADS),
        (
            "x-and-x.npy",
            lambda: zip_of({"x": npy(X), "x.npy": npy(X), "y.npy": npy(Y)}),
            r"holds array 'x' twice \(members 'x', 'x\.npy'\)$",
        ),
        ("deflated-members", lambda: npz(zipfile.ZIP_DEFLATED, x=X, y=Y), LOADS),
        ("bzip2-members", lambda: npz(zipfile.ZIP_BZIP2, x=X, y=Y), method.format("bzip2")),
        ("lzma-members", lambda: npz(zipfile.ZIP_LZMA, x=X, y=Y), method.format("LZMA")),
        ("unknown-method", lambda: raw_zip(x_member(method=99), y40), method.format("method 99")),
        ("encrypted", lambda: raw_zip(x_member(flags=1), y40), r"'x\.npy'\) is encrypted; save"),
        (
            "crc-wrong",
            lambda: raw_zip(x_member(crc_flip=1), y40),
            r"array 'x' \(member 'x\.npy'\) cannot be read: Bad CRC-32 for file 'x\.npy'$",
        ),
    ]
    for k in range(8):  # cut short at seeded points: the end record is gone
        table.append((f"truncated-{k}", truncated(k), UNREADABLE + r"File is not a zip file\)$"))
    for k in range(3):
        table.append((f"text-junk-{k}", lambda k=k: junk(f"t{k}", 300, True), NOT_NPZ))
        table.append((f"binary-junk-{k}", lambda k=k: junk(f"b{k}", 300), NOT_NPZ))
    return [Case("container", name, build, expect=expect) for name, build, expect in table]


def tar_of(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return out.getvalue()


def x_member(method: int = 0, flags: int = 0, crc_flip: int = 0) -> Raw:
    """x.npy stored as it is, with the given method and flags in the zip headers."""
    data = npy(X)
    return Raw("x.npy", data, len(data), zlib.crc32(data) ^ crc_flip, method, flags)


def truncated(k: int) -> Callable[[], bytes]:
    def build() -> bytes:
        data = good()
        return data[: seeded(f"cut{k}").randrange(1, len(data) - 1)]

    return build


def header_cases() -> list[Case]:
    x40 = X.tobytes()

    def member(header: bytes, data: bytes = x40) -> Callable[[], bytes]:
        return lambda: good(x=header + data)

    table: list[tuple[str, Callable[[], bytes], str | None]] = [
        ("more-rows-than-data", member(npy_header((80, 3))), LIES),
        ("fewer-rows-than-data", member(npy_header((20, 3))), LIES),
        ("trailing-bytes", member(npy_header((40, 3)), x40 + b"\0" * 8), LIES),
        ("half-the-data", member(npy_header((40, 3)), x40[:480]), LIES),
        ("negative-rows", member(npy_header((-1, 3))), r"sizes must be integers >= 0$"),
        ("negative-columns", member(npy_header((40, -3))), r"must be integers >= 0$"),
        ("billion-rows", member(npy_header((10**9, 3))), MEMORY),
        ("dims-2**63", member(npy_header((2**63, 2**63))), MEMORY),
        ("dims-1e30", member(npy_header((10**30,))), MEMORY),
        ("dims-overflow-int64", member(npy_header((2**32,) * 3, "|u1")), MEMORY),
        ("dims-wrap-to-zero", member(npy_header((2**32, 2**32), "|u1"), b""), MEMORY),
        ("zero-rows", member(npy_header((0, 3)), b""), r"x must be \[N, D\]"),
        ("scalar", member(npy_header(()), x40[:8]), r"x must be \[N, D\] .* got shape \[\]$"),
        ("65-dims", member(npy_header((1,) * 65)), r"claims 65 dimensions; at most 64"),
        ("shape-not-tuple", member(npy_header(5)), BAD_HEADER + r"shape is not valid: 5\)$"),
        ("shape-float", member(npy_header((1.5, 3))), BAD_HEADER + r"shape is not valid"),
        ("shape-bool", member(npy_header((True, 3)), x40[:24]), r"integers >= 0$"),
        ("descr-f3", member(npy_header((40, 3), "<f3")), BAD_DESCR),
        ("descr-word", member(npy_header((40, 3), "foo")), BAD_DESCR),
        ("descr-object", member(npy_header((40, 3), "|O")), r"holds Python objects"),
        ("descr-object-field", member(npy_header((40,), [("a", "|O")])), r"Python objects"),
        ("descr-void0", member(npy_header((40, 3), "|V0")), r"which holds no data$"),
        ("descr-str0", member(npy_header((40, 3), "<U0")), r"which holds no data$"),
        (
            "descr-huge-subarray",
            member(npy_header((40,), [("a", "<f8", (10**6,) * 2)])),
            BAD_HEADER,
        ),
        ("descr-datetime", member(npy_header((40, 3), "<M8[s]")), r"must hold real numbers"),
        (
            "descr-timedelta",
            member(npy_header((40, 3), "<m8[s]"), X.astype("<i8").tobytes()),
            LOADS,
        ),
        ("descr-complex", member(npy_header((20, 3), "<c16")), r"must hold real numbers"),
        ("descr-bool", member(npy_header((40, 3), "|b1"), x40[:120]), r"must hold real numbers"),
        (
            "descr-structured",
            member(npy_header((40,), [("a", "<f8"), ("b", "<f8")]), x40[:640]),
            r"x must be \[N, D\] \(or \[N, \.\.\.\]\) with N, D >= 1, got shape \[40\]$",
        ),
        ("big-endian", member(npy_header((40, 3), ">f8"), X.astype(">f8").tobytes()), LOADS),
        ("float16", member(npy_header((40, 3), "<f2"), X.astype("<f2").tobytes()), LOADS),
        ("fortran-order", member(npy_header((40, 3), fortran=True), X.T.tobytes()), LOADS),
        ("version-2", member(npy_header((40, 3), version=(2, 0))), LOADS),
        ("version-3", member(npy_header((40, 3), version=(3, 0))), LOADS),
        ("version-9", member(b"\x93NUMPY\x09\x09" + npy_header((40, 3))[8:]), r"version 9\.9"),
        (
            "header-60000",
            member(npy_text(" " * 60000)),
            r"header of 600\d\d bytes; numpy writes at",
        ),
        ("header-4GiB", member(b"\x93NUMPY\x02\x00\xff\xff\xff\xff"), r"header of 4294967295"),
        ("header-cut", member(npy_header((40, 3))[:40], b""), r"ends inside its \.npy header$"),
        ("magic-only", member(b"\x93NUMPY", b""), r"x\.npy'\) ends inside its \.npy header$"),
        ("empty-member", member(b"", b""), r"x\.npy'\) is not a \.npy array: it starts with b''$"),
        ("header-not-dict", member(npy_text("[1, 2]")), BAD_HEADER + r"Header is not a dict"),
        ("header-keys-missing", member(npy_text("{'descr': '<f8'}")), BAD_HEADER),
        ("header-keys-extra", member(npy_text(extra_key())), BAD_HEADER),
        ("header-syntax", member(npy_text("{'descr': ")), BAD_HEADER + r"TokenError: EOF in multi"),
        ("header-nested", member(npy_text(nested(300))), BAD_HEADER),
        ("header-minus-chain", member(npy_text(minus_chain(3000))), BAD_HEADER),
        ("header-call", member(npy_text("{'descr': __import__('os').getcwd()}")), BAD_HEADER),
        (
            "y-lies",
            lambda: good(y=npy_header((80,), "<i8") + Y.astype("<i8").tobytes()),
            r"array 'y' claims shape \[80\] of int64, 640 bytes, but its member holds 320 bytes",
        ),
        ("y-object", lambda: good(y=npy(np.array([0, "a"] * 20, dtype=object))), r"'y' holds"),
    ]
    return [Case("header", name, build, expect=expect) for name, build, expect in table]


def extra_key() -> str:
    return "{'descr': '<f8', 'fortran_order': False, 'shape': (40, 3), 'more': 1}"


def nested(depth: int) -> str:
    return (
        "{'descr': '<f8', 'fortran_order': False, 'shape': "
        + "(" * depth
        + "1,"
        + ")" * depth
        + "}"
    )


def minus_chain(n: int) -> str:
    return "{'descr': '<f8', 'fortran_order': False, 'shape': (" + "-" * n + "1, 3)}"


def bomb_cases() -> list[Case]:
    y40 = stored("y.npy", npy(Y))
    gib6 = (6 * 2**30 // 8 // 64, 64)  # 6 GiB of float64 zeros
    small = npy_header((10, 2))

    def small_x_big_stream(crc_ok: bool) -> bytes:
        """A header claiming 10 x 2 (and the directory agreeing), then 6 GiB of zeros: only the
        claimed 160 bytes may be read."""
        data = deflated(small, 6 * 1024)
        crc = zlib.crc32(small + bytes(160)) ^ (0 if crc_ok else 1)
        y10 = stored("y.npy", npy(np.arange(10) % 2))
        return raw_zip(Raw("x.npy", data, len(small) + 160, crc, 8), y10)

    def zeros_32mib() -> bytes:
        rows = 2**19  # [2**19, 16] float32: 32 MiB of zeros, every row the same
        header = npy_header((rows, 16), "<f4")
        x = Raw("x.npy", deflated(header, 32), len(header) + 32 * 2**20, 0, 8)
        x = Raw(x.name, x.data, x.size, zlib.crc32(bytes(32 * 2**20), zlib.crc32(header)), 8)
        labels = np.arange(rows, dtype=np.int8) % 2
        return raw_zip(x, stored("y.npy", npy(labels)))

    def compressed(method: int) -> bytes:
        """4 MiB of zeros compressed by bzip2 or LZMA, which zipfile would decompress whole."""
        members = {"x.npy": npy_header((2**22,), "|u1") + bytes(2**22), "y.npy": npy(Y)}
        return zip_of(members, method)

    table: list[tuple[str, Callable[[], bytes], str | None, str | None]] = [
        ("6GiB-honest", lambda: raw_zip(bomb(gib6, "<f8", 6 * 1024), y40), MEMORY, None),
        ("3.9GiB-honest", lambda: raw_zip(bomb((2**29 - 2**24, 1), "<f8", 10), y40), MEMORY, None),
        ("billion-rows-32MiB", lambda: raw_zip(bomb((10**9, 3), "<f8", 32), y40), MEMORY, None),
        (
            "directory-claims-6GiB",
            lambda: raw_zip(bomb((2**20, 4), "<f8", 32, size=6 * 2**30), y40),
            LIES,
            None,
        ),
        (
            "directory-claims-less",
            lambda: raw_zip(bomb((2**20, 4), "<f8", 32, size=1000), y40),
            r"Bad CRC-32|" + LIES,  # zipfile stops at 1000 bytes, inside the header: CRC
            None,
        ),
        ("small-header-6GiB-stream", lambda: small_x_big_stream(True), LOADS, r"every row"),
        ("small-header-6GiB-bad-crc", lambda: small_x_big_stream(False), r"Bad CRC-32", None),
        ("32MiB-zeros-honest", zeros_32mib, LOADS, r"every row of x is the same"),
        ("bzip2-4MiB", lambda: compressed(zipfile.ZIP_BZIP2), r"with bzip2;", None),
        ("lzma-4MiB", lambda: compressed(zipfile.ZIP_LZMA), r"with LZMA;", None),
        (
            "y-6GiB",
            lambda: raw_zip(stored("x.npy", npy(X)), bomb((6 * 2**27,), "<i8", 1024, name="y")),
            r"array 'y' claims shape \[805306368\] of int64, 6 GiB \(6442450944 bytes\); that is "
            r"more than the .* of memory available after the 960 bytes of the arrays before it$",
            None,
        ),
        (
            "x_test-6GiB",
            lambda: raw_zip(
                stored("x.npy", npy(X)),
                y40,
                bomb(gib6, "<f8", 6 * 1024, name="x_test"),
                stored("y_test.npy", npy(Y[:4])),
            ),
            r"array 'x_test' claims shape \[12582912, 64\] of float64, 6 GiB \(6442450944 bytes\);",
            None,
        ),
    ]
    cases = []
    for name, build, expect, warn in table:
        quick = expect not in (LOADS, None)
        cases.append(Case("bomb", name, build, expect=expect, unlearnable=warn, quick=quick))
    return cases


def idx_cases() -> list[Case]:
    gib6 = 6 * 2**30
    bomb_header = idx(0x08, (gib6 // 784, 28, 28))

    def gz_bomb() -> bytes:
        return gzip_raw(deflated(bomb_header, 6 * 1024))

    payload = bytes(range(12))
    table: list[tuple[str, str, Callable[[], bytes], str]] = [
        ("valid", ".idx", lambda: idx(0x08, (2, 2, 3), payload), LOADS),
        ("valid-gz", ".gz", lambda: gzip.compress(idx(0x08, (2, 2, 3), payload)), LOADS),
        ("gzip-bomb-6GiB", ".gz", gz_bomb, MEMORY),
        (
            "dims-overflow-plain",
            ".idx",
            lambda: idx(0x08, (2**32 - 1,) * 3),
            r"must hold \d+ bytes",
        ),
        ("dims-overflow-gz", ".gz", lambda: gzip.compress(idx(0x08, (2**32 - 1,) * 3)), MEMORY),
        ("float64-huge-gz", ".gz", lambda: gzip.compress(idx(0x0E, (2**31, 2**31))), MEMORY),
        (
            "truncated-gz",
            ".gz",
            lambda: gzip.compress(idx(0x08, (100,), bytes(100)))[:30],
            r"not a complete gzip file",
        ),
        (
            "padded-gz",
            ".gz",
            lambda: gzip.compress(idx(0x08, (3,), bytes(5))),
            r"must hold 3 bytes for dims 3 of uint8, got more than 3 bytes$",
        ),
        (
            "trailing-garbage-gz",
            ".gz",
            lambda: gzip.compress(idx(0x08, (3,), bytes(3))) + b"garbage!",
            r"not a complete gzip file",
        ),
        ("not-gzip", ".gz", lambda: idx(0x08, (3,), bytes(3)), r"not a complete gzip file"),
        ("empty-gz", ".gz", lambda: b"", r"an IDX header needs 4 bytes, got 0 bytes$"),
        ("ndim-0", ".idx", lambda: b"\x00\x00\x08\x00", r"ndim must be in \[1, 64\], got 0$"),
        ("ndim-200", ".idx", lambda: idx(0x08, (1,) * 200, b"\0"), r"in \[1, 64\], got 200$"),
        (
            "lying-small-dims-gz",
            ".gz",
            lambda: gzip_raw(deflated(idx(0x08, (4,)), 64)),
            r"got more",
        ),
    ]
    return [
        Case("idx", name, build, suffix, expect, quick=expect not in (LOADS, None))
        for name, suffix, build, expect in table
    ]


def values_cases() -> list[Case]:
    rng = np.random.default_rng(SEED)
    pixels = rng.integers(0, 256, (40, 8)).astype(np.uint8)
    largest = r"the largest \|feature\| is"
    same = r"every row of x is the same \(all 3 features are constant over the 32 training"
    table: list[tuple[str, dict[str, np.ndarray], str | None, str | None]] = [
        ("x-times-1e30", {"x": X * 1e30}, LOADS, largest + r" 1e\+31 \(feature 0; 3 of the 3"),
        ("x-times-1e38", {"x": X / 11 * 3e38}, LOADS, largest),
        (
            "x-times-1e39",
            {"x": X * 1e39},
            r"x must be finite \(in float32\), got [0-9.e+]+ at row 0, feature 1$",
            None,
        ),
        ("x-times-minus-1e30", {"x": -X * 1e30}, LOADS, largest),
        ("one-feature-1e30", {"x": np.c_[X, np.arange(40) * 1e29]}, LOADS, r"1 of the 4"),
        ("x-just-over-1e4", {"x": np.c_[X, np.full(40, 10001.0)]}, LOADS, largest + r" 1e\+04"),
        ("x-at-1e4", {"x": np.c_[X, np.full(40, 1e4)]}, LOADS, None),
        ("x-times-1e-30", {"x": X * 1e-30}, LOADS, None),
        ("x-denormal", {"x": X * 1e-45}, LOADS, None),
        ("constant-columns", {"x": np.tile([1.0, 2.0, 3.0], (40, 1))}, LOADS, same),
        ("identical-rows", {"x": np.tile(X[5], (40, 1))}, LOADS, same),
        ("all-zero", {"x": np.zeros((40, 3))}, LOADS, same),
        ("one-constant-column", {"x": np.c_[X, np.ones(40)]}, LOADS, None),
        ("pixels-0-255", {"x": pixels}, LOADS, None),
        ("pixels-0-1", {"x": pixels / 255.0}, LOADS, None),
        ("digits-0-16", {"x": pixels % 17}, LOADS, None),
        ("standardized", {"x": rng.standard_normal((40, 8))}, LOADS, None),
        (
            "int64-extremes",
            {"x": np.c_[X.astype(np.int64), np.full(40, 2**63 - 1)]},
            LOADS,
            largest,
        ),
        ("uint64-max", {"x": np.full((40, 2), 2**64 - 1, np.uint64)}, LOADS, r"every row"),
        ("float16-inf", {"x": np.r_[X[:39], [[np.inf, 0, 0]]].astype(np.float16)}, r"finite", None),
        ("nan", {"x": np.r_[[[np.nan, 0, 0]], X[1:]]}, r"x must be finite .* at row 0", None),
        ("bool-x", {"x": X > 5}, r"x must hold real numbers, got dtype bool$", None),
        ("complex-x", {"x": X + 1j}, r"x must hold real numbers, got dtype complex128$", None),
        ("y-fractional", {"y": Y + 0.5}, r"y must hold integer or string labels, got frac", None),
        ("y-nan", {"y": np.r_[Y[:39], np.nan]}, r"y must hold integer or string labels", None),
        (
            "y-bytes-latin1",
            {"y": np.array([b"caf\xe9", b"tea"] * 20)},
            r"not ASCII \(byte 0xe9\)",
            None,
        ),
        ("y-bytes-ascii", {"y": np.array([b"cat", b"dog"] * 20)}, LOADS, None),
        ("y-emoji", {"y": np.array(["🐱", "🐶"] * 20)}, LOADS, None),
        ("y-bool", {"y": Y.astype(bool)}, LOADS, None),
        ("y-one-class", {"y": np.zeros(40, np.int64)}, r"at least 2 classes, got 1", None),
        ("y-int8-negative", {"y": -(Y.astype(np.int8))}, LOADS, None),
        ("y-uint64-max", {"y": np.r_[Y[:39], np.uint64(2**64 - 1)]}, r"fit in int64", None),
        ("y-2d", {"y": Y[:, None]}, r"y must be \[40\], one label per example, got shape", None),
        (
            "y-datetime",
            {"y": Y.astype("M8[s]")},
            r"y must hold integer or string labels, got",
            None,
        ),
        ("y-complex", {"y": Y + 0j}, r"y must hold integer or string labels, got dtype", None),
    ]
    cases = []
    for name, arrays, expect, warn in table:
        members = {"x": X, "y": Y} | arrays
        cases.append(
            Case("values", name, lambda m=members: npz(**m), expect=expect, unlearnable=warn)
        )
    return cases


def csv_cases() -> list[Case]:
    text = csv_rows(X, Y)
    finite = r"must be finite"
    table: list[tuple[str, Callable[[], bytes], str | None, str | None]] = [
        ("x-times-1e30", lambda: csv_rows(X * 1e30, Y).encode(), LOADS, r"the largest"),
        ("constant", lambda: csv_rows(np.ones((40, 3)), Y).encode(), LOADS, r"every row of x"),
        ("x-times-1e39", lambda: csv_rows(X * 1e39, Y).encode(), finite + r" \(in float32\)", None),
        (
            "1e309",
            lambda: text.replace("\n0,", "\n1e309,", 1).encode(),
            finite + ", got inf$",
            None,
        ),
        ("bom-utf8", lambda: b"\xef\xbb\xbf" + text.encode(), LOADS, None),
        (
            "utf16",
            lambda: text.encode("utf-16"),
            r"UTF-16 byte order mark; save it as UTF-8$",
            None,
        ),
        (
            "latin1",
            lambda: text.replace("f0", "f\xe9").encode("latin-1"),
            r"not a readable UTF-8",
            None,
        ),
        (
            "nul",
            lambda: text.replace("\n0,", "\n0\0,", 1).encode(),
            r"line 2, column 'f0': must be a number, got '0\\x00'$",
            None,
        ),
        (
            "unterminated-quote",
            lambda: text.replace("\n0,", '\n"0,', 1).encode(),
            r"fields like",
            None,
        ),
        ("quoted-newline", lambda: text.replace("\n0,", '\n"0\n1",', 1).encode(), r"'0\\n1'", None),
        ("cr-only", lambda: text.replace("\n", "\r").encode(), LOADS, None),
        ("crlf-mixed", lambda: text.replace("\n", "\r\n", 10).encode(), LOADS, None),
        (
            "field-200k",
            lambda: ("a,label\n" + "1" * 200_000 + ",0\n").encode(),
            r"field larger",
            None,
        ),
        ("header-only", lambda: b"a,b,label\n", r"needs at least one data row", None),
        (
            "blank-lines-only",
            lambda: b"\n\n\n",
            r"must have a header row, got an empty file$",
            None,
        ),
        ("empty", lambda: b"", r"must have a header row, got an empty file$", None),
        ("blank-header", lambda: b" , \n1,2\n", r"label column 'label' is missing", None),
        ("duplicate-feature-names", lambda: text.replace("f1", "f0", 1).encode(), LOADS, None),
        (
            "tabs",
            lambda: text.replace(",", "\t").encode(),
            r"label column 'label' is missing",
            None,
        ),
        ("semicolons", lambda: text.replace(",", ";").encode(), r"'label' is missing", None),
        (
            "trailing-comma",
            lambda: text.replace("\n", ",\n").encode(),
            r"column '': must be a",
            None,
        ),
        (
            "empty-cell",
            lambda: text.replace("\n0,", "\n,", 1).encode(),
            r"must be a number, got ''",
            None,
        ),
        ("infinity-word", lambda: text.replace("\n0,", "\nInfinity,", 1).encode(), finite, None),
        (
            "unicode-minus",
            lambda: text.replace("\n0,", "\n\u22121,", 1).encode(),
            r"a number",
            None,
        ),
        (
            "hex-float",
            lambda: text.replace("\n0,", "\n0x1p3,", 1).encode(),
            r"a number, got '0x1p3'",
            None,
        ),
        ("underscore", lambda: text.replace("\n0,", "\n1_0,", 1).encode(), r"plain decimal", None),
        ("1000-columns", lambda: csv_rows(np.tile(X, (1, 334))[:, :1000], Y).encode(), LOADS, None),
        (
            "bool-labels",
            lambda: text.replace(",0\n", ",False\n").replace(",1\n", ",True\n").encode(),
            LOADS,
            None,
        ),
        ("quoted-newline-label", lambda: text.replace(",0\n", ',"a\nb"\n').encode(), LOADS, None),
        ("too-few-rows", lambda: b"a,label\n1,0\n2,1\n", r"too few examples to carve off", None),
        ("long-header-name", lambda: text.replace("f0", "f" * 10_000, 1).encode(), LOADS, None),
        (
            "gzip-renamed",
            lambda: gzip.compress(text.encode()),
            r"not a readable UTF-8 csv file",
            None,
        ),
        ("npz-renamed", good, r"not a readable UTF-8 csv file", None),
        ("junk-0", lambda: junk("csv0", 500), REFUSED, None),
        ("junk-1", lambda: junk("csv1", 500, True), REFUSED, None),
    ]
    return [Case("csv", name, build, ".csv", expect, warn) for name, build, expect, warn in table]


def mutation_cases() -> list[Case]:
    stored_npz = npz(x=X, y=Y)
    deflated_npz = npz(zipfile.ZIP_DEFLATED, x=X, y=Y)
    cases = []
    for k in range(30):
        base = stored_npz if k % 2 else deflated_npz
        kind = "stored" if k % 2 else "deflated"
        cases.append(Case("mutation", f"{kind}-{k}", lambda b=base, k=k: mutated(b, f"m{k}")))
    return cases


CASES = [
    *container_cases(),
    *header_cases(),
    *bomb_cases(),
    *idx_cases(),
    *values_cases(),
    *csv_cases(),
    *mutation_cases(),
]

# --- the child process ---------------------------------------------------------------------------

CHILD = """
import json, resource, sys, time, traceback, warnings
try:
    resource.setrlimit(resource.RLIMIT_AS, (int(sys.argv[1]), resource.RLIM_INFINITY))
except (ValueError, OSError):
    pass
from caviar.core.errors import InvalidValue
from caviar.data import Dataset, load_dataset, read_idx, split_for_study

results = {}
for case, path in json.load(sys.stdin):
    start = time.perf_counter()
    entry = {"warnings": []}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            loaded = read_idx(path) if path.endswith((".gz", ".idx")) else load_dataset(path)
            entry["outcome"] = "load"
            if isinstance(loaded, Dataset):
                try:
                    split_for_study(loaded, 0.2, seed=0)
                except InvalidValue as e:
                    entry["split"] = str(e)
        except InvalidValue as e:
            entry["outcome"], entry["message"] = "invalid", str(e)
        except BaseException as e:
            entry["outcome"], entry["message"] = "error", traceback.format_exc()
    entry["seconds"] = time.perf_counter() - start
    entry["warnings"] = [f"{w.category.__name__}: {w.message}" for w in caught]
    results[case] = entry
json.dump(results, sys.stdout)
"""


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Every case built into a file and loaded in one child under the memory limit."""
    folder = tmp_path_factory.mktemp("fuzz")
    paths = []
    for case in CASES:
        path = folder / f"{case.id}{case.suffix}"
        path.write_bytes(case.build())
        paths.append((case.id, str(path)))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path), OPENBLAS_NUM_THREADS="1")
    env["OMP_NUM_THREADS"] = "1"
    child = subprocess.run(
        [sys.executable, "-c", CHILD, str(MEMORY_LIMIT)],
        input=json.dumps(paths),
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert child.returncode == 0 and child.stderr == "", child.stderr[-3000:]
    return {"folder": folder, **json.loads(child.stdout)}


def test_the_fuzz_has_at_least_100_cases_in_every_family() -> None:
    counts = Counter(case.family for case in CASES)
    assert sum(counts.values()) >= 100
    assert len({case.id for case in CASES}) == len(CASES)  # every id names one case
    assert set(counts) == {"container", "header", "bomb", "idx", "values", "csv", "mutation"}


def test_the_cases_are_built_the_same_every_time() -> None:
    for case in CASES:
        if case.family in ("mutation", "container"):
            assert case.build() == case.build(), case.id


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_a_data_file_loads_or_is_refused_in_one_line(case: Case, results: dict[str, Any]) -> None:
    entry = results[case.id]
    path = results["folder"] / f"{case.id}{case.suffix}"
    assert entry["outcome"] in ("load", "invalid"), entry["message"]
    if entry["outcome"] == "invalid":
        message = entry["message"]
        assert "\n" not in message and message.startswith(f"{path}: "), message
        reason = message[len(f"{path}: ") :]
        assert case.expect != LOADS, message
        if case.expect:
            assert re.search(case.expect, reason), reason
        if case.quick:
            assert entry["seconds"] < QUICK, entry["seconds"]
    else:
        assert case.expect in (LOADS, None), f"loaded, but should be refused: {case.expect}"
    unlearnable = [w for w in entry["warnings"] if UNLEARNABLE.match(w.partition(": ")[2])]
    if case.unlearnable:
        assert len(unlearnable) == 1 and re.search(case.unlearnable, unlearnable[0]), unlearnable
    else:
        assert unlearnable == []
    others = [w for w in entry["warnings"] if not w.startswith("DataWarning: ")]
    assert others == []
