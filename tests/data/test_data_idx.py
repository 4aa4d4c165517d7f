"""IDX parsing against files built byte by byte from the format's description."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

from caviar.core.errors import InvalidValue
from caviar.data import parse_idx, read_idx


def build_idx(code: int, shape: tuple[int, ...], payload: bytes) -> bytes:
    """0, 0, type code, ndim, big-endian uint32 sizes, then the values."""
    return bytes([0, 0, code, len(shape)]) + struct.pack(f">{len(shape)}I", *shape) + payload


def test_ubyte_images_keep_shape_and_values() -> None:
    # 2 images of 2x3 pixels: 0..11 in C order
    data = (
        b"\x00\x00\x08\x03" + b"\x00\x00\x00\x02\x00\x00\x00\x02\x00\x00\x00\x03" + bytes(range(12))
    )
    array = parse_idx(data)
    assert array.dtype == np.uint8
    assert array.shape == (2, 2, 3)
    assert array[1, 0].tolist() == [6, 7, 8]
    assert array[1, 1, 2] == 11


def test_ubyte_labels() -> None:
    array = parse_idx(build_idx(0x08, (4,), bytes([5, 0, 4, 1])))
    assert array.tolist() == [5, 0, 4, 1]


def test_other_types_are_big_endian() -> None:
    int16 = parse_idx(build_idx(0x0B, (2,), b"\x01\x02\xff\xfe"))
    assert int16.tolist() == [0x0102, -2]
    float32 = parse_idx(build_idx(0x0D, (1,), struct.pack(">f", 1.5)))
    assert float32.dtype == np.float32 and float32.tolist() == [1.5]


@pytest.mark.parametrize(
    ("data", "match"),
    [
        pytest.param(
            build_idx(0x08, (2, 3), bytes(5)), r"must hold 6 bytes .* got 5", id="truncated"
        ),
        pytest.param(build_idx(0x08, (2, 3), bytes(7)), r"must hold 6 bytes .* got 7", id="padded"),
        pytest.param(b"\x00\x00\x08", r"needs 4 bytes, got 3", id="no-header"),
        pytest.param(
            b"\x1f\x8b\x08\x00" + bytes(8),
            r"two zero bytes, got magic number 0x1f8b0800",
            id="gzip-not-idx",
        ),
        pytest.param(
            build_idx(0x07, (1,), b"\x00"), r"type code must be one of .* got 0x07", id="bad-type"
        ),
        pytest.param(b"\x00\x00\x08\x00", r"ndim must be in \[1, 64\], got 0", id="no-dims"),
        pytest.param(
            b"\x00\x00\x08\x02\x00\x00\x00\x01", r"2 dims needs 12 bytes, got 8", id="short-dims"
        ),
    ],
)
def test_bad_files_are_rejected(data: bytes, match: str) -> None:
    with pytest.raises(InvalidValue, match=match):
        parse_idx(data)


def test_read_idx_gunzips_by_suffix(tmp_path) -> None:
    data = build_idx(0x08, (3,), bytes([7, 8, 9]))
    (tmp_path / "labels.gz").write_bytes(gzip.compress(data))
    (tmp_path / "labels").write_bytes(data)
    assert read_idx(tmp_path / "labels.gz").tolist() == [7, 8, 9]
    assert read_idx(tmp_path / "labels").tolist() == [7, 8, 9]


def test_truncated_gzip_names_the_file(tmp_path) -> None:
    packed = gzip.compress(build_idx(0x08, (100,), bytes(100)))
    path = tmp_path / "cut.gz"
    path.write_bytes(packed[: len(packed) // 2])
    with pytest.raises(InvalidValue, match=r"cut\.gz: not a complete gzip file"):
        read_idx(path)


def test_truncated_payload_inside_gzip_names_the_file(tmp_path) -> None:
    path = tmp_path / "short.gz"
    path.write_bytes(gzip.compress(build_idx(0x08, (10, 2, 2), bytes(39))))
    with pytest.raises(InvalidValue, match=r"short\.gz: IDX payload must hold 40 bytes"):
        read_idx(path)
