"""A file is written whole or not at all: a failed write (a full disk, a file-size limit, a
read-only file system, a folder the user cannot write to, a folder where the file should be)
leaves no file and no temporary file, keeps a file already there as it was, and says in one
line which file, why, and what to do."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from caviar.core.atomic import WriteError, write_atomically

DATA = bytes(range(256)) * 1000  # 256 kB, written in more than one os.write on some systems


def test_the_file_is_written_whole_with_the_usual_permissions(tmp_path: Path) -> None:
    target = tmp_path / "model.pt"
    target.write_bytes(b"old")
    previous = os.umask(0o022)
    try:
        assert write_atomically(target, DATA) == target
    finally:
        os.umask(previous)
    assert target.read_bytes() == DATA
    assert target.stat().st_mode & 0o777 == 0o644  # as open() makes it, not mkstemp's 0o600
    assert sorted(os.listdir(tmp_path)) == ["model.pt"]


def failing(call: Callable[..., Any], code: int, after: int = 0) -> Callable[..., Any]:
    """``call``, failing with ``code`` from its ``after``-th use on (the operating system's
    own error, as a full disk or a read-only file system gives it)."""
    uses = []

    def fail(*args: Any, **kwargs: Any) -> Any:
        uses.append(1)
        if len(uses) > after:
            raise OSError(code, os.strerror(code))
        return call(*args, **kwargs)

    return fail


CASES = {
    "full disk": (
        "write",
        errno.ENOSPC,
        1,
        "No space left on device; nothing was left there (free some space, or write elsewhere)",
    ),
    "file-size limit": (
        "write",
        errno.EFBIG,
        0,
        "File too large; nothing was left there (the file is larger than the file system or "
        "`ulimit -f` allows: raise the limit, or write elsewhere)",
    ),
    "full disk at the flush": (
        "fsync",
        errno.ENOSPC,
        0,
        "No space left on device; nothing was left there (free some space, or write elsewhere)",
    ),
    "read-only file system": (
        "open",
        errno.EROFS,
        0,
        "Read-only file system; nothing was left there (the file system is read-only: write to "
        "another folder)",
    ),
    "folder not writable": (
        "open",
        errno.EACCES,
        0,
        "Permission denied; nothing was left there (choose a folder you can write to)",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_failed_write_leaves_nothing_and_says_why_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    call, code, after, reason = CASES[case]
    target = tmp_path / "trial-4.pt"
    target.write_bytes(b"the model kept before")
    real = getattr(os, call)
    if call == "write":  # short writes, as a disk filling up gives: some bytes, then an error
        short = real
        real = lambda fd, data: short(fd, data[:1000])  # noqa: E731
    monkeypatch.setattr(os, call, failing(real, code, after))
    with pytest.raises(WriteError) as caught:
        write_atomically(target, DATA)
    monkeypatch.undo()
    assert str(caught.value) == f"cannot write {target}: {reason}"
    assert isinstance(caught.value, OSError) and caught.value.errno == code
    assert target.read_bytes() == b"the model kept before"
    assert sorted(os.listdir(tmp_path)) == ["trial-4.pt"]


def test_a_folder_where_the_file_should_be_is_named(tmp_path: Path) -> None:
    target = tmp_path / "out"
    target.mkdir()
    with pytest.raises(WriteError) as caught:
        write_atomically(target, DATA)
    assert str(caught.value) == (
        f"cannot write {target}: Is a directory; nothing was left there (name a file, not a folder)"
    )
    assert sorted(os.listdir(tmp_path)) == ["out"] and list(target.iterdir()) == []


def test_a_missing_folder_is_named(tmp_path: Path) -> None:
    target = tmp_path / "gone" / "m.pt"
    with pytest.raises(WriteError, match=r"No such file or directory; .*its folder does not"):
        write_atomically(target, DATA)
    assert list(tmp_path.iterdir()) == []


def test_ctrl_c_while_writing_leaves_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(*args: Any) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_atomically(tmp_path / "m.pt", DATA)
    monkeypatch.undo()
    assert list(tmp_path.iterdir()) == []


LIMITED = """
import resource, signal, sys
from caviar.core.atomic import WriteError, write_atomically
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write fails with EFBIG instead of a kill
resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))
try:
    write_atomically(sys.argv[1], bytes(300_000))
except WriteError as e:
    print(e)
"""


@pytest.mark.slow
def test_a_real_file_size_limit_leaves_no_truncated_file(tmp_path: Path) -> None:
    """The operating system's own refusal, without root: `ulimit -f` (RLIMIT_FSIZE) makes the
    write past 100 kB fail as a full disk does, after 100 kB were written."""
    target = tmp_path / "trial-4.pt"
    done = subprocess.run(
        [sys.executable, "-c", LIMITED, str(target)], capture_output=True, text=True, check=True
    )
    assert (
        done.stdout.strip()
        == f"cannot write {target}: File too large; nothing was left there "
        + (
            "(the file is larger than the file system or `ulimit -f` allows: raise the limit, or "
            "write elsewhere)"
        )
    )
    assert list(tmp_path.iterdir()) == []
