"""Data files built byte by byte from their formats, for the hostile-file tests: .npy headers
that claim anything, zip archives whose directory sizes, CRCs, flags and methods can lie, runs of
compressed zeros that cost nothing to build, IDX and gzip bytes."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np

X = (np.arange(40 * 3, dtype=np.float64).reshape(40, 3) * 7) % 11  # [40, 3], learnable
Y = np.arange(40) % 2  # two classes, 20 each


def npy(array: np.ndarray) -> bytes:
    out = io.BytesIO()
    np.lib.format.write_array(out, array, allow_pickle=True)
    return out.getvalue()


def npy_header(
    shape: Any, descr: Any = "<f8", *, fortran: bool = False, version: tuple[int, int] = (1, 0)
) -> bytes:
    """A .npy header written by hand from the format: magic, version, length, a dict literal."""
    text = f"{{'descr': {descr!r}, 'fortran_order': {fortran!r}, 'shape': {shape!r}, }}"
    return npy_text(text, version=version)


def npy_text(text: str, *, version: tuple[int, int] = (1, 0)) -> bytes:
    length = "<H" if version == (1, 0) else "<I"
    start = 6 + 2 + struct.calcsize(length)
    body = text + " " * (-(start + len(text) + 1) % 64) + "\n"
    raw = body.encode("utf-8" if version == (3, 0) else "latin-1")
    return b"\x93NUMPY" + bytes(version) + struct.pack(length, len(raw)) + raw


def zip_of(members: dict[str, bytes], method: int = zipfile.ZIP_STORED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", method) as archive:
        for name, data in members.items():
            # a fixed time stamp: the same bytes on every build, whatever the clock says
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = method
            archive.writestr(info, data)
    return out.getvalue()


def npz(method: int = zipfile.ZIP_STORED, **arrays: np.ndarray) -> bytes:
    return zip_of({f"{k}.npy": npy(v) for k, v in arrays.items()}, method)


def good(**changes: Any) -> bytes:
    """The valid archive x, y, with members replaced by raw bytes where given."""
    members = {"x.npy": npy(X), "y.npy": npy(Y)}
    members.update({f"{k}.npy": v for k, v in changes.items()})
    return zip_of(members)


@dataclass(frozen=True)
class Raw:
    """A zip member written byte by byte, so that its sizes, CRC, flags and method can lie."""

    name: str
    data: bytes  # as stored (already compressed for method 8)
    size: int  # the uncompressed size the directory claims
    crc: int = 0
    method: int = 0
    flags: int = 0


def raw_zip(*members: Raw) -> bytes:
    """A zip archive from its format: local headers and data, central directory, end record
    (with a ZIP64 extra field for sizes of 4 GiB and more)."""
    body, directory = b"", b""
    for m in members:
        name = m.name.encode()
        big = m.size >= 0xFFFFFFFF
        extra = struct.pack("<HHQQ", 1, 16, m.size, len(m.data)) if big else b""
        sizes = (0xFFFFFFFF, 0xFFFFFFFF) if big else (len(m.data), m.size)
        fields = (m.flags, m.method, 0, 0x21, m.crc, *sizes, len(name), len(extra))
        offset = len(body)
        body += struct.pack("<IHHHHHIIIHH", 0x04034B50, 45, *fields) + name + extra + m.data
        directory += (
            struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 45, 45, *fields, 0, 0, 0, 0, offset)
            + name
            + extra
        )
    n = len(members)
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, n, n, len(directory), len(body), 0)
    return body + directory + end


def deflated(prefix: bytes, zeros_mib: int, tail: bytes = b"") -> bytes:
    """Raw deflate of ``prefix``, ``zeros_mib`` MiB of zeros, then ``tail``: one compressed MiB
    repeated (a full flush makes each MiB's bytes the same), so 6 GiB cost 6 MiB and no time."""
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = c.compress(prefix) + c.flush(zlib.Z_FULL_FLUSH)
    mib = c.compress(bytes(2**20)) + c.flush(zlib.Z_FULL_FLUSH)
    return head + mib * zeros_mib + c.compress(tail) + c.flush()


def bomb(
    shape: tuple[int, ...], descr: str, zeros_mib: int, *, size: int | None = None, name: str = "x"
) -> Raw:
    """Member ``name``.npy: a header claiming ``shape``, then ``zeros_mib`` MiB of compressed zeros;
    the directory claims ``size`` bytes (default: what the header claims, honestly)."""
    header = npy_header(shape, descr)
    claimed = len(header) + int(np.prod(shape, dtype=object)) * np.dtype(descr).itemsize
    return Raw(f"{name}.npy", deflated(header, zeros_mib), claimed if size is None else size, 0, 8)


def stored(name: str, data: bytes) -> Raw:
    return Raw(name, data, len(data), zlib.crc32(data))


def idx(code: int, shape: tuple[int, ...], payload: bytes = b"") -> bytes:
    return bytes([0, 0, code, len(shape)]) + struct.pack(f">{len(shape)}I", *shape) + payload


def gzip_raw(deflate: bytes, crc: int = 0, size: int = 0) -> bytes:
    """A gzip member around raw deflate data (its CRC and size need not be true)."""
    return b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff" + deflate + struct.pack("<II", crc, size)
