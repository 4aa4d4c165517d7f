"""Population engine against the plain per-model PyTorch loop, measured in the same run.

Two workloads:

- ``--workload book`` (default): the book's batch-norm net, 784-[100x6]-10 (ReLU, batch norm,
  Adam, batch 100), every member the same shape, one epoch, no evaluation: the friendly case.
  The baseline trains one model at a time with torch.nn + torch.optim (caviar.nn.reference).
- ``--workload realistic``: what a search runs: hidden units int 32..256, layers 1..4, dropout
  0..0.5, Adam + batch norm, batch 128, lr / beta1 / weight decay on their scales, one epoch
  with the training metrics and a validation pass in eval mode, as ``caviar tune`` does. The
  baseline is the loop a user writes: an ``nn.Sequential`` and ``torch.optim.Adam`` per trial,
  the same epoch and validation pass. Prints executed / useful matrix-product FLOPs (the FLOPs
  of the products the engine calls, from its layout, over those of the members' own shapes).

    python benchmarks/population.py                           # synthetic data, sizes for the CPU
    python benchmarks/population.py --data ../shared/datasets/mnist --sizes 1,16,64,256,1024,4096
    python benchmarks/population.py --workload realistic --data ../shared/datasets/mnist

Printed per P: chunks, ms per model-epoch (mean and std over --repeats runs, scaled to 60000
examples when fewer are used),
effective TFLOP/s, bytes per member (the engine's estimate, and the measured CUDA peak), and the
speed-up over the per-model loop.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time

import numpy as np
import torch
from torch import nn

from caviar.nn import MemberSpec, Pool, Population, TrainingData, resolve_device
from caviar.nn.memory import bytes_per_member, n_parameters
from caviar.nn.ragged import Ragged
from caviar.nn.reference import train_reference

D, H, L, C = 784, 100, 6, 10


def load(path: str | None, examples: int, validation: int = 0) -> TrainingData:
    """``examples`` training and ``validation`` validation examples (MNIST or synthetic)."""
    if path:
        from caviar.data import load_dataset

        ds = load_dataset("mnist", data_dir=path)
        x, y = ds.x_train, ds.y_train
    else:
        rng = np.random.default_rng(0)
        x = rng.random((examples + validation, D), dtype=np.float32)
        y = rng.integers(0, C, examples + validation)
    xv = x[examples : examples + validation] if validation else None
    yv = y[examples : examples + validation] if validation else None
    return TrainingData.from_arrays(x[:examples], y[:examples], xv, yv, n_classes=C)


def spec(seed: int) -> MemberSpec:
    rng = np.random.default_rng(seed)
    return MemberSpec(
        seed=seed,
        hidden_units=H,
        n_layers=L,
        batch_norm=True,
        optimizer="adam",
        lr=float(10 ** rng.uniform(-4, -2)),
        batch_size=100,
        epochs=1,
    )


def realistic_spec(seed: int) -> MemberSpec:
    """A draw from the realistic space of issue 11 (each hyperparameter on its own scale)."""
    rng = np.random.default_rng(seed)
    return MemberSpec(
        seed=seed,
        hidden_units=int(rng.integers(32, 257)),
        n_layers=int(rng.integers(1, 5)),
        dropout=float(rng.uniform(0.0, 0.5)),
        lr=float(10 ** rng.uniform(-4, math.log10(0.3))),
        beta1=float(1 - 10 ** rng.uniform(math.log10(0.01), math.log10(0.2))),
        weight_decay=float(10 ** rng.uniform(-7, -3)),
        batch_norm=True,
        optimizer="adam",
        batch_size=128,
        epochs=1,
    )


def product_flops(n: int, widths: list[int], depths: list[int]) -> float:
    """Matrix-product FLOPs of one epoch over ``n`` examples for members of these shapes:
    forward 2*n*W, backward 4*n*W, less layer 0's input gradient (never needed)."""
    total = 0.0
    for h, depth in zip(widths, depths, strict=True):
        weights = D * h + (depth - 1) * h * h + h * C
        total += n * (6 * weights - 2 * D * h)
    return total


def executed_flops(n: int, specs: list[MemberSpec]) -> float:
    """The same count for the products the engine calls, read from the group layouts the pool
    builds (their matrices' shapes), not from the specs."""
    pool = Pool(load(None, 4), device=torch.device("cpu"))
    for i, s in enumerate(specs):
        pool.add(i, s)
    total = 0.0
    for keys in pool.partition():
        members = [specs[k] for k in keys]
        layout = Ragged(
            [m.hidden_units for m in members], D, C, [m.n_layers for m in members], True
        )
        buffer = torch.empty(layout.n_weights)
        for mats in layout.weight_views(buffer):
            fwd = sum(w.shape[0] * w.shape[1] for w in mats)
            total += n * (6 * fwd - 2 * mats[0].shape[0] * mats[0].shape[1])
    return total


def flops_per_model_epoch(n: int) -> float:
    return product_flops(n, [H], [L])


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_population(
    specs: list[MemberSpec],
    data: TrainingData,
    device: torch.device,
    dtype: torch.dtype,
    **kwargs: object,
) -> tuple[float, int]:
    population = Population(specs, device=device, dtype=dtype, **kwargs)  # type: ignore[arg-type]
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    sync(device)
    started = time.perf_counter()
    population.fit(data)
    sync(device)
    peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else 0
    return time.perf_counter() - started, peak


def loop_epoch(s: MemberSpec, data: TrainingData, device: torch.device) -> float:
    """One trial of the plain loop a user writes: nn.Sequential + torch.optim.Adam, an epoch,
    training metrics from the batches, a validation pass in eval mode. Seconds."""
    layers: list[nn.Module] = []
    width = D
    for _ in range(s.n_layers):
        layers += [
            nn.Linear(width, s.hidden_units, bias=False),
            nn.BatchNorm1d(s.hidden_units),
            nn.ReLU(),
            nn.Dropout(s.dropout),
        ]
        width = s.hidden_units
    model = nn.Sequential(*layers, nn.Linear(width, C)).to(device)
    opt = torch.optim.Adam(
        model.parameters(), lr=s.lr, betas=(s.beta1, s.beta2), weight_decay=s.weight_decay
    )
    x, y = data.x_train.to(device, torch.float32), data.y_train.to(device)
    xv, yv = data.x_val.to(device, torch.float32), data.y_val.to(device)  # type: ignore[union-attr]
    sync(device)
    started = time.perf_counter()
    order = torch.randperm(len(y), device=device)
    model.train()
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.int64)
    for lo in range(0, len(y) - 1, s.batch_size):
        index = order[lo : lo + s.batch_size]
        logits = model(x[index])
        loss = nn.functional.cross_entropy(logits, y[index])
        opt.zero_grad()
        loss.backward()
        opt.step()
        loss_sum += loss.detach() * len(index)
        correct += (logits.argmax(1) == y[index]).sum()
    model.eval()
    with torch.no_grad():
        (model(xv).argmax(1) == yv).float().mean().item()
    sync(device)
    return time.perf_counter() - started


def realistic(args: argparse.Namespace, device: torch.device, dtype: torch.dtype) -> None:
    gpu = device.type == "cuda"
    examples = args.examples or (48000 if gpu else 12000)
    validation = examples // 4
    data = load(args.data, examples, validation)
    scale = 48000 / examples  # reported per model-epoch of the full 48k / 12k split
    sizes = [int(s) for s in (args.sizes or ("64,256,1024" if gpu else "8,16,32")).split(",")]
    name = torch.cuda.get_device_name(device) if gpu else f"CPU, {torch.get_num_threads()} threads"
    print(
        f"device: {name}; torch {torch.__version__}; {args.dtype}; realistic space; "
        f"{examples} training + {validation} validation examples "
        f"({'MNIST' if args.data else 'synthetic'}), times scaled to 48000 + 12000"
    )
    time_population([realistic_spec(i) for i in range(2)], load(None, 500, 100), device, dtype)
    count = max(args.baseline_models, min(sizes))
    loop = [loop_epoch(realistic_spec(i), data, device) * scale for i in range(count)]
    print(
        f"plain per-model loop (nn.Sequential + Adam): {statistics.mean(loop):.3f} s per "
        f"model-epoch (mean over members 0..{count - 1}, std {statistics.pstdev(loop):.3f}); "
        f"each P is compared with the loop over its own first min(P, {count}) members"
    )
    print(f"{'P':>5} {'s/model-epoch':>14} {'+-':>6} {'speed-up':>9} {'exec/useful FLOPs':>18}")
    rows = []
    for p in sizes:
        specs = [realistic_spec(i) for i in range(p)]
        timed = [time_population(specs, data, device, dtype) for _ in range(args.repeats)]
        runs = [r[0] for r in timed]
        per_model = [r * scale / p for r in runs]
        widths, depths = [s.hidden_units for s in specs], [s.n_layers for s in specs]
        useful = product_flops(examples, widths, depths)
        executed = executed_flops(examples, specs)
        base = statistics.mean(loop[: min(p, count)])
        print(
            f"{p:>5} {statistics.mean(per_model):>14.3f} {statistics.pstdev(per_model):>6.3f} "
            f"{base / statistics.mean(per_model):>8.2f}x {executed / useful:>18.3f}"
        )
        rows.append(row(p, statistics.mean(per_model) * 1e3, max(r[1] for r in timed), base * 1e3))
    write_json(args, "realistic", name, statistics.mean(loop) * 1e3, rows)


def book(args: argparse.Namespace, device: torch.device, dtype: torch.dtype) -> None:
    gpu = device.type == "cuda"
    examples = args.examples or (60000 if gpu else 6000)
    sizes = [
        int(s)
        for s in (args.sizes or ("1,16,64,256,1024,4096" if gpu else "1,16,64,256")).split(",")
    ]
    data = load(args.data, examples)
    scale = 60000 / examples
    name = torch.cuda.get_device_name(device) if gpu else f"CPU, {torch.get_num_threads()} threads"
    print(
        f"device: {name}; torch {torch.__version__}; {args.dtype}; {examples} examples "
        f"({'MNIST' if args.data else 'synthetic'}); 784-[100x6]-10 batch norm, Adam, batch 100"
    )

    warm = load(None, 1000)  # warm-up of both sides: kernels, allocator, BLAS threads
    time_population([spec(0), spec(1)], warm, device, dtype, train_eval_size=1)
    train_reference(spec(0), warm, dtype=dtype, device=device, train_eval_size=1)
    baseline = []
    for seed in range(args.baseline_models):
        sync(device)
        started = time.perf_counter()
        train_reference(spec(seed), data, dtype=dtype, device=device, train_eval_size=1)
        sync(device)
        baseline.append((time.perf_counter() - started) * scale)
    base_ms = statistics.mean(baseline) * 1e3
    print(
        f"plain per-model PyTorch loop: {base_ms:.1f} ms per model-epoch "
        f"(mean of {len(baseline)}, std {statistics.pstdev(baseline) * 1e3:.1f} ms)"
    )

    itemsize = torch.finfo(dtype).bits // 8
    estimate = bytes_per_member(spec(0), D, C, eval_batch=1000, itemsize=itemsize)
    print(
        f"{'P':>6} {'ms/model-epoch':>15} {'+-':>6} {'TFLOP/s':>8} "
        f"{'MiB/member est':>15} {'MiB/member peak':>16} {'speed-up':>9}"
    )
    rows = []
    for p in sizes:
        specs = [spec(i) for i in range(p)]
        runs = [time_population(specs, data, device, dtype) for _ in range(args.repeats)]
        seconds = statistics.mean(r[0] for r in runs)
        spread = statistics.pstdev(r[0] for r in runs) * scale / p * 1e3
        peak = max(r[1] for r in runs)
        per_model = seconds * scale / p * 1e3
        tflops = flops_per_model_epoch(examples) * p / seconds / 1e12
        peak_text = f"{peak / p / 2**20:.2f}" if gpu else "-"
        print(
            f"{p:>6} {per_model:>15.2f} {spread:>6.2f} {tflops:>8.3f} "
            f"{estimate / 2**20:>15.2f} {peak_text:>16} {base_ms / per_model:>8.1f}x"
        )
        rows.append(row(p, per_model, peak, base_ms))
    print(f"(parameters per member: {n_parameters(spec(0), D, C)})")
    write_json(args, "book", name, base_ms, rows)


def row(p: int, ms: float, peak: int, loop_ms: float) -> dict[str, float]:
    """One population size's figures for --json."""
    return {"P": p, "ms": ms, "peak_gib": peak / 2**30, "speedup": loop_ms / ms}


def write_json(
    args: argparse.Namespace, workload: str, device: str, loop_ms: float, rows: list[dict]
) -> None:
    """The figures as JSON (--json PATH), for benchmarks/gpu.sh's table."""
    if args.json:
        record = {"workload": workload, "device": device, "loop_ms": loop_ms, "rows": rows}
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(record, f, indent=1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--workload", choices=["book", "realistic"], default="book")
    ap.add_argument("--data", help="folder with MNIST's IDX .gz files (default: synthetic)")
    ap.add_argument("--examples", type=int, default=None, help="training examples per epoch")
    ap.add_argument("--sizes", default=None, help="population sizes, e.g. 1,16,64")
    ap.add_argument("--baseline-models", type=int, default=3, help="models timed in the loop")
    ap.add_argument("--repeats", type=int, default=2, help="timed runs per population size")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    ap.add_argument("--json", help="also write the figures to this file as JSON")
    args = ap.parse_args()
    device = resolve_device(args.device)
    dtype = torch.float32 if args.dtype == "float32" else torch.float64
    (realistic if args.workload == "realistic" else book)(args, device, dtype)


if __name__ == "__main__":
    main()
