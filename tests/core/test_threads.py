"""ThreadGovernor: an explicit thread count is kept; ``auto`` uses the cores the rest of the machine
leaves free, measured between calls from fake /proc/stat readings, this process's CPU time and a
fake clock."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from caviar.core.threads import ThreadGovernor


@pytest.fixture(autouse=True)
def restore_torch_threads() -> Iterator[None]:
    """The governor sets torch's global thread count; put it back after each test."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


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
    "an explicit count is kept on a busy machine, even above the cores": (
        3,
        2,
        [(100.0, 10.0, 0.0), (102.0, 10.0, 1.0)],  # others 2 -> auto would say 1
        [3],
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
