"""Files fetched once into a cache folder, checked by md5, and never seen half-written.

A download goes to a temporary file in the destination folder, is flushed to disk, has its md5
checked, and only then is renamed onto the final name with ``os.replace`` (atomic on POSIX and
Windows within one folder). So a crash, a dropped connection or a bad mirror can leave at worst a
stray temporary file, never a wrong file under the final name; and a file that is wrong anyway
(an older crash, a hand copy) is caught by its md5 before it is used.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import logging
import os
import tempfile
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from caviar.core.errors import InvalidValue

log = logging.getLogger(__name__)

#: seconds a connection may stay silent before a mirror counts as failed
TIMEOUT = 30.0
_CHUNK = 1 << 20
_USER_AGENT = "caviar (https://pypi.org/project/caviar-tune/)"


class DownloadError(OSError):
    """No mirror gave a file with the expected md5; the message lists what each one did."""


def cache_root(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Where downloaded data lives: ``cache_dir``, else ``$CAVIAR_CACHE``, else
    ``$XDG_CACHE_HOME/caviar``, else ``~/.cache/caviar`` (empty variables count as unset)."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    if os.environ.get("CAVIAR_CACHE"):
        return Path(os.environ["CAVIAR_CACHE"]).expanduser()
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]).expanduser() / "caviar"
    return Path.home() / ".cache" / "caviar"


def cache_source(cache_dir: str | os.PathLike[str] | None = None) -> str:
    """Where :func:`cache_root` took its answer from, for messages: ``""`` for ``cache_dir``
    itself, else ``"$CAVIAR_CACHE"``, ``"$XDG_CACHE_HOME"`` or ``"the default ~/.cache/caviar"``."""
    if cache_dir is not None:
        return ""
    for variable in ("CAVIAR_CACHE", "XDG_CACHE_HOME"):
        if os.environ.get(variable):
            return f"${variable}"
    return "the default ~/.cache/caviar"


def prepare_folder(folder: Path, owner: str, what: str = "folder", source: str = "") -> None:
    """Create ``folder`` if needed and check that a file can be written in it, or raise an
    :class:`InvalidValue` owned by ``owner`` with the path and the OS reason (``source``, if
    given, says where the path came from)."""
    where = f"{what} '{folder}'" + (f" (set by {source})" if source else "")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InvalidValue(owner, f"cannot create the {where}: {e.strerror or e}") from None
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".caviar-probe-")
    except OSError as e:
        raise InvalidValue(owner, f"cannot write in the {where}: {e.strerror or e}") from None
    os.close(fd)
    os.unlink(probe)


def md5_file(path: str | os.PathLike[str]) -> str:
    """The md5 hex digest of the file at ``path``, read in chunks."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def check_md5(path: Path, md5: str) -> None:
    """Nothing if ``path`` has md5 ``md5``, else an :class:`InvalidValue` naming both digests."""
    try:
        actual = md5_file(path)
    except OSError as e:
        raise InvalidValue(str(path), f"cannot read the file: {e.strerror or e}") from None
    if actual != md5:
        raise InvalidValue(str(path), f"md5 must be {md5}, got {actual} (a corrupt or other file)")


def ensure_file(
    name: str,
    folder: Path,
    md5: str,
    mirrors: Sequence[str],
    *,
    download: bool = True,
    timeout: float | None = None,
    owner: str = "cache_dir",
    source: str = "",
) -> Path:
    """``folder / name`` with md5 ``md5``, downloaded from the first mirror that serves it right.

    A file already there with another md5 is deleted and fetched again (``folder`` is a cache we
    own). ``mirrors`` are base URLs: the file's URL is ``mirror + name``. With ``download=False`` a
    missing or wrong file is an :class:`InvalidValue`; a failed download is a
    :class:`DownloadError`. A ``folder`` that cannot be created or written in is an
    :class:`InvalidValue` owned by ``owner`` (``source`` says where the folder came from).
    """
    target = folder / name
    if target.is_file():
        try:
            actual = md5_file(target)
        except OSError as e:
            raise InvalidValue(str(target), f"cannot read the file: {e.strerror or e}") from None
        if actual == md5:
            return target
        log.warning("%s: md5 %s, expected %s; discarding it", target, actual, md5)
        if download:
            target.unlink()
    if not download:
        state = "is corrupt (wrong md5)" if target.exists() else "is missing"
        raise InvalidValue(
            str(target), f"{state} and download=False; pass download=True or a data_dir"
        )
    prepare_folder(folder, owner, "cache folder", source)
    failures = []
    for mirror in mirrors:
        url = mirror + name
        try:
            _download(url, target, md5, TIMEOUT if timeout is None else timeout)
            return target
        except (OSError, http.client.HTTPException, ValueError) as e:
            log.warning("%s: %s", url, e)
            failures.append(f"{url}: {e}")
    raise DownloadError(
        f"{target}: no mirror served a file with md5 {md5}; tried " + "; ".join(failures)
    )


def _download(url: str, target: Path, md5: str, timeout: float) -> None:
    """Fetch ``url`` into ``target`` atomically, or raise and leave ``target`` untouched."""
    # 1. Stream into a temporary file next to the target, hashing on the way.
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        digest = hashlib.md5(usedforsecurity=False)
        size = 0
        request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(request, timeout=timeout) as resp:
            length = resp.headers.get("Content-Length")
            while chunk := resp.read(_CHUNK):
                out.write(chunk)
                digest.update(chunk)
                size += len(chunk)
            # 2. urllib returns a short body without complaint when the server hangs up.
            if length is not None and size != int(length):
                raise DownloadError(f"connection closed after {size} of {length} bytes")
            out.flush()
            os.fsync(out.fileno())
        # 3. Only a file with the right md5 gets the final name.
        if digest.hexdigest() != md5:
            raise DownloadError(f"md5 must be {md5}, got {digest.hexdigest()} ({size} bytes)")
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(target.parent)


def _fsync_dir(folder: Path) -> None:
    """Make the rename durable where the platform allows opening a folder (not Windows)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
