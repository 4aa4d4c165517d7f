"""``caviar experiment``: the textbook lessons as commands.

``caviar experiment list`` names them; ``caviar experiment NAME [--data-dir D] [--seed S ...]
[--device DEV] [--threads auto|N] [--quick] [--way caviar|book] [--out DIR]`` runs one.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from caviar.core.errors import InvalidValue
from caviar.experiments.ways import WAYS


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``experiment`` on the ``caviar`` command's subparsers."""
    e: argparse.ArgumentParser = subparsers.add_parser(
        "experiment", help="run a textbook lesson: `caviar experiment list` names them"
    )
    e.add_argument("name", help="an experiment's name, or `list`")
    e.add_argument("--data-dir", help="folder with MNIST's IDX .gz files (no download)")
    e.add_argument("--seed", type=int, nargs="+", default=[0], help="one or more seeds")
    e.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    e.add_argument(
        "--threads",
        type=threads_flag,
        default="auto",
        help="CPU threads: auto (the cores other work leaves free, re-measured as it runs, as "
        "caviar tune) or N, at most the cores (default auto)",
    )
    e.add_argument("--quick", action="store_true", help="small sizes (digits without MNIST)")
    e.add_argument(
        "--way",
        choices=WAYS,
        default="caviar",
        help="caviar: the population engine; book: the book's own training loop",
    )
    e.add_argument("--out", help="folder for the JSON and PNG (default caviar-experiments/NAME)")
    e.set_defaults(run=run, imports=("caviar.experiments",))
    return e


def threads_flag(text: str) -> int | str:
    """``auto`` or a count >= 1 (a count above the cores is refused when the run starts)."""
    if text == "auto":
        return text
    try:
        count = int(text)
    except ValueError:
        count = 0
    if count < 1:
        raise argparse.ArgumentTypeError(f"must be auto or an integer >= 1, got {text!r}")
    return count


def listing() -> list[str]:
    """One line per experiment: its name and what it shows."""
    from caviar.experiments.registry import EXPERIMENTS  # deferred: torch

    width = max(len(n) for n in EXPERIMENTS)
    return [f"{name.ljust(width)}  {e.summary}" for name, e in EXPERIMENTS.items()]


def run(args: argparse.Namespace) -> int:
    """Run the named experiment (or list them); 0 on success."""
    # deferred: torch
    from caviar.experiments.base import Options, run_experiment
    from caviar.experiments.registry import EXPERIMENTS

    if args.name == "list":
        print("\n".join(listing()))
        return 0
    if args.name not in EXPERIMENTS:
        raise InvalidValue(
            "experiment", f"must be `list` or one of {list(EXPERIMENTS)}, got {args.name!r}"
        )
    options = Options(
        seeds=tuple(args.seed),
        data_dir=args.data_dir,
        device=args.device,
        quick=args.quick,
        way=args.way,
        out=Path(args.out) if args.out else None,
        threads=None if args.threads == "auto" else args.threads,
    )
    try:
        run_experiment(EXPERIMENTS[args.name], options)
    except InvalidValue as e:
        raise (e.at("--threads") if e.owner == "experiment.threads" else e) from None
    return 0
