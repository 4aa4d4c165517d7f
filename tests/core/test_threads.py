"""ThreadGovernor: an explicit thread count is kept; ``auto`` uses the cores the rest of the machine
leaves free, measured between calls from fake /proc/stat readings, this process's CPU time and a
fake clock. Every count is capped at what the process can run: its cores, fewer under a low limit
on the user's processes (RLIMIT_NPROC, given here as fake readings), and a count above the cap is
refused in one line."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator

import pytest
import torch

from caviar.core import threads
from caviar.core.errors import InvalidValue
from caviar.core.threads import ThreadCap, ThreadGovernor, check_threads, set_threads, thread_cap


@pytest.fixture(autouse=True)
def restore_torch_threads() -> Iterator[None]:
    """The governor sets torch's global thread count; put it back after each test."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def no_process_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """No limit on the user's processes unless a test sets one: the cases do not depend on
    who runs the suite (root is exempt) or on what else that user runs."""
    monkeypatch.setattr(threads, "_process_room", lambda: None)


class Readings:
    """Fake (busy, own, clock) readings, one triple per sample; the governor reads busy, own and
    clock in that order, so the clock call moves on to the next triple."""

    def __init__(self, samples: list[tuple[float | None, float, float]]) -> None:
        self.samples, self.i = samples, 0

    def busy(self) -> float | None:
        return self.samples[self.i][0]

    def own(self) -> float:
        return self.samples[self.i][1]

    def clock(self) -> float:
        value = self.samples[self.i][2]
        self.i += 1
        return value


def governor(setting: int | None, cores: int, readings: Readings) -> ThreadGovernor:
    return ThreadGovernor(
        setting, cores=cores, busy=readings.busy, own=readings.own, clock=readings.clock
    )


#: each case: setting, cores, the readings (busy CPU-seconds of the whole machine, this process's
#: CPU-seconds, wall seconds) at start and at each adjust, and the thread count after each adjust.
#: Cores the others keep busy = (d busy - d own) / d wall; threads = cores - others, in [1, cores].
CASES = {
    "an explicit count is kept on an idle machine": (
        1,
        2,
        [(100.0, 10.0, 0.0), (102.0, 12.0, 1.0)],  # others 0 -> auto would say 2
        [1],
    ),
    "an explicit count is kept on a busy machine": (
        2,
        2,
        [(100.0, 10.0, 0.0), (102.0, 10.0, 1.0)],  # others 2 -> auto would say 1
        [2],
    ),
    "auto: another process keeps one core of two busy": (
        None,
        2,
        [(100.0, 10.0, 0.0), (102.0, 11.0, 1.0)],  # (2 - 1) / 1 = 1 other -> 2 - 1 = 1
        [1],
    ),
    "auto: the machine idle but for us": (
        None,
        2,
        [(100.0, 10.0, 0.0), (104.0, 14.0, 2.0)],  # (4 - 4) / 2 = 0 others -> 2
        [2],
    ),
    "auto: back up once the other process stops": (
        None,
        2,
        [
            (100.0, 10.0, 0.0),
            (102.0, 11.0, 1.0),  # 1 other -> 1
            (103.0, 12.0, 2.0),  # (1 - 1) / 1 = 0 others -> 2
        ],
        [1, 2],
    ),
    "auto: never below one thread": (
        None,
        2,
        [(100.0, 10.0, 0.0), (105.0, 11.0, 1.0)],  # (5 - 1) / 1 = 4 others -> max(1, -2) = 1
        [1],
    ),
    "auto: never above the cores (own time above the machine's: noise)": (
        None,
        2,
        [(100.0, 10.0, 0.0), (101.0, 13.0, 1.0)],  # (1 - 3) / 1 < 0 -> 0 others -> 2
        [2],
    ),
    "auto: four cores, 1.2 kept busy by others": (
        None,
        4,
        [(0.0, 0.0, 0.0), (3.4, 1.0, 2.0)],  # (3.4 - 1) / 2 = 1.2 -> round(2.8) = 3
        [3],
    ),
    "auto: an interval under 0.05 s changes nothing": (
        None,
        2,
        [
            (100.0, 10.0, 0.0),
            (102.0, 11.0, 1.0),  # 1 other -> 1
            (102.04, 11.0, 1.04),  # 0.04 s: all idle, but too short to measure -> still 1
        ],
        [1, 1],
    ),
    "auto: no /proc/stat keeps the count": (
        None,
        2,
        [(None, 10.0, 0.0), (None, 11.0, 1.0), (None, 11.0, 2.0)],
        [2, 2],
    ),
    "auto: /proc/stat gone after a measurement keeps the measured count": (
        None,
        2,
        [(100.0, 10.0, 0.0), (102.0, 11.0, 1.0), (None, 12.0, 2.0)],  # 1 other -> 1, then kept
        [1, 1],
    ),
}


@pytest.mark.parametrize(("setting", "cores", "samples", "expected"), CASES.values(), ids=CASES)
def test_thread_count(
    setting: int | None,
    cores: int,
    samples: list[tuple[float | None, float, float]],
    expected: list[int],
) -> None:
    readings = Readings(samples)
    g = governor(setting, cores, readings)
    assert g.threads == (setting or cores)  # before any measurement: the setting, or all cores
    assert torch.get_num_threads() == g.threads
    after = []
    for _ in expected:
        after.append(g.adjust())
        assert torch.get_num_threads() == g.threads == after[-1]
    assert after == expected
    assert readings.i == len(samples)  # one reading at start and one per adjust


def test_others_is_the_measured_load_in_cores() -> None:
    g = governor(None, 4, Readings([(0.0, 0.0, 0.0), (3.4, 1.0, 2.0)]))
    g.adjust()
    assert g.others == pytest.approx(1.2)  # (3.4 - 1.0) / 2.0


def test_an_explicit_count_above_the_cores_is_refused_and_sets_nothing() -> None:
    torch.set_num_threads(1)
    message = "study.threads: must be at most 2, the cores this process may run on, got 3"
    with pytest.raises(InvalidValue, match=f"^{message}$"):
        governor(3, 2, Readings([(100.0, 10.0, 0.0)]))
    assert torch.get_num_threads() == 1


#: each case: cores, (ulimit -u, the user's processes and threads in use) or None for no limit,
#: and the cap. A count N starts 2 (N - 1) threads (torch's OpenMP pool and MKL's), so the room
#: left under the limit, R = limit - in use, allows N = R // 2 + 1 (worked by hand below).
CAPS = {
    "no limit: the cores": (4, None, 4, "the cores this process may run on"),
    "a wide limit: the cores": (4, (4096, 100), 4, "the cores this process may run on"),
    "5 left: 3 threads (starting 4)": (
        4,
        (100, 95),
        3,
        "the threads the limit on this user's processes leaves room for (ulimit -u 100, 95 in use)",
    ),
    "6 left: 4 threads (starting 6), the cores": (
        4,
        (100, 94),
        4,
        "the cores this process may run on",
    ),
    "none left: one thread, which starts none": (
        8,
        (50, 60),
        1,
        "the threads the limit on this user's processes leaves room for (ulimit -u 50, 60 in use)",
    ),
}


@pytest.mark.parametrize(("cores", "limit", "most", "why"), CAPS.values(), ids=CAPS)
def test_the_cap_is_the_cores_or_the_room_the_process_limit_leaves(
    cores: int, limit: tuple[int, int] | None, most: int, why: str
) -> None:
    assert thread_cap(cores, lambda: limit) == ThreadCap(most, why)


def test_a_count_under_the_cores_is_refused_where_the_process_limit_is_low(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(threads, "machine_cores", lambda: 16)
    monkeypatch.setattr(threads, "_process_room", lambda: (200, 196))  # 4 left: 3 threads
    assert check_threads(3) == 3
    with pytest.raises(InvalidValue) as refused:
        check_threads(8, "--threads")
    assert str(refused.value) == (
        "--threads: must be at most 3, the threads the limit on this user's processes leaves "
        "room for (ulimit -u 200, 196 in use), got 8"
    )


def test_auto_takes_the_cap_where_the_process_limit_is_below_the_cores(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(threads, "_process_room", lambda: (100, 97))  # 3 left: 2 threads
    g = governor(None, 8, Readings([(100.0, 10.0, 0.0), (100.0, 12.0, 1.0)]))  # all idle
    assert g.threads == torch.get_num_threads() == 2
    assert g.adjust() == 2  # 8 cores idle, but the limit holds


def test_set_threads_refuses_above_the_cores_and_leaves_torch_as_it_was(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(threads, "machine_cores", lambda: 2)
    torch.set_num_threads(1)
    with pytest.raises(InvalidValue, match=r"^study\.threads: must be at most 2, .* got 1000000$"):
        set_threads(1_000_000)
    assert torch.get_num_threads() == 1
    with pytest.raises(InvalidValue, match=r"^study\.threads: must be at least 1, got 0$"):
        set_threads(0)  # torch's own RuntimeError otherwise
    assert torch.get_num_threads() == 1
    assert set_threads(2) == torch.get_num_threads() == 2


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="needs Linux's /proc")
def test_the_user_tasks_count_this_process_threads() -> None:
    own = len(os.listdir("/proc/self/task"))
    assert threads._user_tasks(os.getuid()) >= own >= 1
    assert threads._user_tasks(2**31 - 7) == 0  # a user that runs nothing


@pytest.mark.slow
@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="needs Linux's /proc")
def test_a_count_starts_no_more_threads_than_the_cap_allows_for() -> None:
    """The cap's estimate, 2 (N - 1) threads for a count N, holds in a fresh process: torch
    told 3 threads, then a product, a reduction and an element-wise kernel."""
    script = textwrap.dedent(
        """
        import os, torch
        before = len(os.listdir("/proc/self/task"))
        torch.set_num_threads(3)
        x = torch.randn(300, 300)
        (x @ x).exp().sum()
        print(len(os.listdir("/proc/self/task")) - before)
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert 0 <= int(out.stdout) <= threads.threads_started(3) == 4
