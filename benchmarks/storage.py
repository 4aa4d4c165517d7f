"""Study-store throughput: trials x epochs written per second, SQLite against the in-memory store.

The tune loop writes one transaction per population epoch holding every member's learning-curve
point, and one per finished trial. This measures exactly that pattern, plus the baseline of one
transaction per point (what a naive per-trial logger does), in the same run.

    python benchmarks/storage.py --trials 1000 --epochs 50
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from caviar import InMemoryStorage, LogUniform, SearchSpace, SQLiteStorage, Study
from caviar.study import EpochRecord


def run(storage: object, trials: int, epochs: int, batched: bool) -> tuple[float, float]:
    """Seconds to record the curves, and seconds to tell every trial."""
    study = Study.create("bench", SearchSpace({"lr": LogUniform(1e-4, 1.0)}), storage=storage)
    asked = study.ask(trials)
    started = time.perf_counter()
    for epoch in range(1, epochs + 1):
        rows = [(t, EpochRecord(epoch, 0.5, 0.5, 0.5, 0.5)) for t in asked]
        if batched:
            study.report_epochs(rows)
        else:
            for row in rows:
                study.report_epochs([row])
    curves = time.perf_counter() - started
    started = time.perf_counter()
    for t in asked:
        study.tell(t, 0.5)
    tells = time.perf_counter() - started
    study.close()
    return curves, tells


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--trials", type=int, default=1000)
    ap.add_argument("--epochs", type=int, default=50)
    ap.add_argument(
        "--unbatched-epochs",
        type=int,
        default=3,
        help="epochs for the one-transaction-per-point baseline (it is slow)",
    )
    args = ap.parse_args()
    points = args.trials * args.epochs
    print(f"{args.trials} trials x {args.epochs} epochs = {points} learning-curve points")
    with tempfile.TemporaryDirectory() as folder:
        db = Path(folder) / "bench.db"
        curves, tells = run(SQLiteStorage(db), args.trials, args.epochs, batched=True)
        print(
            f"SQLite, one transaction per epoch: {points / curves:,.0f} points/s; "
            f"{args.trials / tells:,.0f} tells/s; file {db.stat().st_size / 2**20:.1f} MiB"
        )
        base, _ = run(
            SQLiteStorage(Path(folder) / "naive.db"),
            args.trials,
            args.unbatched_epochs,
            batched=False,
        )
        naive = args.trials * args.unbatched_epochs / base
        print(
            f"SQLite, one transaction per point (baseline): {naive:,.0f} points/s "
            f"-> batching is {points / curves / naive:.0f}x faster"
        )
    curves, tells = run(InMemoryStorage(), args.trials, args.epochs, batched=True)
    print(f"in memory: {points / curves:,.0f} points/s; {args.trials / tells:,.0f} tells/s")


if __name__ == "__main__":
    main()
