"""What every experiment shares: its options, its result, and how a run is written out.

An experiment is a pure ``run(options) -> Result`` (train, then compute the plot data) and a
``draw(numbers, path)`` that only draws what ``numbers`` holds. :func:`run_experiment` sets the
threads (caviar's governor, :mod:`caviar.experiments.pace`), times the run, adds what makes it
reproducible (seeds, way, device, threads, versions, machine) and writes ``<out>/<name>.json``
and ``<out>/<name>.png``.

The JSON is strict (``allow_nan=False``: JavaScript's ``JSON.parse`` refuses a bare ``NaN``): a
value a diverged net left undefined is ``null``, and the experiment says in words where a net
diverged ("diverged at epoch 3"). The figure is drawn from those same numbers.
"""

from __future__ import annotations

import json
import math
import os
import platform
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from caviar.core.errors import InvalidValue, got
from caviar.experiments.ways import WAYS

if TYPE_CHECKING:
    from caviar.experiments.pace import Pacer

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
    #: CPU threads: None for "auto" (the cores other work leaves free), or a count
    threads: int | None = None
    #: the run's thread governor, asked between epochs: set by :func:`run_experiment`
    pacer: Pacer | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not self.seeds:
            raise InvalidValue("experiment.seed", "must name at least one seed, got none")
        if self.threads is not None and self.threads < 1:
            raise InvalidValue(
                "experiment.threads", f"must be 'auto' or an integer >= 1, {got(self.threads)}"
            )
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


def strict(value: Any) -> Any:
    """``value`` (dicts, lists, tuples, numbers) with every non-finite float as None, so that
    it writes as strict JSON (NaN marks what a diverged net left undefined)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {k: strict(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [strict(v) for v in value]
    return value


def floats(values: Any) -> Any:
    """A list (of lists) from the JSON as a float array, null as NaN: what the figures draw."""
    import numpy as np  # deferred: numpy, only when a figure is drawn

    return np.array(values, dtype=float)


def _meta(
    experiment: Experiment, options: Options, seconds: float, data: str | None
) -> dict[str, Any]:
    import numpy as np  # deferred: numpy and torch, for their versions only
    import torch

    return {
        "experiment": experiment.name,
        "seeds": list(options.seeds),
        "way": options.way,
        "quick": options.quick,
        "data": data,
        "device": options.device,
        "threads": options.pacer.record() if options.pacer is not None else None,
        "seconds": round(seconds, 2),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
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
    from caviar.experiments.pace import Pacer  # deferred: torch

    out = options.out or Path("caviar-experiments") / experiment.name
    options = replace(options, pacer=Pacer(options.threads))
    start = time.perf_counter()
    result = experiment.run(options)
    seconds = time.perf_counter() - start
    data = result.numbers.get("data")
    result.numbers = strict({"meta": _meta(experiment, options, seconds, data), **result.numbers})
    result.numbers["notes"] = result.notes
    out.mkdir(parents=True, exist_ok=True)
    text = json.dumps(result.numbers, indent=1, allow_nan=False)
    (out / f"{experiment.name}.json").write_text(text + "\n")
    experiment.draw(result.numbers, out / f"{experiment.name}.png")
    for line in [*result.table, *result.notes]:
        echo(line)
    echo(f"{experiment.name}: {seconds:.1f} s; wrote {out}/{experiment.name}.json and .png")
    return result


def title(numbers: Mapping[str, Any]) -> str:
    """A figure's title: the experiment, the way, the data and the seeds (from its meta)."""
    meta = numbers.get("meta", {})
    seeds = meta.get("seeds", [])
    words = [
        f"{meta.get('experiment', '?')}{' --quick' if meta.get('quick') else ''}",
        f"way: {meta.get('way', '?')}",
        f"seed{'s' if len(seeds) != 1 else ''} {' '.join(map(str, seeds))}",
    ]
    data = meta.get("data")
    head = ", ".join(words)
    return f"{head}\n{_short(data)}" if data else head


def _short(data: str, most: int = 110) -> str:
    """A data source in at most ``most`` characters (its first clause, then its end)."""
    if len(data) <= most:
        return data
    first, *_, last = [part.strip() for part in data.split(";")]
    text = f"{first}; ...; {last}"
    return text if len(text) <= most else text[: most - 3] + "..."


def save_figure(fig: Any, path: Path, numbers: Mapping[str, Any] | None = None) -> None:
    """A renderer's last step: title the figure from ``numbers``' meta, lay it out, save it at
    ``path`` (the folder made if needed) and free it."""
    import matplotlib.pyplot as plt  # deferred: matplotlib, only when a figure is drawn

    path.parent.mkdir(parents=True, exist_ok=True)
    if numbers is not None:
        fig.suptitle(title(numbers), fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
