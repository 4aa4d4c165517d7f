"""A study worker that the SQLite tests run in subprocesses: ask, report epochs, tell.

    python _worker.py DB STUDY fixed --trials 40 --epochs 4 --tag a --ready R --go G
        run exactly --trials trials, one at a time (two of these write at once)
    python _worker.py DB STUDY drain --batch 2 --epochs 5 --sleep 0.03
        re-queue the trials of dead workers, then run until the sampler has no more

The objective is a deterministic function of the configuration, so the test can check every
stored value; epoch e of E reports val_accuracy = value * e / E and train_loss = 1 / e.
"""

import argparse
import sys
import time
from pathlib import Path

from caviar import EpochRecord, Study


def objective(params) -> float:
    return 10.0 * params["x"] + params["k"]


def point(value: float, epoch: int, epochs: int) -> EpochRecord:
    return EpochRecord(epoch, train_loss=1.0 / epoch, val_accuracy=value * epoch / epochs)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("db")
    parser.add_argument("study")
    parser.add_argument("mode", choices=["fixed", "drain"])
    parser.add_argument("--trials", type=int, default=0)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--sleep", type=float, default=0.0)
    parser.add_argument("--tag", default="")
    parser.add_argument("--ready")
    parser.add_argument("--go")
    args = parser.parse_args()

    study = Study.load(args.study, args.db)
    if args.ready:
        Path(args.ready).touch()
    if args.go:
        while not Path(args.go).exists():  # start together with the other writer
            time.sleep(0.001)
    if args.mode == "drain":
        study.recover()

    done = 0
    while args.mode == "drain" or done < args.trials:
        trials = study.ask(args.batch)
        if not trials:
            if args.mode == "fixed":
                print("the sampler ran dry", file=sys.stderr)
                return 3
            break
        values = {t.number: objective(t.params) for t in trials}
        for epoch in range(1, args.epochs + 1):
            if args.batch == 1:
                study.report(trials[0], point(values[trials[0].number], epoch, args.epochs))
            else:
                study.report_epochs(
                    [(t, point(values[t.number], epoch, args.epochs)) for t in trials]
                )
            if args.sleep:
                time.sleep(args.sleep)
        for t in trials:
            study.tell(t, values[t.number], attrs={"worker": args.tag} if args.tag else None)
        done += len(trials)
    study.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
