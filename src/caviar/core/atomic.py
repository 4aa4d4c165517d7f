"""Files written whole or not at all: every file caviar writes for the user goes through here.

A kept model, an exported program or a report page is written to a hidden temporary name in
its own folder, flushed to the disk (``fsync``) and only then renamed over the target
(``os.replace``, atomic on POSIX within one file system). A write that fails half-way (a full
disk, a file-size limit, a read-only folder, a folder the user cannot write to, the target being
a folder) removes the temporary file and raises :class:`WriteError`: no truncated file is ever
left at the target, and a file already there is untouched. A reader never sees half a file.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
from pathlib import Path

#: what a user can do about a failed write, by the operating system's reason
_ADVICE = {
    errno.ENOSPC: "free some space, or write elsewhere",
    errno.EDQUOT: "free some space within your quota, or write elsewhere",
    errno.EFBIG: "the file is larger than the file system or `ulimit -f` allows: raise the "
    "limit, or write elsewhere",
    errno.EROFS: "the file system is read-only: write to another folder",
    errno.EACCES: "choose a folder you can write to",
    errno.EPERM: "choose a folder you can write to",
    errno.EISDIR: "name a file, not a folder",
    errno.ENOENT: "its folder does not exist",
    errno.ENOTDIR: "a part of its folder's path is a file, not a folder",
}


class WriteError(OSError):
    """A file could not be written; nothing was left at its path (``filename``), and a file
    that was there before is unchanged. ``str(e)`` is one line: the file, the operating
    system's reason and what to do."""

    def __str__(self) -> str:
        advice = _ADVICE.get(self.errno or 0, "")
        return f"cannot write {self.filename}: {self.strerror}; nothing was left there" + (
            f" ({advice})" if advice else ""
        )


def write_atomically(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` whole or not at all (see the module docstring); the path."""
    target = Path(path)
    temp = target.parent / f".{target.name}.{secrets.token_hex(4)}.part"
    try:
        # 0o666 less the umask, as open() would give the file: not mkstemp's private 0o600
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except OSError as e:
        raise _failed(e, target) from None
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, target)
    except BaseException as e:  # Ctrl-C too: the temporary file never stays
        with contextlib.suppress(OSError):
            os.unlink(temp)
        if isinstance(e, OSError):
            raise _failed(e, target) from None
        raise
    _sync_folder(target.parent)
    return target


def _failed(error: OSError, target: Path) -> WriteError:
    """The error as one about ``target``, not the temporary name it was written under."""
    code = error.errno or errno.EIO
    return WriteError(code, error.strerror or os.strerror(code), str(target))


def _sync_folder(folder: Path) -> None:
    """The rename on the disk too; skipped where the file system cannot open a folder."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
