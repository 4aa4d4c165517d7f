"""The report's tables of facts, as plain rows: the study's overview and every use of its test set.

Pure functions over trials and the study's attributes; the HTML is written elsewhere.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from caviar.core.records import FrozenTrial
from caviar.report.data import summary

#: what the overview says of a study with no ``data`` attrs
NO_DATA = "not recorded: this study was made with the Python API, not caviar tune"


def overview_rows(
    trials: Sequence[FrozenTrial], attrs: Mapping[str, Any], sampler: Mapping[str, Any]
) -> list[tuple[str, Any]]:
    """(name, value) rows: trial counts per state, wall time, the data and split (or that a
    study made with the Python API recorded none), the sampler and the library versions."""
    facts = summary(trials)
    wall = facts["wall_seconds"]
    rows: list[tuple[str, Any]] = [
        ("trials", facts["trials"]),
        *((f"  {state}", n) for state, n in facts["states"].items() if n),
        ("wall time (s)", "-" if math.isnan(wall) else round(wall, 1)),
    ]
    data = attrs.get("data")
    if data:
        sizes = (str(data.get(k, "-")) for k in ("n_train", "n_validation", "n_test"))
        rows += [
            ("data", data.get("source", "-")),
            ("train / validation / test", " / ".join(sizes)),
            ("validation split hash", str(data.get("split_hash", "-"))[:16]),
        ]
    else:
        rows.append(("data", NO_DATA))
    rows += [
        ("sampler", json.dumps(dict(sampler))),
        ("versions", json.dumps(attrs.get("versions", {}))),
    ]
    return rows


@dataclass(frozen=True)
class TestUse:
    """One use of the test set: when, how, on which trial, and what it scored."""

    __test__ = False  # not a pytest test class

    when: str
    mode: str
    trial: Any
    accuracy: float | None
    loss: float | None
    how: str = ""
    n_test: int | None = None


@dataclass(frozen=True)
class TestSetHistory:
    """Every recorded use of the test set, oldest first, and how many there were in all.

    ``count`` can exceed ``len(uses)``: before the history was kept, a study stored only its
    latest use (``attrs["test"]``), with the running count in ``uses``.
    """

    __test__ = False

    uses: tuple[TestUse, ...]
    count: int

    @property
    def heading(self) -> str:
        times = "once" if self.count == 1 else f"{self.count} times"
        return f"Test set (used {times})"

    @property
    def note(self) -> str:
        if self.count <= len(self.uses):
            return ""
        return (
            f"The test set was used {self.count} times, but only the latest use was kept: the "
            f"study predates the history of test-set uses."
        )


def _use(record: Mapping[str, Any]) -> TestUse:
    return TestUse(
        when=str(record.get("when", "?")),
        mode=str(record.get("mode", "?")),
        trial=record.get("trial", "?"),
        accuracy=record.get("accuracy"),
        loss=record.get("loss"),
        how=str(record.get("how", "")),
        n_test=record.get("n_test"),
    )


def uses_of_the_test_set(attrs: Mapping[str, Any]) -> TestSetHistory:
    """The test-set history of a study: ``attrs["test_uses"]``, or for a study made before it
    was kept, the single latest use in ``attrs["test"]``."""
    latest = attrs.get("test")
    records = list(attrs.get("test_uses") or ([latest] if latest else []))
    counted = int(latest.get("uses", len(records))) if latest else 0
    return TestSetHistory(tuple(_use(r) for r in records), max(counted, len(records)))
