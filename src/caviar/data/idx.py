"""The IDX format of MNIST and Fashion-MNIST: a tiny header, then one big-endian array.

Layout (http://yann.lecun.com/exdb/mnist/): two zero bytes, a type code, the number of dimensions
``ndim``, then ``ndim`` big-endian uint32 sizes, then the values in C order. The first four bytes
read as one integer are the "magic number": 2051 (0x00000803) for MNIST's ubyte images of
``[N, 28, 28]`` and 2049 (0x00000801) for its ubyte labels of ``[N]``. The parser checks every part
of the header and that the payload holds exactly the bytes the header promises, so that a
truncated or padded file is an error rather than a silently shorter array. Files are read as a
stream, header first, and the payload the header promises is checked against the memory available
(:mod:`caviar.data.memory`) before it is read: a gzip bomb is refused without being decompressed.
"""

from __future__ import annotations

import gzip
import io
import math
import os
import zlib
from pathlib import Path

import numpy as np

from caviar.core.errors import InvalidValue, got
from caviar.data.memory import available_bytes, format_bytes

#: numpy's most dimensions for an array
MAX_DIMS = 64

# Type code -> big-endian numpy dtype, from the format's description.
IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def parse_idx(data: bytes, owner: str = "idx") -> np.ndarray:
    """The array held by the IDX bytes ``data``; errors name ``owner`` (usually the file)."""
    return _read(io.BytesIO(data), owner, total=len(data))


def read_idx(path: str | Path) -> np.ndarray:
    """The array in the IDX file at ``path``, gunzipped first when its name ends in ``.gz``.

    The file is read as a stream: the header first, then exactly the payload it promises,
    checked against the memory available before it is allocated, so a gzip bomb or a header
    claiming terabytes is refused without decompressing it.
    """
    path = Path(path)
    owner = str(path)
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                return _read(f, owner, total=None)
        with open(path, "rb") as f:
            return _read(f, owner, total=os.fstat(f.fileno()).st_size)
    except (EOFError, zlib.error, gzip.BadGzipFile) as e:
        raise InvalidValue(owner, f"not a complete gzip file ({e})") from e
    except OSError as e:
        raise InvalidValue(owner, f"cannot read the file ({e.strerror or e})") from e


def _read(f: io.BufferedIOBase, owner: str, total: int | None) -> np.ndarray:
    """The IDX array read from the stream ``f``; ``total`` is its length in bytes, where known
    (a plain file, bytes), else None (a gzip stream, whose length is known only once read)."""
    # 1. The fixed part of the header: zero, zero, type code, ndim.
    data = f.read(4)
    if len(data) < 4:
        raise InvalidValue(owner, f"an IDX header needs 4 bytes, got {len(data)} bytes")
    if data[0] != 0 or data[1] != 0:
        magic = int.from_bytes(data[:4], "big")
        raise InvalidValue(
            owner, f"an IDX file starts with two zero bytes, got magic number 0x{magic:08x}"
        )
    code, ndim = data[2], data[3]
    if code not in IDX_DTYPES:
        known = ", ".join(f"0x{c:02x}" for c in IDX_DTYPES)
        raise InvalidValue(owner, f"IDX type code must be one of {known}, got 0x{code:02x}")
    if not 1 <= ndim <= MAX_DIMS:
        raise InvalidValue(owner, f"IDX ndim must be in [1, {MAX_DIMS}], {got(ndim)}")
    # 2. The sizes, one big-endian uint32 per dimension.
    start = 4 + 4 * ndim
    data += f.read(4 * ndim)
    if len(data) < start:
        raise InvalidValue(
            owner, f"an IDX header with {ndim} dims needs {start} bytes, got {len(data)} bytes"
        )
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = IDX_DTYPES[code]
    dims = "x".join(map(str, shape))
    expected = math.prod(shape) * dtype.itemsize  # a Python int: no int64 overflow
    # 3. The payload must be exactly as long as the header says, and fit in memory.
    if total is not None and total - start != expected:
        raise InvalidValue(
            owner,
            f"IDX payload must hold {expected} bytes for dims {dims} of {dtype.name}, "
            f"got {total - start} bytes",
        )
    available = available_bytes()
    if available is not None and 2 * expected > available:  # the bytes, then their copy
        raise InvalidValue(
            owner,
            f"IDX dims {dims} of {dtype.name} claim {format_bytes(expected)} ({expected} bytes), "
            f"and reading them takes twice that: more than the {format_bytes(available)} of "
            "memory available",
        )
    payload = _read_at_most(f, expected + 1)  # one byte more: a padded stream shows here
    if len(payload) != expected:
        got_bytes = f"more than {expected}" if len(payload) > expected else str(len(payload))
        raise InvalidValue(
            owner,
            f"IDX payload must hold {expected} bytes for dims {dims} of {dtype.name}, "
            f"got {got_bytes} bytes",
        )
    array = np.frombuffer(payload, dtype=dtype).reshape(shape)
    return array.astype(dtype.newbyteorder("="))  # native byte order, and a writable copy


def _read_at_most(f: io.BufferedIOBase, n: int, step: int = 1 << 24) -> bytearray:
    """Up to ``n`` bytes of ``f``, read in steps: a buffered ``f.read(n)`` may allocate ``n``
    bytes up front, which for a lying header is more than the data (or an OverflowError)."""
    data = bytearray()
    while len(data) < n:
        chunk = f.read(min(step, n - len(data)))
        if not chunk:
            break
        data += chunk
    return data  # not bytes(data): that would be a second copy
