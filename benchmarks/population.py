"""Population engine against the plain per-model PyTorch loop, measured in the same run.

The net is the book's batch-norm net, 784-[100x6]-10 (ReLU, batch norm, Adam, batch 100). The
baseline trains one model at a time with torch.nn + torch.optim (caviar.nn.reference), as a
tuner that runs one trial per process does; the population trains P models in one vectorized
pass. Both train one epoch over the same examples (no evaluation pass), after a warm-up run.

    python benchmarks/population.py                           # synthetic data, sizes for the CPU
    python benchmarks/population.py --data ../shared/datasets/mnist --sizes 1,16,64,256,1024,4096

Printed per P: chunks, ms per model-epoch (mean and std over --repeats runs, scaled to 60000
examples when fewer are used),
effective TFLOP/s, bytes per member (the engine's estimate, and the measured CUDA peak), and the
speed-up over the per-model loop.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from caviar.nn import MemberSpec, Population, TrainingData, resolve_device
from caviar.nn.memory import bytes_per_member, n_parameters
from caviar.nn.reference import train_reference

D, H, L, C = 784, 100, 6, 10


def load(path: str | None, examples: int) -> TrainingData:
    if path:
        from caviar.data import load_dataset

        ds = load_dataset("mnist", data_dir=path, train_size=examples)
        return TrainingData.from_arrays(ds.x_train, ds.y_train, n_classes=10)
    rng = np.random.default_rng(0)
    x = rng.random((examples, D), dtype=np.float32)
    y = rng.integers(0, C, examples)
    return TrainingData.from_arrays(x, y, n_classes=C)


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


def flops_per_model_epoch(n: int) -> float:
    """Matrix-product FLOPs of one epoch: forward 2*n*W, backward 4*n*W, less layer 0's input
    gradient (never needed); W counts the weight-matrix entries."""
    weights = D * H + (L - 1) * H * H + H * C
    return n * (6 * weights - 2 * D * H)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_population(
    p: int, data: TrainingData, device: torch.device, dtype: torch.dtype
) -> tuple[float, int, int]:
    population = Population(
        [spec(i) for i in range(p)], device=device, dtype=dtype, train_eval_size=1
    )
    chunks = len(population.plan(D, C, len(data.y_train)))
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    sync(device)
    started = time.perf_counter()
    population.fit(data)
    sync(device)
    peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else 0
    return time.perf_counter() - started, chunks, peak


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--data", help="folder with MNIST's IDX .gz files (default: synthetic)")
    ap.add_argument(
        "--examples",
        type=int,
        default=None,
        help="training examples per epoch (default 60000 on GPU, 6000 on CPU)",
    )
    ap.add_argument("--sizes", default=None, help="population sizes, e.g. 1,16,64")
    ap.add_argument("--baseline-models", type=int, default=3, help="models timed in the loop")
    ap.add_argument("--repeats", type=int, default=2, help="timed runs per population size")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    args = ap.parse_args()

    device = resolve_device(args.device)
    dtype = torch.float32 if args.dtype == "float32" else torch.float64
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
    time_population(2, warm, device, dtype)
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
    estimate = bytes_per_member(spec(0), D, C, width=H, eval_batch=1000, itemsize=itemsize)
    print(
        f"{'P':>6} {'chunks':>6} {'ms/model-epoch':>15} {'+-':>6} {'TFLOP/s':>8} "
        f"{'MiB/member est':>15} {'MiB/member peak':>16} {'speed-up':>9}"
    )
    for p in sizes:
        runs = [time_population(p, data, device, dtype) for _ in range(args.repeats)]
        seconds = statistics.mean(r[0] for r in runs)
        spread = statistics.pstdev(r[0] for r in runs) * scale / p * 1e3
        chunks, peak = runs[0][1], max(r[2] for r in runs)
        per_model = seconds * scale / p * 1e3
        tflops = flops_per_model_epoch(examples) * p / seconds / 1e12
        peak_text = f"{peak / p / 2**20:.2f}" if gpu else "-"
        print(
            f"{p:>6} {chunks:>6} {per_model:>15.2f} {spread:>6.2f} {tflops:>8.3f} "
            f"{estimate / 2**20:>15.2f} {peak_text:>16} {base_ms / per_model:>8.1f}x"
        )
    print(f"(parameters per member: {n_parameters(spec(0), D, C)})")


if __name__ == "__main__":
    main()
