"""The same configurations trained by caviar and by the per-model loop the quality benchmarks
give Optuna: is a gap between the sides the search's, or the networks'?

benchmarks/quality.py compares searches by the test accuracy of each side's best model. That
says something about the searches only if both sides train a configuration equally well. Here
each configuration of budget.py's space is trained for its 5 epochs with a few seeds, by
``caviar.tune`` (a fixed space, one trial per seed, in one pool) and by budget.py's loop
(``nn.Sequential`` + ``torch.optim.Adam``), on the split caviar makes; the table gives each
side's validation accuracy per seed and the mean. The configurations: the best Optuna's TPE found
in quality.py on Fashion-MNIST (seed 0), a middling one, a small one; or your own (--config).

    python benchmarks/same_config.py --dataset fashion-mnist --seeds 3
    python benchmarks/same_config.py --config '{"hidden_units": 128, "n_layers": 2, \\
        "dropout": 0.2, "lr": 0.001, "beta1": 0.9, "weight_decay": 1e-5}'
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path
from typing import Any

import torch
from budget import FIXED, machine, train_trial
from quality import load, study_mapping

import caviar

ROOT = Path(__file__).resolve().parents[1]
CONFIGS: list[dict[str, Any]] = [
    {  # Optuna TPE's best in quality.py, Fashion-MNIST, seed 0
        "hidden_units": 242,
        "n_layers": 3,
        "dropout": 0.00821,
        "lr": 0.00033,
        "beta1": 1 - 0.01854,
        "weight_decay": 0.0006,
    },
    {
        "hidden_units": 150,
        "n_layers": 2,
        "dropout": 0.1,
        "lr": 0.001,
        "beta1": 0.9,
        "weight_decay": 1e-5,
    },
    {
        "hidden_units": 64,
        "n_layers": 1,
        "dropout": 0.3,
        "lr": 0.003,
        "beta1": 0.95,
        "weight_decay": 1e-6,
    },
]


def with_caviar(args: argparse.Namespace, config: dict[str, Any]) -> list[float]:
    """Last-epoch validation accuracy of ``config`` for seeds 0 .. seeds-1 of the study."""
    search = {"trials": args.seeds, "sampler": "random", "population": args.seeds}
    with tempfile.TemporaryDirectory() as folder:
        mapping = study_mapping(args, "same", Path(folder), {**FIXED, **config}, search)
        study = caviar.tune(mapping, progress=False, report=False)
        try:
            return [t.curve[-1].val_accuracy for t in study.trials(curves=True)]
        finally:
            study.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--dataset", default="fashion-mnist", choices=["mnist", "fashion-mnist"])
    ap.add_argument("--data-dir", help="folder with the IDX .gz files (default: ../shared/...)")
    ap.add_argument("--seeds", type=int, default=3, help="trainings per configuration and side")
    ap.add_argument("--seed", type=int, default=0, help="the split's seed (and caviar's study)")
    ap.add_argument("--threads", type=int, default=1, help="CPU threads, both sides")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--train-size", type=int, default=None, help="first N training images")
    ap.add_argument("--config", action="append", help="a configuration as JSON (repeatable)")
    args = ap.parse_args()
    if args.seeds < 1:
        ap.error(f"--seeds must be >= 1, got {args.seeds}")
    args.data_dir = args.data_dir or str(ROOT.parent / "shared" / "datasets" / args.dataset)
    args.test_size = None
    torch.set_num_threads(args.threads)
    configs = [json.loads(c) for c in args.config] if args.config else CONFIGS
    device = torch.device(args.device)
    data = load(args, device)
    print(f"# The same configurations, caviar and the loop: {args.dataset}, {args.seeds} seeds")
    print(f"\n- machine: {machine(device)}; torch {torch.__version__}; float32\n")
    print("| configuration | side | val acc per seed | mean |")
    print("|---|---|---|---:|")
    for config in configs:
        loop = [train_trial(config, data, float("inf"), s).val for s in range(args.seeds)]
        ours = with_caviar(args, config)
        text = ", ".join(
            f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in config.items()
        )
        for side, values in (("caviar", ours), ("loop", loop)):
            per_seed = ", ".join(f"{v:.4f}" for v in values)
            print(f"| {text} | {side} | {per_seed} | {statistics.mean(values):.4f} |", flush=True)


if __name__ == "__main__":
    main()
