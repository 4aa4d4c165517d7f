"""The memory a data file may take: the least of what the system, the container and the
process's own limits leave, from files laid out as Linux lays them out."""

from __future__ import annotations

import os
import resource

import pytest

from caviar.data import memory

MIB = 2**20


@pytest.fixture
def linux(tmp_path, monkeypatch: pytest.MonkeyPatch):
    """A fake /proc and /sys/fs/cgroup: nothing limited until a test writes a limit."""
    proc = tmp_path / "proc"
    proc.mkdir()
    (proc / "meminfo").write_text("MemTotal: 8000000 kB\nMemAvailable: 4000000 kB\n")
    (proc / "cgroup").write_text("4:memory:/job\n0::/job\n")
    (proc / "statm").write_text("25600 100 50 1 0 12800 0\n")  # 25600 pages of address space
    cgroup = tmp_path / "cgroup"
    for folder in (cgroup / "job", cgroup / "memory" / "job"):
        folder.mkdir(parents=True)
    (cgroup / "job" / "memory.max").write_text("max\n")
    (cgroup / "memory" / "job" / "memory.limit_in_bytes").write_text("9223372036854771712\n")
    monkeypatch.setattr(memory, "MEMINFO", proc / "meminfo")
    monkeypatch.setattr(memory, "PROC_CGROUP", proc / "cgroup")
    monkeypatch.setattr(memory, "PROC_STATM", proc / "statm")
    monkeypatch.setattr(memory, "CGROUP_ROOT", cgroup)
    monkeypatch.setattr(memory, "_PAGE", 4096)
    limits = {
        resource.RLIMIT_AS: resource.RLIM_INFINITY,
        resource.RLIMIT_DATA: resource.RLIM_INFINITY,
    }
    monkeypatch.setattr(
        memory.resource, "getrlimit", lambda which: (limits[which], resource.RLIM_INFINITY)
    )
    return cgroup, limits


def test_mem_available_when_nothing_else_limits(linux) -> None:
    assert memory.available_bytes() == 4000000 * 1024


def test_a_cgroup_v2_limit_counts_what_the_group_uses(linux) -> None:
    cgroup, _ = linux
    (cgroup / "job" / "memory.max").write_text("3000000000\n")
    (cgroup / "job" / "memory.current").write_text("1000000000\n")
    assert memory.available_bytes() == 2000000000


def test_a_cgroup_v1_limit_counts_what_the_group_uses(linux) -> None:
    cgroup, _ = linux
    (cgroup / "memory" / "job" / "memory.limit_in_bytes").write_text("1500000000\n")
    (cgroup / "memory" / "job" / "memory.usage_in_bytes").write_text("500000000\n")
    assert memory.available_bytes() == 1000000000


def test_rlimit_as_leaves_the_limit_less_the_address_space_in_use(linux) -> None:
    _, limits = linux
    limits[resource.RLIMIT_AS] = 25600 * 4096 + 300 * MIB  # statm: 100 MiB in use
    assert memory.available_bytes() == 300 * MIB


def test_rlimit_data_leaves_the_limit_less_the_data_in_use(linux) -> None:
    _, limits = linux
    limits[resource.RLIMIT_DATA] = 12800 * 4096 + 7 * MIB  # statm: 50 MiB of data
    assert memory.available_bytes() == 7 * MIB


def test_without_meminfo_the_free_pages_are_used(linux, monkeypatch) -> None:
    memory.MEMINFO.unlink()
    pages = {"SC_AVPHYS_PAGES": 1000}
    monkeypatch.setattr(os, "sysconf", lambda name: pages[name])
    assert memory.available_bytes() == 1000 * 4096


def test_nothing_known_is_none(linux, monkeypatch) -> None:
    memory.MEMINFO.unlink()
    memory.PROC_CGROUP.unlink()

    def unknown(name: str) -> int:
        raise ValueError(name)

    monkeypatch.setattr(os, "sysconf", unknown)
    monkeypatch.setattr(memory, "resource", None)
    assert memory.available_bytes() is None


@pytest.mark.parametrize(
    ("n", "shown"),
    [
        (0, "0 bytes"),
        (1023, "1023 bytes"),
        (1024, "1 KiB"),
        (4000, "3.91 KiB"),
        (6 * 2**30, "6 GiB"),
        (600 * 10**9 * 4, "2.18 TiB"),
        (2**80, "1 YiB"),
        (2**90, "1.02e+03 YiB"),
    ],
)
def test_format_bytes(n: int, shown: str) -> None:
    assert memory.format_bytes(n) == shown


@pytest.mark.skipif(not os.path.exists("/proc/meminfo"), reason="Linux only")
def test_on_this_machine_it_is_at_most_the_physical_memory() -> None:
    with open("/proc/meminfo") as f:
        total = next(int(line.split()[1]) * 1024 for line in f if line.startswith("MemTotal:"))
    available = memory.available_bytes()
    assert available is not None and 0 < available <= total
