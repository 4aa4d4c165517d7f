"""Your own module as a population (caviar.own.pool.ModulePool) against the per-model PyTorch
loop, measured in the same run: model-epochs per second, and how far apart the two sides' results
are.

Three modules a user might write, each at P = 8, 16, 32 members (a GPU: --sizes 256):

- ``cnn``: Unflatten -> Conv2d(1, 8, 3) -> ReLU -> MaxPool 2 -> Conv2d(8, 16, 3) -> ReLU ->
  MaxPool 2 -> Linear(16*7*7, 10), on MNIST's 28x28 images;
- ``mlp``: 784-256-256-10 with ReLU, on MNIST;
- ``tabular``: examples/own_mlp_csv.py's MLP, 30-64-64-2 with ReLU, on a tabular problem of
  the breast-cancer CSV's width (scikit-learn's make_classification, as many rows);
- ``realistic`` (by name only): the search users run, every member its own width (32 to 256),
  depth (1 to 3) and dropout (0 to 0.5) on MNIST, so the pool holds many groups; the loop
  trains each alone with torch's own dropout (other masks: its accuracies differ a little).

Every member has the same architecture, grouped as the pool groups them (on a CPU, as many as
keep a mini-batch's activations within 32 MB: the CNN in groups of 8, the MLPs in one); each has
its own Adam learning rate and beta1; batch 64, no dropout. The loop trains each member alone,
as a user writes it: a copy of the same initial module, ``torch.optim.Adam`` (torch's defaults),
the same examples in the same order and the same mini-batches, then the same validation pass in
eval mode. Both sides include the validation pass in their time. Same hyperparameters, same
start, same batches: the two sides' validation accuracies should agree up to float rounding
(printed as max |val acc difference| over the members both sides trained).

Figures: model-epochs/s (members x epochs / seconds); the loop's is the mean over its
``--baseline-models`` members (its time does not depend on P), and each P is compared with the
loop over its own first min(P, baseline-models) members. Each P is timed --repeats times, each
right after the loop is timed again (a shared machine's speed drifts): the median ratio and its
range.

    python benchmarks/own_model.py                       # MNIST beside the checkout, this CPU
    python benchmarks/own_model.py --workload mlp --threads 1
    python benchmarks/own_model.py --device cuda --workload cnn --sizes 256 --examples 12000
    python benchmarks/own_model.py --workload realistic --epochs 2 --sizes 16,1024 \
        --baseline-models 16 --repeats 1                 # the search users run, at pool sizes
    python benchmarks/own_model.py --check               # tiny sizes: the script is sound (CI)
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from caviar.nn import resolve_device
from caviar.nn.randomness import batch_bounds, epoch_order
from caviar.own.data import ModuleData
from caviar.own.pool import ModulePool, ModuleSpec
from caviar.own.space import MemberSettings

ROOT = Path(__file__).resolve().parents[1]
#: the checked MNIST files beside the checkout, read when --data-dir is not given
SHARED_MNIST = ROOT.parent / "shared" / "datasets" / "mnist"
BATCH = 64
DATA_SEED = 0


def cnn() -> nn.Module:
    return nn.Sequential(
        nn.Unflatten(1, (1, 28, 28)),
        nn.Conv2d(1, 8, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),  # (B, 8, 14, 14)
        nn.Conv2d(8, 16, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),  # (B, 16, 7, 7)
        nn.Flatten(),
        nn.Linear(16 * 7 * 7, 10),
    )


def mlp() -> nn.Module:
    return nn.Sequential(
        nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10)
    )


def tabular() -> nn.Module:
    """examples/own_mlp_csv.py's MLP at width 64, depth 2 (no dropout: torch's masks are not
    the population's), on 30 standardised features and 2 classes."""
    return nn.Sequential(
        nn.Linear(TABULAR_FEATURES, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 2)
    )


def realistic_architecture(i: int) -> tuple[int, int, float]:
    """Member i's (width, depth, dropout) in the realistic workload: a search over widths
    {32, 64, 128, 256}, depths 1 to 3 and dropout in [0, 0.5], as users run it."""
    rng = np.random.default_rng(2000 + i)
    width = int(rng.choice([32, 64, 128, 256]))
    return width, int(rng.integers(1, 4)), float(rng.uniform(0.0, 0.5))


def realistic(i: int) -> nn.Module:
    """Member i of a realistic search: its own width, depth and dropout (ReLU, MNIST)."""
    width, depth, dropout = realistic_architecture(i)
    layers: list[nn.Module] = []
    fan_in = 784
    for _ in range(depth):
        layers += [nn.Linear(fan_in, width), nn.ReLU(), nn.Dropout(dropout)]
        fan_in = width
    return nn.Sequential(*layers, nn.Linear(fan_in, 10))


#: each workload's member i (the same architecture for every i, but for ``realistic``)
WORKLOADS: dict[str, Callable[[int], nn.Module]] = {
    "cnn": lambda _: cnn(),
    "mlp": lambda _: mlp(),
    "tabular": lambda _: tabular(),
    "realistic": realistic,
}
#: the tabular workload's features (scikit-learn's breast-cancer CSV has 30)
TABULAR_FEATURES = 30


@dataclass(frozen=True)
class Data:
    x_train: torch.Tensor  # (N, 784) float32 in [0, 1]
    y_train: torch.Tensor  # (N,) int64
    x_val: torch.Tensor
    y_val: torch.Tensor
    source: str


def load(data_dir: str | None, examples: int, validation: int, device: torch.device) -> Data:
    """The first ``examples`` training images of MNIST and the next ``validation`` for
    validation; synthetic (random pixels and labels) without MNIST."""
    folder = data_dir or (str(SHARED_MNIST) if SHARED_MNIST.is_dir() else None)
    if folder:
        from caviar.data import load_dataset  # deferred: only with MNIST

        ds = load_dataset("mnist", data_dir=folder, download=False)
        x, y, source = ds.x_train, ds.y_train, "MNIST"
    else:
        rng = np.random.default_rng(0)
        x = rng.random((examples + validation, 784), dtype=np.float32)
        y = rng.integers(0, 10, examples + validation)
        source = "synthetic"
    n = examples + validation

    def t(a: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
        return torch.as_tensor(np.ascontiguousarray(a)).to(device=device, dtype=dtype)

    x_all, y_all = t(x[:n], torch.float32), t(y[:n], torch.int64)
    return Data(x_all[:examples], y_all[:examples], x_all[examples:], y_all[examples:], source)


def load_tabular(examples: int, validation: int, device: torch.device) -> Data:
    """A tabular problem of the breast-cancer CSV's width, as large as the image one:
    scikit-learn's make_classification (30 features, 12 informative, 2 classes), standardised
    on the training rows."""
    from sklearn.datasets import make_classification  # deferred: only for this workload

    x, y = make_classification(
        n_samples=examples + validation,
        n_features=TABULAR_FEATURES,
        n_informative=12,
        n_classes=2,
        random_state=0,
    )
    mean, std = x[:examples].mean(axis=0), x[:examples].std(axis=0)
    x = (x - mean) / std
    xt = torch.as_tensor(x, dtype=torch.float32, device=device)
    yt = torch.as_tensor(y, dtype=torch.int64, device=device)
    return Data(xt[:examples], yt[:examples], xt[examples:], yt[examples:], "make_classification")


def hyperparameters(i: int) -> dict[str, float]:
    """Member i's Adam settings: lr log-uniform on [3e-4, 3e-3], beta1 on [0.8, 0.95]."""
    rng = np.random.default_rng(1000 + i)
    return {
        "lr": float(10 ** rng.uniform(math.log10(3e-4), math.log10(3e-3))),
        "beta1": float(rng.uniform(0.8, 0.95)),
    }


def initial(workload: str, i: int, device: torch.device) -> nn.Module:
    """Member i's module with its own initial weights (the same on both sides)."""
    torch.manual_seed(i)
    return WORKLOADS[workload](i).to(device)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def cross_entropy(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return nn.functional.cross_entropy(output, target)


def run_pool(workload: str, p: int, data: Data, epochs: int) -> tuple[float, list[float]]:
    """Seconds for P members' ``epochs`` epochs in a ModulePool, and each member's last
    validation accuracy."""
    device = data.x_train.device
    classes = int(data.y_train.max()) + 1
    module_data = ModuleData(data.x_train, data.y_train, data.x_val, data.y_val, classes)
    pool = ModulePool(module_data, loss=cross_entropy, data_seed=DATA_SEED)
    for i in range(p):
        params = {**hyperparameters(i), "epochs": epochs, "batch_size": BATCH}
        member = MemberSettings.from_params(params)
        module = initial(workload, i, device)
        spec = ModuleSpec(
            i, epochs, BATCH, member.optimizer, member.settings, module, member.builder
        )
        pool.add(i, spec)
    accuracy = [math.nan] * p
    sync(device)
    started = time.perf_counter()
    while len(pool):
        for e in pool.step().epochs:
            accuracy[e.key] = e.record.val_accuracy
    sync(device)
    return time.perf_counter() - started, accuracy


def run_alone(workload: str, i: int, data: Data, epochs: int) -> tuple[float, float]:
    """Seconds for member i trained alone (nn.Module + torch.optim.Adam, the same batches in
    the same order, a validation pass after each epoch), and its last validation accuracy."""
    device = data.x_train.device
    model = copy.deepcopy(initial(workload, i, device))
    h = hyperparameters(i)
    opt = torch.optim.Adam(model.parameters(), lr=h["lr"], betas=(h["beta1"], 0.999))
    n = len(data.y_train)
    accuracy = math.nan
    sync(device)
    started = time.perf_counter()
    for epoch in range(epochs):
        order = epoch_order(DATA_SEED, epoch, n).to(device)
        model.train()
        for start, stop in batch_bounds(n, BATCH):
            index = order[start:stop]
            loss = cross_entropy(model(data.x_train[index]), data.y_train[index])
            opt.zero_grad()
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            accuracy = float((model(data.x_val).argmax(1) == data.y_val).float().mean())
    sync(device)
    return time.perf_counter() - started, accuracy


def measure(args: argparse.Namespace, workload: str, data: Data) -> list[dict[str, float]]:
    """One workload's table; its rows for --json.

    A shared machine's speed drifts by 2x within a minute (measured here: the same loop at 5.7
    and 10.2 model-epochs/s a minute apart), so each P is timed ``--repeats`` times, each
    right after the loop's members are timed again: a ratio compares two runs seconds apart,
    and the table gives the median ratio and its range."""
    sizes = [int(s) for s in args.sizes.split(",")]
    count = min(args.baseline_models, max(sizes))
    tiny = Data(data.x_train[:256], data.y_train[:256], data.x_val[:64], data.y_val[:64], "")
    run_pool(workload, 2, tiny, 1)  # warm-up of both sides: kernels, allocator, BLAS threads
    run_alone(workload, 0, tiny, 1)
    n_params = sum(t.numel() for t in WORKLOADS[workload](0).parameters())
    print(
        f"\n{workload}: {n_params} parameters, batch {BATCH}, Adam, {args.epochs} epoch(s) of "
        f"{len(data.y_train)} + validation on {len(data.y_val)}\n"
        f"loop: members 0..{count - 1} alone; {args.repeats} timed runs a side, each P right "
        "after the loop"
    )
    print(
        f"{'P':>5} {'model-epochs/s':>15} {'loop':>8} {'ratio':>7} {'(range)':>13} "
        f"{'max |val acc diff|':>19}"
    )
    rows = []
    for p in sizes:
        rates, loops, ratios = [], [], []
        diff = 0.0
        for _ in range(args.repeats):
            alone = [run_alone(workload, i, data, args.epochs) for i in range(count)]
            loop_rate = statistics.mean(args.epochs / seconds for seconds, _ in alone)
            if args.cuda:
                torch.cuda.reset_peak_memory_stats()
            seconds, accuracy = run_pool(workload, p, data, args.epochs)
            rate = p * args.epochs / seconds
            rates.append(rate)
            loops.append(loop_rate)
            ratios.append(rate / loop_rate)
            both = min(p, count)
            diff = max(diff, *(abs(accuracy[i] - alone[i][1]) for i in range(both)))
        rate, loop_rate, ratio = (statistics.median(v) for v in (rates, loops, ratios))
        spread = f"({min(ratios):.2f}-{max(ratios):.2f})"
        print(f"{p:>5} {rate:>15.2f} {loop_rate:>8.2f} {ratio:>6.2f}x {spread:>13} {diff:>19.4f}")
        rows.append(
            {
                "P": p,
                "ms": 1e3 / rate,
                "loop_ms": 1e3 / loop_rate,
                "speedup": ratio,
                "peak_gib": torch.cuda.max_memory_allocated() / 2**30 if args.cuda else 0.0,
                "max_val_acc_diff": diff,
            }
        )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--workload", choices=[*WORKLOADS, "all"], default="all")
    ap.add_argument(
        "--data-dir", help=f"MNIST's IDX .gz files (default: {SHARED_MNIST}, else synthetic)"
    )
    ap.add_argument("--examples", type=int, default=None, help="training examples (CPU: 4000)")
    ap.add_argument("--validation", type=int, default=1000, help="validation examples")
    ap.add_argument("--epochs", type=int, default=1, help="epochs each member trains")
    ap.add_argument("--sizes", default=None, help="population sizes (CPU: 8,16,32; GPU: 256)")
    ap.add_argument("--baseline-models", type=int, default=4, help="models timed in the loop")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs a side, for each P")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, help="torch's CPU threads (default: torch's own)")
    ap.add_argument("--json", help="also write the figures to this file as JSON (one workload)")
    ap.add_argument("--check", action="store_true", help="tiny sizes: the script runs (CI)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    args.cuda = device.type == "cuda"
    if args.check:
        args.examples, args.validation, args.sizes, args.baseline_models = 256, 64, "2,3", 2
        args.repeats = 1
    args.examples = args.examples or (12000 if args.cuda else 4000)
    args.sizes = args.sizes or ("256" if args.cuda else "8,16,32")
    data = load(args.data_dir, args.examples, args.validation, device)
    cpu = f"CPU ({os.cpu_count()} cores), torch threads {torch.get_num_threads()}"
    name = torch.cuda.get_device_name(device) if args.cuda else cpu
    print(f"device: {name}; torch {torch.__version__}; float32")
    print(
        f"data: {data.source}, {len(data.y_train)} training + {len(data.y_val)} validation examples"
    )
    every = [w for w in WORKLOADS if w != "realistic"]  # realistic: asked for by name
    workloads = every if args.workload == "all" else [args.workload]
    for workload in workloads:
        if workload == "tabular":
            rows = measure(args, workload, load_tabular(args.examples, args.validation, device))
        else:
            rows = measure(args, workload, data)
        if args.json:
            record = {"workload": f"own-{workload}", "device": name, "rows": rows}
            record["loop_ms"] = rows[0]["loop_ms"] if rows else math.nan
            Path(args.json).write_text(json.dumps(record, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
