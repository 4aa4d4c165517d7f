"""The IDX format of MNIST and Fashion-MNIST: a tiny header, then one big-endian array.

Layout (http://yann.lecun.com/exdb/mnist/): two zero bytes, a type code, the number of dimensions
``ndim``, then ``ndim`` big-endian uint32 sizes, then the values in C order. The first four bytes
read as one integer are the "magic number": 2051 (0x00000803) for MNIST's ubyte images of
``[N, 28, 28]`` and 2049 (0x00000801) for its ubyte labels of ``[N]``. The parser checks every part
of the header and that the payload holds exactly the bytes the header promises, so that a
truncated or padded file is an error rather than a silently shorter array.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from caviar.core.errors import InvalidValue, got

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
    # 1. The fixed part of the header: zero, zero, type code, ndim.
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
    if ndim < 1:
        raise InvalidValue(owner, f"IDX ndim must be >= 1, {got(ndim)}")
    # 2. The sizes, one big-endian uint32 per dimension.
    start = 4 + 4 * ndim
    if len(data) < start:
        raise InvalidValue(
            owner, f"an IDX header with {ndim} dims needs {start} bytes, got {len(data)} bytes"
        )
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    # 3. The payload must be exactly as long as the header says.
    dtype = IDX_DTYPES[code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    payload = len(data) - start
    if payload != expected:
        dims = "x".join(map(str, shape))
        raise InvalidValue(
            owner,
            f"IDX payload must hold {expected} bytes for dims {dims} of {dtype.name}, "
            f"got {payload} bytes",
        )
    array = np.frombuffer(data, dtype=dtype, offset=start).reshape(shape)
    return array.astype(dtype.newbyteorder("="))  # native byte order, and a writable copy


def read_idx(path: str | Path) -> np.ndarray:
    """The array in the IDX file at ``path``, gunzipped first when its name ends in ``.gz``."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise InvalidValue(str(path), f"cannot read the file ({e.strerror or e})") from e
    if path.suffix == ".gz":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as e:
            raise InvalidValue(str(path), f"not a complete gzip file ({e})") from e
    return parse_idx(raw, owner=str(path))
