"""What every experiment shares: its options, its result, and how a run is written out.

An experiment is a pure ``run(options) -> Result`` (train, then compute the plot data) and a
``draw(numbers, path)`` that only draws what ``numbers`` holds. :func:`run_experiment` times the
run, adds what makes it reproducible (seeds, way, device, versions, machine) and writes
``<out>/<name>.json`` and ``<out>/<name>.png``.
"""

from __future__ import annotations

import json
import math
import os
import platform
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from caviar.core.errors import InvalidValue
from caviar.experiments.ways import WAYS

#: "caviar": the population engine (shuffled epochs, inverted dropout, torch's batch norm);
#: "book": the book's own loop in plain torch (batches drawn with replacement, non-inverted
#: dropout, its batch norm), see :mod:`caviar.experiments.bookway`


@dataclass(frozen=True)
class Options:
    """What the command line sets for one run."""

    seeds: tuple[int, ...] = (0,)
    data_dir: str | None = None
    device: str = "auto"
    quick: bool = False
    way: str = "caviar"
    out: Path | None = None

    def __post_init__(self) -> None:
        if not self.seeds:
            raise InvalidValue("experiment.seed", "must name at least one seed, got none")
        if self.way not in WAYS:
            raise InvalidValue("experiment.way", f"must be one of {list(WAYS)}, got {self.way!r}")


@dataclass
class Result:
    """An experiment's numbers (JSON-ready plot data included), its table and its notes."""

    numbers: dict[str, Any]
    table: list[str]
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Experiment:
    """A lesson: its name, one line about it, how it runs and how its figure is drawn."""

    name: str
    summary: str
    run: Callable[[Options], Result]
    draw: Callable[[Mapping[str, Any], Path], None]
    ways: tuple[str, ...] = ("caviar",)


def table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    """Rows as aligned text lines; floats with 3 decimals (or 2 significant digits if small)."""

    def cell(v: Any) -> str:
        if isinstance(v, float):
            if math.isnan(v):
                return "-"
            return f"{v:.3f}" if abs(v) >= 0.01 or v == 0 else f"{v:.2g}"
        return str(v)

    cells = [[str(h) for h in header], *[[cell(v) for v in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in cells]
    return [lines[0], "  ".join("-" * w for w in widths), *lines[1:]]


def _meta(experiment: Experiment, options: Options, seconds: float) -> dict[str, Any]:
    import numpy as np  # deferred: numpy and torch, for their versions only
    import torch

    return {
        "experiment": experiment.name,
        "seeds": list(options.seeds),
        "way": options.way,
        "quick": options.quick,
        "device": options.device,
        "seconds": round(seconds, 2),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, torch threads "
        f"{torch.get_num_threads()}",
        "versions": {"torch": torch.__version__, "numpy": np.__version__},
    }


def run_experiment(
    experiment: Experiment, options: Options, *, echo: Callable[[str], None] = print
) -> Result:
    """Run, print the table and notes, write the JSON and the PNG; the result."""
    if options.way not in experiment.ways:
        raise InvalidValue(
            "experiment.way",
            f"{experiment.name} runs {list(experiment.ways)}, got {options.way!r}",
        )
    out = options.out or Path("caviar-experiments") / experiment.name
    start = time.perf_counter()
    result = experiment.run(options)
    seconds = time.perf_counter() - start
    result.numbers = {"meta": _meta(experiment, options, seconds), **result.numbers}
    result.numbers["notes"] = result.notes
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{experiment.name}.json").write_text(json.dumps(result.numbers, indent=1) + "\n")
    experiment.draw(result.numbers, out / f"{experiment.name}.png")
    for line in [*result.table, *result.notes]:
        echo(line)
    echo(f"{experiment.name}: {seconds:.1f} s; wrote {out}/{experiment.name}.json and .png")
    return result


def save_figure(fig: Any, path: Path) -> None:
    """A renderer's last step: lay the figure out, save it at ``path`` (the folder made if
    needed) and free it."""
    import matplotlib.pyplot as plt  # deferred: matplotlib, only when a figure is drawn

    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
