"""Reading a ``.npz`` archive without trusting it: every size is checked before it is allocated.

A ``.npz`` file is a zip archive of ``.npy`` members, each a small text header (shape, dtype,
order) and then the raw values. ``numpy.load`` believes the header: a member that claims
600 x 1e9 float32 values asks for 2.18 TiB at once, and 6 GiB of compressed zeros (a few MiB on
disk) are decompressed for 40 s before the allocation fails. Here each wanted member's header is
read first (a few hundred bytes), and the member is refused, in one line, unless

1. its header is a plain ``.npy`` header of a known version (no pickled Python objects);
2. the bytes it claims fit in the memory available (:func:`caviar.data.memory.available_bytes`),
   with what the caller will add (a float32 copy of the features);
3. the zip directory's uncompressed size of the member is exactly header + claimed data, so a
   header cannot claim more data than the member holds.

Only then is it read, by ``numpy.lib.format.read_array``, which reads exactly
``count * itemsize`` bytes after the header; zipfile never yields more than the directory's
size, and checks the CRC at the end. A directory that lies about a member's size therefore
bounds the decompression rather than widening it.
"""

from __future__ import annotations

import io
import math
import struct
import zipfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from caviar.core.errors import InvalidValue
from caviar.data.memory import available_bytes, format_bytes

NPY_MAGIC = b"\x93NUMPY"
#: a zip archive starts with a member, or is empty (numpy.load reads only these as .npz)
ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")
GZIP_MAGIC = b"\x1f\x8b"
#: .npy version -> struct format of its header length (3.0 is 2.0 with a UTF-8 header)
HEADER_LENGTH = {(1, 0): "<H", (2, 0): "<I", (3, 0): "<I"}
#: numpy reads headers up to 10000 characters; a longer one is refused before it is read
MAX_HEADER = 10_000
#: numpy's most dimensions for an array
MAX_DIMS = 64
#: the compressions numpy.savez (stored) and numpy.savez_compressed (deflated) write
COMPRESSIONS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)
COMPRESSION_NAMES = {zipfile.ZIP_BZIP2: "bzip2", zipfile.ZIP_LZMA: "LZMA", 9: "deflate64"}
HOW_TO_SAVE = "save the arrays with numpy.savez(path, x=x, y=y)"

_READ_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    EOFError,
    ValueError,
    RuntimeError,  # NotImplementedError for an unknown compression, RecursionError
    zipfile.BadZipFile,
    zlib.error,
    struct.error,
)


@dataclass(frozen=True)
class Header:
    """What a ``.npy`` member's header claims, read without its data."""

    shape: tuple[int, ...]
    dtype: np.dtype
    size: int  # bytes of magic, version, length and header text before the data

    @property
    def count(self) -> int:
        return math.prod(self.shape)  # a Python int: no int64 overflow on hostile dims

    @property
    def nbytes(self) -> int:
        return self.count * self.dtype.itemsize

    def describe(self) -> str:
        return f"shape {list(self.shape)} of {self.dtype}"


def read_npz(path: Path, wanted: Mapping[str, int]) -> tuple[list[str], dict[str, np.ndarray]]:
    """The names of all arrays in the ``.npz`` file at ``path`` (sorted), and those of them
    named in ``wanted``, read as the module says.

    ``wanted`` maps an array's name to the bytes per element its reader will add on top of the
    array (4 for a float32 copy), so that the memory check counts them. Every failure is an
    :class:`InvalidValue` owned by the path, in one line.
    """
    owner = str(path)
    _sniff(path)
    try:
        with zipfile.ZipFile(path) as archive:
            members = _members(archive)
            arrays: dict[str, np.ndarray] = {}
            used = 0
            for key, extra in wanted.items():
                if key not in members:
                    continue
                if len(members[key]) > 1:
                    names = ", ".join(repr(info.filename) for info in members[key])
                    raise InvalidValue(owner, f"holds array {key!r} twice (members {names})")
                arrays[key] = _read_member(archive, members[key][0], owner, key, extra, used)
                used += arrays[key].nbytes
    except InvalidValue:
        raise
    except _READ_ERRORS as e:
        raise InvalidValue(owner, f"not a readable .npz archive ({_one_line(e)})") from e
    return sorted(members), arrays


def _read_member(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, owner: str, key: str, extra: int, used: int
) -> np.ndarray:
    """Array ``key`` from member ``info``: its header read and checked first; ``used`` bytes
    are taken by the arrays read before it."""
    _check_member(info, owner, key)
    try:
        header = _header(archive, info, owner, key)
        _check(header, info, owner, key, extra, used)
        return _read(archive, info, header)
    except InvalidValue:
        raise
    except _READ_ERRORS as e:
        raise InvalidValue(
            owner, f"array {key!r} (member {info.filename!r}) cannot be read: {_one_line(e)}"
        ) from e


def _sniff(path: Path) -> None:
    """Refuse, by its first bytes, a file that is no zip archive, saying what it is instead."""
    owner = str(path)
    try:
        with open(path, "rb") as f:
            start = f.read(8)
    except OSError as e:
        raise InvalidValue(owner, f"cannot read the file ({_one_line(e)})") from e
    if not start:
        raise InvalidValue(owner, f"is an empty file, not a .npz archive; {HOW_TO_SAVE}")
    if start.startswith(NPY_MAGIC):
        raise InvalidValue(owner, f"is a .npy array, not a .npz archive; {HOW_TO_SAVE}")
    if start.startswith(GZIP_MAGIC):
        raise InvalidValue(owner, f"is a gzip file, not a .npz archive; {HOW_TO_SAVE}")
    if not start.startswith(ZIP_MAGICS):
        raise InvalidValue(
            owner,
            f"not a .npz archive (a zip of .npy arrays): it starts with {start!r}; {HOW_TO_SAVE}",
        )


def _members(archive: zipfile.ZipFile) -> dict[str, list[zipfile.ZipInfo]]:
    """Array name -> the members that hold it (``x.npy`` holds ``x``, as in numpy.load)."""
    members: dict[str, list[zipfile.ZipInfo]] = {}
    for info in archive.infolist():
        if info.is_dir():
            continue
        name = info.filename
        members.setdefault(name.removesuffix(".npy"), []).append(info)
    return members


def _check_member(info: zipfile.ZipInfo, owner: str, key: str) -> None:
    """Refuse a member that zipfile would not read with bounded memory, or not at all.

    Stored and deflated members are read in steps of the size asked for; zipfile decompresses a
    bzip2 or LZMA member's compressed bytes whole, and 4 KiB of bzip2 can hold gigabytes of
    zeros. numpy.savez and numpy.savez_compressed write only the first two.
    """
    where = f"array {key!r} (member {info.filename!r})"
    if info.flag_bits & 0x1:
        raise InvalidValue(owner, f"{where} is encrypted; save the arrays with numpy.savez")
    if info.compress_type not in COMPRESSIONS:
        name = COMPRESSION_NAMES.get(info.compress_type, f"method {info.compress_type}")
        raise InvalidValue(
            owner,
            f"{where} is compressed with {name}; caviar reads members stored or deflated, as "
            "numpy.savez and numpy.savez_compressed write them",
        )


def _header(archive: zipfile.ZipFile, info: zipfile.ZipInfo, owner: str, key: str) -> Header:
    """The header of member ``info``, read by itself (at most MAX_HEADER bytes of text)."""
    where = f"array {key!r} (member {info.filename!r})"
    with archive.open(info) as f:
        start = f.read(len(NPY_MAGIC) + 2)
        if not start.startswith(NPY_MAGIC[: len(start)]) or not start:
            raise InvalidValue(owner, f"{where} is not a .npy array: it starts with {start!r}")
        if len(start) < len(NPY_MAGIC) + 2:
            raise InvalidValue(owner, f"{where} ends inside its .npy header")
        version = (start[-2], start[-1])
        if version not in HEADER_LENGTH:
            known = ", ".join(f"{a}.{b}" for a, b in HEADER_LENGTH)
            raise InvalidValue(
                owner, f"{where} has .npy format version {version[0]}.{version[1]}; known: {known}"
            )
        length_format = HEADER_LENGTH[version]
        length_bytes = f.read(struct.calcsize(length_format))
        if len(length_bytes) < struct.calcsize(length_format):
            raise InvalidValue(owner, f"{where} ends inside its .npy header")
        (length,) = struct.unpack(length_format, length_bytes)
        if length > MAX_HEADER * (4 if version == (3, 0) else 1):  # UTF-8: up to 4 bytes a char
            raise InvalidValue(
                owner,
                f"{where} has a .npy header of {length} bytes; numpy writes at most {MAX_HEADER}",
            )
        text = f.read(length)
    if len(text) < length:
        raise InvalidValue(owner, f"{where} ends inside its .npy header")
    parse = (
        np.lib.format.read_array_header_1_0
        if version == (1, 0)
        else np.lib.format.read_array_header_2_0  # 3.0's UTF-8 read as latin-1: sizes agree
    )
    try:
        shape, _fortran_order, dtype = parse(io.BytesIO(length_bytes + text))
    except Exception as e:  # numpy's parser of at most MAX_HEADER bytes of hostile text may
        # raise anything: SyntaxError, tokenize.TokenError, RecursionError, ...
        reason = (
            e if isinstance(e, ValueError) or not e.args else f"{type(e).__name__}: {e.args[0]}"
        )
        raise InvalidValue(
            owner, f"{where} has an unreadable .npy header ({_one_line(reason)})"
        ) from e
    size = len(start) + len(length_bytes) + length
    return Header(tuple(shape), np.dtype(dtype), size)


def _check(
    header: Header, info: zipfile.ZipInfo, owner: str, key: str, extra: int, used: int
) -> None:
    """Refuse a header whose data cannot be loaded: see the module's steps 1 to 3."""
    where = f"array {key!r}"
    # 1. Plain data: a few non-negative integer sizes, no Python objects, some bytes an item.
    if len(header.shape) > MAX_DIMS:
        raise InvalidValue(
            owner, f"{where} claims {len(header.shape)} dimensions; at most {MAX_DIMS} are allowed"
        )
    if any(type(n) is not int or n < 0 for n in header.shape):  # numpy takes True for 1
        raise InvalidValue(
            owner, f"{where} claims {header.describe()}: sizes must be integers >= 0"
        )
    if header.dtype.hasobject:
        raise InvalidValue(
            owner,
            f"{where} holds Python objects (dtype {header.dtype}), which only pickle can load, "
            "and caviar loads no pickles: save numbers (or, for labels, strings)",
        )
    if header.dtype.itemsize == 0:
        raise InvalidValue(owner, f"{where} has dtype {header.dtype}, which holds no data")
    claimed = f"{where} claims {header.describe()}, {_exactly(header.nbytes)}"
    # 2. The memory available, less what the arrays read before this one took.
    need = header.nbytes + header.count * extra
    available = available_bytes()
    if available is not None and need > available - used:
        needs = (
            f"reading it with its float32 copy needs {format_bytes(need)},"
            if need > header.nbytes
            else "that is"
        )
        after = f" after the {format_bytes(used)} of the arrays before it" if used else ""
        raise InvalidValue(
            owner,
            f"{claimed}; {needs} more than the {format_bytes(max(0, available - used))} of "
            f"memory available{after}",
        )
    # 3. The member holds exactly the header and the data it claims.
    held = info.file_size - header.size
    if held != header.nbytes:
        raise InvalidValue(
            owner,
            f"{claimed}, but its member holds {_exactly(max(0, held))} of data after the header "
            "(by the zip directory); the header lies or the file is damaged",
        )


def _exactly(n: int) -> str:
    """``n`` bytes, exactly and, when large, readably: ``2.18 TiB (2400000000000 bytes)``."""
    return format_bytes(n) if n < 1024 else f"{format_bytes(n)} ({n} bytes)"


def _read(archive: zipfile.ZipFile, info: zipfile.ZipInfo, header: Header) -> np.ndarray:
    """The member's array, read by numpy once its header has passed :func:`_check` (numpy reads
    the header again, and then exactly ``header.nbytes``)."""
    with archive.open(info) as f:
        array = np.lib.format.read_array(f, allow_pickle=False)
    if array.shape != header.shape:  # numpy read another header than ours: a changing file
        raise ValueError(f"read shape {list(array.shape)}, not the {list(header.shape)} checked")
    return array


def _one_line(error: BaseException | str, limit: int = 200) -> str:
    """An exception's text as one short line (numpy's and zipfile's may hold newlines or a
    whole header)."""
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."
