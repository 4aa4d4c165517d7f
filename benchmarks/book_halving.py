"""The book's search, tuned the course's way at a fixed budget: coarse to fine with successive
halving (examples/book_halving.toml) against the book's 100 random trials of 50 epochs
(examples/book.toml), both as ``caviar tune``, seed by seed, in the same run.

Printed per seed and side: the best validation accuracy (the last epoch's, the book's ranking),
the model-epochs trained, and the wall time; then the medians, and whether the halving example
reaches a median best validation accuracy of at least 0.85 in no more model-epochs than the
book's 100 x 50 and in at most half its wall time.

    python benchmarks/book_halving.py --data-dir ../shared/datasets/mnist --seeds 8
    python benchmarks/book_halving.py --seeds 1 --epochs 4     # the smallest mode: it runs
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import tomllib
from pathlib import Path

import torch

import caviar

ROOT = Path(__file__).resolve().parents[1]


def run(
    config: Path, seed: int, data_dir: str, threads: int, epochs: int | None
) -> tuple[float, int, float]:
    """Best validation accuracy, model-epochs and wall seconds of one study (``epochs``: each
    trial's, in place of the config's 50)."""
    with open(config, "rb") as f:
        mapping = tomllib.load(f)
    if epochs is not None:
        mapping["space"]["epochs"] = epochs
    folder = tempfile.mkdtemp(prefix="caviar-book-")
    mapping["study"].update(seed=seed, storage=os.path.join(folder, "s.db"), threads=threads)
    mapping["data"]["data_dir"] = data_dir
    started = time.perf_counter()
    study = caviar.tune(mapping, progress=False, report=False)
    seconds = time.perf_counter() - started
    best = study.best_trial
    epochs = sum(len(t.curve) for t in study.trials())
    study.close()
    return (best.value or 0.0) if best else 0.0, epochs, seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "datasets" / "mnist"))
    ap.add_argument("--seeds", type=int, default=8)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--epochs", type=int, help="epochs per trial (default: the configs' 50)")
    args = ap.parse_args()
    sides = {
        "book (100 random trials x 50 epochs)": ROOT / "examples" / "book.toml",
        "coarse to fine + halving": ROOT / "examples" / "book_halving.toml",
    }
    print(
        f"CPU threads {args.threads}; torch {torch.__version__}; one run per seed and side\n"
        f"| seed | side | best val acc | model-epochs | wall s |\n|---:|---|---:|---:|---:|"
    )
    results: dict[str, list[tuple[float, int, float]]] = {name: [] for name in sides}
    for seed in range(args.seeds):
        for name, path in sides.items():
            best, epochs, seconds = run(path, seed, args.data_dir, args.threads, args.epochs)
            results[name].append((best, epochs, seconds))
            print(f"| {seed} | {name} | {best:.2f} | {epochs} | {seconds:.1f} |", flush=True)
    print("\n| side | median best val acc | median model-epochs | median wall s |")
    print("|---|---:|---:|---:|")
    medians = {}
    for name, rows in results.items():
        medians[name] = tuple(statistics.median(r[i] for r in rows) for i in range(3))
        best, epochs, seconds = medians[name]
        print(f"| {name} | {best:.3f} | {epochs:.0f} | {seconds:.1f} |")
    (book_best, b_epochs, b_wall), (h_best, h_epochs, h_wall) = medians.values()
    print(
        f"\nhalving example: median best {h_best:.3f} (target >= 0.85; the book's search "
        f"{book_best:.3f}), model-epochs "
        f"{h_epochs:.0f} vs the book's {b_epochs:.0f} (target: no more), wall "
        f"{h_wall / b_wall:.2f} of the book's (target <= 0.5)"
    )


if __name__ == "__main__":
    main()
