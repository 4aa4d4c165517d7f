"""Better models at equal time: the test accuracy of each side's best model, over seeds.

Every side gets the same wall-clock budget on the same data (the split caviar makes itself) and
the space of benchmarks/budget.py: 784-[32..256 x 1..4]-10 with batch norm, ReLU, dropout, Adam,
batch 128, 5 epochs; hidden_units, n_layers, dropout, lr (log), beta1 (1 - beta log), weight
decay (log). A side's quality is the test accuracy of the model its search ranks best (by the
last epoch's validation accuracy, among trials that ran all their epochs), measured once after
the budget.

Sides:
  caviar default        caviar.tune as `caviar tune` runs it: the default sampler and schedule
  caviar random         search.sampler = "random", no halving
  caviar tpe            search.sampler = "tpe", no halving
  caviar tpe+halving    search.sampler = "tpe", search.halving (min_epochs 1, eta 3)
  caviar tpe+brackets   the same with Hyperband's brackets: halving.brackets = 3 (rungs at 1
                        and 3, at 3, and none)
  caviar pool 4         caviar's default in a pool of 4 (search.population = 4) instead of the
                        pool caviar sizes (up to 16 on a CPU): fewer trials in flight, so each
                        proposal knows more results and the constant liar pushes less
  optuna tpe            a per-model PyTorch loop (budget.py's) under Optuna's TPE with the
                        median pruner, validation accuracy reported every epoch
  optuna random         the same loop under Optuna's random sampler, no pruner

    python benchmarks/quality.py --dataset fashion-mnist --seeds 5          # 150 s a side
    python benchmarks/quality.py --seconds 20 --seeds 2 --train-size 6000   # a smaller run
    python benchmarks/quality.py --sides "caviar tpe,optuna tpe"            # some sides only

The caviar sides run at the baselines' thread count. One run per side and seed, one after the
other in this process, after an untimed warm-up trial. The summary gives the median over seeds
of each side's test accuracy, best validation accuracy and configurations, and the two verdicts
issue 24 asks for: caviar's default against Optuna's TPE (higher median test accuracy, with at
least 3x the configurations) and against caviar's random search.
"""

from __future__ import annotations

import argparse
import math
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from budget import FIXED, HALVING, SPACE, Data, Row, machine, run_optuna, warm_up

import caviar
from caviar.data import load_dataset, split_validation
from caviar.nn import resolve_device
from caviar.search.halving import resolve as resolve_halving
from caviar.search.sections import SearchSection

ROOT = Path(__file__).resolve().parents[1]

#: each caviar side's [search] keys besides the budget (``None``: caviar's own default)
CAVIAR_SIDES: dict[str, dict[str, Any]] = {
    "caviar default": {},
    "caviar random": {"sampler": "random"},
    "caviar tpe": {"sampler": "tpe", "halving": False},
    "caviar tpe+halving": {"sampler": "tpe", "halving": dict(HALVING)},
    "caviar tpe+brackets": {"sampler": "tpe", "halving": {**HALVING, "brackets": 3}},
    "caviar pool 4": {"population": 4},
}
OPTUNA_SIDES = ("optuna tpe", "optuna random")
SIDES = (*CAVIAR_SIDES, *OPTUNA_SIDES)


def load(args: argparse.Namespace, device: torch.device) -> Data:
    ds = load_dataset(
        args.dataset,
        data_dir=args.data_dir,
        train_size=args.train_size,
        test_size=args.test_size,
    )
    split = split_validation(ds.x_train, ds.y_train, 0.2, seed=args.seed)

    def put(x: np.ndarray, y: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        return (
            torch.as_tensor(x, dtype=torch.float32, device=device),
            torch.as_tensor(y, dtype=torch.int64, device=device),
        )

    return Data(
        *put(split.x_train, split.y_train),
        *put(split.x_val, split.y_val),
        *put(ds.x_test, ds.y_test),
    )


def study_mapping(
    args: argparse.Namespace,
    name: str,
    folder: Path,
    space: dict[str, Any],
    search: dict[str, Any],
) -> dict[str, Any]:
    """``caviar.tune``'s config for a study of ``name`` in ``folder`` on ``args``' data (the
    split quality.py's :func:`load` makes too), at torch's current thread count."""
    return {
        "study": {
            "name": name,
            "storage": str(folder / f"{name}.db"),
            "seed": args.seed,
            "device": args.device,
            "threads": torch.get_num_threads(),
        },
        "data": {
            "dataset": args.dataset,
            "data_dir": args.data_dir,
            "train_size": args.train_size,
            "test_size": args.test_size,
            "validation": 0.2,
        },
        "space": space,
        "search": search,
    }


def run_caviar(args: argparse.Namespace, side: str, folder: Path) -> Row:
    """One caviar side through ``caviar.tune``: its study's best trial, tested once."""
    name = side.replace(" ", "-").replace("+", "-")
    search = {"trials": 100_000, "timeout": args.seconds, **CAVIAR_SIDES[side]}
    mapping = study_mapping(args, name, folder, {**FIXED, **SPACE}, search)
    threads = torch.get_num_threads()
    started = time.perf_counter()
    study = caviar.tune(mapping, progress=False, report=False)
    seconds = time.perf_counter() - started
    try:
        trials = study.trials(curves=False)
        best = study.best_trial
        test = math.nan
        if best is not None:
            test = float(caviar.evaluate_on_test(study, mode="as-trained")["accuracy"])
        sampler = study.sampler.name
        halving = study.attrs["config"]["search"]["halving"]
    finally:
        study.close()
        torch.set_num_threads(threads)  # caviar sets torch's thread count for its run
    tried = sum(t.state.is_finished for t in trials)
    label = f"{side} ({sampler}{', halving' if halving else ''})"
    best_val = math.nan if best is None or best.value is None else float(best.value)
    return Row(label, tried, 0, seconds, best_val, test)


@dataclass(frozen=True)
class SeedRun:
    seed: int
    rows: dict[str, Row]


def run_seed(args: argparse.Namespace, device: torch.device, seed: int) -> SeedRun:
    args = argparse.Namespace(**{**vars(args), "seed": seed})
    data = load(args, device)
    warm_up(data)
    rows: dict[str, Row] = {}
    print(f"\n## seed {seed}\n\n" + "\n".join(table_head()), flush=True)
    with tempfile.TemporaryDirectory() as folder:
        for side in args.sides:
            if side in CAVIAR_SIDES:
                row = run_caviar(args, side, Path(folder))
            else:
                row = run_optuna(
                    data, args.seconds, seed, random=side == "optuna random", side=side
                )
            rows[side] = row
            print(table_row(row), flush=True)
    return SeedRun(seed, rows)


def table_head() -> list[str]:
    return [
        "| side | configurations | wall s | best val acc | test acc of best |",
        "|---|---:|---:|---:|---:|",
    ]


def table_row(r: Row) -> str:
    return f"| {r.side} | {r.configurations} | {r.seconds:.1f} | {r.best_val:.4f} | {r.test:.4f} |"


def summary(runs: list[SeedRun], sides: list[str]) -> list[str]:
    """Medians over seeds per side, and issue 24's two verdicts."""
    median = statistics.median

    def of(side: str, value: Callable[[Row], float]) -> list[float]:
        return [value(run.rows[side]) for run in runs if side in run.rows]

    lines = [
        f"# Over {len(runs)} seeds ({', '.join(str(r.seed) for r in runs)}): medians",
        "",
        "| side | configurations | best val acc | test acc of best | test acc per seed |",
        "|---|---:|---:|---:|---|",
    ]
    for side in sides:
        tests = of(side, lambda r: r.test)
        lines.append(
            f"| {side} | {median(of(side, lambda r: r.configurations)):g} | "
            f"{median(of(side, lambda r: r.best_val)):.4f} | {median(tests):.4f} | "
            f"{', '.join(f'{t:.4f}' for t in tests)} |"
        )
    lines.append("")
    if "caviar default" in sides and "optuna tpe" in sides:
        ours, theirs = of("caviar default", lambda r: r.test), of("optuna tpe", lambda r: r.test)
        ratio = median(of("caviar default", lambda r: r.configurations)) / max(
            median(of("optuna tpe", lambda r: r.configurations)), 1
        )
        met = median(ours) > median(theirs) and ratio >= 3
        lines.append(
            f"- caviar's default against Optuna TPE + median pruner: median test accuracy "
            f"{median(ours):.4f} vs {median(theirs):.4f} ({median(ours) - median(theirs):+.4f}), "
            f"{ratio:.1f}x the configurations; goal (higher, with >= 3x): "
            f"{'met' if met else 'NOT met'}"
        )
    if "caviar default" in sides and "caviar random" in sides:
        ours, plain = of("caviar default", lambda r: r.test), of("caviar random", lambda r: r.test)
        lines.append(
            f"- caviar's default against caviar random: median test accuracy {median(ours):.4f} "
            f"vs {median(plain):.4f} ({median(ours) - median(plain):+.4f}); goal (higher): "
            f"{'met' if median(ours) > median(plain) else 'NOT met'}"
        )
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--dataset", default="fashion-mnist", choices=["mnist", "fashion-mnist"])
    ap.add_argument("--data-dir", help="folder with the IDX .gz files (default: ../shared/...)")
    ap.add_argument("--seconds", type=float, default=150.0, help="budget per side")
    ap.add_argument("--seed", type=int, default=0, help="the first seed")
    ap.add_argument("--seeds", type=int, default=5, help="seeds seed .. seed+N-1")
    ap.add_argument("--train-size", type=int, default=None, help="first N training images")
    ap.add_argument("--test-size", type=int, default=None, help="first N test images")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, help="CPU threads, every side (default: torch's)")
    ap.add_argument(
        "--sides", default=",".join(SIDES), help=f"comma-separated, of: {', '.join(SIDES)}"
    )
    ap.add_argument("--out", type=Path, help="folder for quality.md")
    args = ap.parse_args()

    args.data_dir = args.data_dir or str(ROOT.parent / "shared" / "datasets" / args.dataset)
    args.sides = [s.strip() for s in args.sides.split(",") if s.strip()]
    unknown = sorted(set(args.sides) - set(SIDES))
    if unknown:
        ap.error(f"--sides: unknown {unknown}; known: {list(SIDES)}")
    if args.seeds < 1:
        ap.error(f"--seeds must be >= 1, got {args.seeds}")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    default = SearchSection()
    head = [
        f"# Quality at equal time: {args.seconds:g} s a side, {args.dataset}",
        "",
        f"- machine: {machine(device)}; torch {torch.__version__}; float32",
        f"- caviar's default: sampler {default.sampler!r}, halving {default.halving!r}: here "
        f"{resolve_halving(default.halving, default.sampler, FIXED['epochs'])}",
        f"- data: {f'the first {args.train_size}' if args.train_size else 'all'} training images "
        f"(20 % held out for validation, split by caviar), "
        f"{f'the first {args.test_size}' if args.test_size else 'all'} test images",
    ]
    print("\n".join(head), flush=True)
    runs = [run_seed(args, device, seed) for seed in range(args.seed, args.seed + args.seeds)]
    over = summary(runs, args.sides)
    print("\n" + "\n".join(over), flush=True)
    if args.out is not None:
        text = [*head, ""]
        for run in runs:
            text += [f"## seed {run.seed}", "", *table_head()]
            text += [table_row(row) for row in run.rows.values()] + [""]
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "quality.md").write_text("\n".join([*text, *over]) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
