"""How much host memory a data file may take, so that a file whose headers claim terabytes is
refused in one line before anything is allocated, rather than ending in a ``MemoryError`` (or in
the kernel's out-of-memory killer) after minutes of decompressing.

The answer is the least of what the system has available (``MemAvailable`` in /proc/meminfo, else
the free pages ``sysconf`` reports, else the physical memory), what this process's container may
still take (cgroup v2 ``memory.max`` less ``memory.current``) and what its own limits leave
(``RLIMIT_AS`` less the address space in use, ``RLIMIT_DATA`` less the data in use). Each source
that cannot be read is skipped; when none can, the answer is None and only the checks that need
no memory figure apply.
"""

from __future__ import annotations

import os
from pathlib import Path

try:
    import resource
except ImportError:  # not on Windows
    resource = None  # type: ignore[assignment]

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
#: where Linux says what memory there is (module-level so that tests can point elsewhere)
MEMINFO = Path("/proc/meminfo")
PROC_CGROUP = Path("/proc/self/cgroup")
CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_STATM = Path("/proc/self/statm")


def available_bytes() -> int | None:
    """The bytes this process can still allocate, or None when nothing says (see the module)."""
    limits = [n for n in (_system(), _cgroup(), *_rlimits()) if n is not None]
    return max(0, min(limits)) if limits else None


def format_bytes(n: int) -> str:
    """``n`` bytes for a message, in binary units past 1023: ``512 bytes``, ``2.18 TiB``."""
    if n < 1024:
        return f"{n} bytes"
    value = float(n)
    for unit in ("KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB"):
        value /= 1024
        if value < 1024:
            return f"{value:.3g} {unit}"
    return f"{value / 1024:.3g} YiB"


def _system() -> int | None:
    try:
        with open(MEMINFO) as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    for pages in ("SC_AVPHYS_PAGES", "SC_PHYS_PAGES"):  # free pages, else all of them (macOS)
        try:
            return int(os.sysconf(pages)) * _PAGE
        except (ValueError, OSError, AttributeError):
            continue
    return None


def _cgroup() -> int | None:
    """What the process's cgroup may still take (a container's memory limit): v2's
    ``memory.max`` less ``memory.current``, or v1's ``memory.limit_in_bytes`` less
    ``memory.usage_in_bytes``, in the process's own group or else at the root of the hierarchy
    (where a container sees its own)."""
    try:
        lines = PROC_CGROUP.read_text().splitlines()
    except OSError:
        return None
    groups = dict(line.split(":", 2)[1:] for line in lines if line.count(":") >= 2)
    candidates = [
        (CGROUP_ROOT / groups.get("", "/").lstrip("/"), "memory.max", "memory.current"),
        (CGROUP_ROOT, "memory.max", "memory.current"),
    ]
    for v1 in {groups.get("memory", "/"), "/"}:
        folder = CGROUP_ROOT / "memory" / v1.lstrip("/")
        candidates.append((folder, "memory.limit_in_bytes", "memory.usage_in_bytes"))
    for folder, limit_file, usage_file in candidates:
        try:
            limit = (folder / limit_file).read_text().strip()
            if limit == "max" or int(limit) >= 2**60:  # v1 writes "no limit" as about 2**63
                continue
            return int(limit) - int((folder / usage_file).read_text())
        except (OSError, ValueError):
            continue
    return None


def _rlimits() -> list[int | None]:
    """What this process's RLIMIT_AS and RLIMIT_DATA leave (``ulimit -v``, ``ulimit -d``)."""
    if resource is None:
        return []
    try:
        fields = PROC_STATM.read_text().split()
        in_use = {"AS": int(fields[0]) * _PAGE, "DATA": int(fields[5]) * _PAGE}
    except (OSError, ValueError, IndexError):
        in_use = {"AS": 0, "DATA": 0}
    left: list[int | None] = []
    for name in ("AS", "DATA"):
        soft, _hard = resource.getrlimit(getattr(resource, f"RLIMIT_{name}"))
        left.append(None if soft == resource.RLIM_INFINITY else soft - in_use[name])
    return left
