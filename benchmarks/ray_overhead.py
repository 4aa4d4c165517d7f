"""What spreading a study over Ray workers costs: the same study in one process and on Ray
workers, measured in the same run, on this machine.

The workload is the budget benchmark's (benchmarks/budget.py): 784-[hidden_units x n_layers]-10
with batch norm, dropout and Adam, batch 128, hidden_units 32..256, n_layers 1..4, on the first
--train-size MNIST images (20 % held out), float32, a pool of --population members in all. A
fixed trial count (no time budget), so every side does the same work: the same trials, the same
epochs (float results equal across sides at equal thread counts).

Sides:
  1 process, 1 thread       the reference for the Ray worker's share of the machine
  Ray, 1 worker x 1 thread  the same compute through Ray: the difference is Ray's overhead
  1 process, N threads      what a user runs on this machine without Ray (N = its cores)
  Ray, N workers x 1 thread the pool split over N workers

Ray's time is split into starting the workers (processes, imports, the data in the object
store) and the rounds; a local Ray cluster is started once, untimed, before the Ray sides.
--repeat runs per side, interleaved (the median is shown), after an untimed warm-up study.

    python benchmarks/ray_overhead.py --data-dir ../shared/datasets/mnist
    python benchmarks/ray_overhead.py --dataset digits --trials 16   # no MNIST at hand
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from budget import FIXED, SPACE  # the budget benchmark's workload, as the docstring says

import caviar.search.job
from caviar.core.threads import machine_cores


def config(args: argparse.Namespace, folder: str, name: str, **search: Any) -> dict[str, Any]:
    threads = search.pop("threads")
    return {
        "study": {"name": name, "storage": f"{folder}/{name}.db", "threads": threads},
        "data": {
            "dataset": args.dataset,
            "data_dir": args.data_dir if args.dataset == "mnist" else None,
            "train_size": args.train_size,
        },
        "space": {**FIXED, **SPACE, "epochs": args.epochs},
        "search": {
            "trials": args.trials,
            "population": args.population,
            "keep_models": 0,
            **search,
        },
    }


def side(raw: dict[str, Any]) -> tuple[float, float, list[Any]]:
    """Seconds in all, seconds starting workers, and the trials."""
    started: list[float] = []
    real = caviar.search.job.open_spread

    def timed(*a: Any, **k: Any) -> Any:
        t = time.perf_counter()
        try:
            return real(*a, **k)
        finally:
            started.append(time.perf_counter() - t)

    caviar.search.job.open_spread = timed  # type: ignore[assignment]
    try:
        t = time.perf_counter()
        trials = caviar.search.job.tune(raw, progress=False, report=False).trials()
        return time.perf_counter() - t, sum(started), trials
    finally:
        caviar.search.job.open_spread = real  # type: ignore[assignment]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dataset", default="mnist")
    ap.add_argument(
        "--data-dir", default=str(Path(__file__).parents[1] / "../shared/datasets/mnist")
    )
    ap.add_argument("--train-size", type=int, default=6000)
    ap.add_argument("--trials", type=int, default=32)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--population", type=int, default=8)
    ap.add_argument("--workers", type=int, default=machine_cores())
    ap.add_argument("--repeat", type=int, default=3, help="runs per side (interleaved); median")
    args = ap.parse_args()

    import ray

    n = args.workers
    print(
        f"{platform.processor() or platform.machine()}, {machine_cores()} cores, torch "
        f"{torch.__version__}, ray {ray.__version__}; {args.trials} trials x {args.epochs} "
        f"epochs, pool {args.population}, {args.dataset} train_size {args.train_size}"
    )
    with tempfile.TemporaryDirectory() as folder:
        warm = {**vars(args), "trials": 2, "epochs": 1}
        caviar.search.job.tune(
            config(argparse.Namespace(**warm), folder, "warm", threads=1), progress=False
        )
        ray.init(num_cpus=n, include_dashboard=False, logging_level="error", log_to_driver=False)
        sides = {
            "1 process, 1 thread": {"threads": 1},
            "Ray, 1 worker x 1 thread": {"threads": 1, "devices": ["cpu"]},
            f"1 process, {n} threads": {"threads": n},
            f"Ray, {n} workers x 1 thread": {"threads": 1, "devices": ["cpu"] * n},
        }
        runs: dict[str, list[tuple[float, float, list[Any]]]] = {k: [] for k in sides}
        for r in range(args.repeat):  # interleaved: a busy spell hits every side alike
            for i, (label, search) in enumerate(sides.items()):
                runs[label].append(side(config(args, folder, f"s{i}r{r}", **search)))
        ray.shutdown()
    rows = {k: sorted(v, key=lambda run: run[0])[len(v) // 2] for k, v in runs.items()}
    values = {k: [(t.number, t.value) for t in v[2]] for k, v in rows.items()}
    same = values["1 process, 1 thread"] == values[f"Ray, {n} workers x 1 thread"]
    model_epochs = sum(len(t.curve) for t in rows["1 process, 1 thread"][2])
    print(f"median of {args.repeat} runs per side; seconds of every run in brackets")
    print(f"{'side':28} {'seconds':>8} {'start':>6} {'model-epochs/s':>15}")
    for label, (seconds, start, _) in rows.items():
        every = ", ".join(f"{run[0]:.2f}" for run in runs[label])
        print(f"{label:28} {seconds:8.2f} {start:6.2f} {model_epochs / seconds:15.1f}  [{every}]")
    one, ray1 = rows["1 process, 1 thread"][0], rows["Ray, 1 worker x 1 thread"][0]
    start1 = rows["Ray, 1 worker x 1 thread"][1]
    local_n, ray_n = rows[f"1 process, {n} threads"][0], rows[f"Ray, {n} workers x 1 thread"][0]
    start_n = rows[f"Ray, {n} workers x 1 thread"][1]
    print(
        f"Ray's overhead at equal compute: {ray1 / one:.3f}x the time, "
        f"{(ray1 - one) / args.trials * 1000:+.0f} ms per trial "
        f"({start1:.2f} s of it starting the worker; "
        f"{(ray1 - start1 - one) / args.trials * 1000:+.0f} ms per trial in the rounds); "
        f"values of 1 process x 1 thread and {n} Ray workers equal: {same}"
    )
    print(
        f"{n} Ray workers against 1 process with {n} threads: {ray_n / local_n:.3f}x the time "
        f"({(ray_n - local_n) / args.trials * 1000:+.0f} ms per trial; without the "
        f"{start_n:.2f} s start: {(ray_n - start_n) / local_n:.3f}x); "
        f"against 1 process x 1 thread: {one / ray_n:.2f}x the speed"
    )
    print(f"(pid {os.getpid()}; one run per side)")


if __name__ == "__main__":
    main()
