"""The pool's bookkeeping at the scale users run (1024 members and more), on this checkout's code
and on a baseline commit's, in the same run.

What it measures (``--what``, default all):

- ``state``: seconds to save (``Group.member_state``) and to load (``Group.load_member``) one
  member's state in a group of P = 64, 256, 1024, 4096 members (8 inputs, 16 units, 2 layers,
  Adam, batch norm: only the bookkeeping counts). Goal: flat, P = 4096 at most 1.5x P = 64.
- ``calls``: ATen calls in one training step that launch a kernel (views and empty allocations
  left out), counted with a ``TorchDispatchMode`` on the GPU code path (``vectorized``) run on
  this CPU, eager: the book's net (784-[100x6]-10) and a realistic pool (widths 32..256, depths
  1..4, dropout) at P = 1024. Goals: <= 150 and <= 1,500. Also the executed / useful
  matrix-product FLOPs of that step (goal <= 1.3), and the bytes the eager weight update reads
  and writes against Adam's floor (read p, g, m, v; write p, m, v).
- ``refill``: seconds to replace a third of a pool of 1024 members between rounds, as a halving
  rung does (341 leave, 341 new trials come; the pool is then ready to train). Goal: <= 2 s.

Each figure is measured by a child process per side: this checkout (``src/``) and the baseline
(``--baseline REV``, default the commit before the pool's in-place slots), unpacked with
``git archive`` into a temporary folder. A side that cannot run a measurement says so.

    python benchmarks/scale.py                       # everything, both sides (about 2 minutes)
    python benchmarks/scale.py --what state --sizes 64,256 --baseline none   # quick, this side
    python benchmarks/scale.py --check               # tiny sizes: the script is sound (CI)
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: the last commit before the pool kept its groups and refilled slots in place
BASELINE = "5e1e574"


# -- measurements (run in a child process, against whichever caviar it imports) ------------------
def _specs(n: int, *, units: tuple[int, int], depths: tuple[int, int], dropout: bool, seed: int):
    import numpy as np

    from caviar.nn import MemberSpec

    rng = np.random.default_rng(seed)
    return [
        MemberSpec(
            hidden_units=int(rng.integers(units[0], units[1] + 1)),
            n_layers=int(rng.integers(depths[0], depths[1] + 1)),
            batch_norm=True,
            optimizer="adam",
            lr=float(10 ** rng.uniform(-4, -2)),
            beta1=float(1 - 10 ** rng.uniform(-2, -1)),
            dropout=float(rng.uniform(0, 0.5)) if dropout else 0.0,
            batch_size=100,
            epochs=3,
            seed=seed * 100_000 + k,
        )
        for k in range(n)
    ]


def measure_state(sizes: list[int]) -> dict[str, list[float]]:
    """Seconds per member to save and to load a state, at each P."""
    import torch

    from caviar.nn.group import Group

    torch.set_num_threads(1)
    save, load = [], []
    for P in sizes:
        specs = _specs(P, units=(16, 16), depths=(2, 2), dropout=False, seed=P)
        group = Group(specs, 8, 10, device=torch.device("cpu"), dtype=torch.float32)
        picks = [round(i * (P - 1) / 15) for i in range(16)]
        t0 = time.perf_counter()
        states = [group.member_state(k, epoch=0, batch=0) for k in picks]
        save.append((time.perf_counter() - t0) / len(picks))
        t0 = time.perf_counter()
        for k, state in zip(picks, states, strict=True):
            group.load_member(k, state)
        load.append((time.perf_counter() - t0) / len(picks))
    return {"save": save, "load": load}


#: ATen calls that launch no kernel: an empty tensor is only an allocation (views are told apart
#: by their schema)
_NO_KERNEL = ("empty.", "empty_strided.")


class _Counter:
    """ATen calls and matrix-product FLOPs seen inside a ``with``."""

    def __init__(self) -> None:
        from torch.utils._python_dispatch import TorchDispatchMode

        counter = self

        class Mode(TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
                counter.calls += not (func.is_view or func.__name__.startswith(_NO_KERNEL))
                out = func(*args, **(kwargs or {}))
                counter.flops += _product_flops(func, args, out)
                return out

        self.calls, self.flops, self.mode = 0, 0, Mode()

    def __enter__(self) -> _Counter:
        self.mode.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.mode.__exit__(*exc)


class _Bytes:
    """Bytes each kernel-launching ATen call inside a ``with`` reads and writes (its tensor
    arguments and results), added to ``into["bytes"]``: the traffic of unfused passes."""

    def __init__(self, into: dict[str, int]) -> None:
        from torch.utils._python_dispatch import TorchDispatchMode

        class Mode(TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
                out = func(*args, **(kwargs or {}))
                if not (func.is_view or func.__name__.startswith(_NO_KERNEL)):
                    tensors = [*_flat(args), *_flat(list((kwargs or {}).values())), *_flat(out)]
                    into["bytes"] += sum(t.numel() * t.element_size() for t in tensors)
                return out

        self.mode = Mode()

    def __enter__(self) -> _Bytes:
        self.mode.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.mode.__exit__(*exc)


def _flat(value: object) -> list:  # type: ignore[type-arg]
    """The tensors in an argument, a result, or lists and tuples of them."""
    import torch

    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, list | tuple):
        return [t for v in value for t in _flat(v)]
    return []


def _product_flops(func, args, out) -> int:  # type: ignore[no-untyped-def]
    """Multiply-adds x 2 of a matrix product (mm, bmm, addmm, baddbmm), else 0."""
    import torch

    name = func.__name__.split(".")[0]
    if name not in ("mm", "bmm", "addmm", "baddbmm"):
        return 0
    a = args[1] if name in ("addmm", "baddbmm") else args[0]
    inner = a.shape[-1]
    result = out if isinstance(out, torch.Tensor) else out[0]
    return 2 * inner * result.numel()


def measure_calls(P: int, workload: str) -> dict[str, float]:
    """ATen calls of one vectorized training step after a warm-up step, and executed / useful
    product FLOPs of that step."""
    import torch

    from caviar.nn.group import Group

    torch.set_num_threads(1)
    if workload == "book":
        specs = _specs(P, units=(100, 100), depths=(6, 6), dropout=False, seed=1)
    else:
        specs = _specs(P, units=(32, 256), depths=(1, 4), dropout=True, seed=2)
        specs.sort(key=lambda s: (-s.n_layers, s.hidden_units))  # as the pool orders them
    D, C, B = 784, 10, 100
    # the counts do not depend on the input width: 784 only for the FLOPs ratio
    group = Group(specs, D, C, device=torch.device("cpu"), dtype=torch.float32, vectorized=True)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(B, D, generator=g)
    y = torch.randint(0, C, (B,), generator=g)
    lrs = [s.lr for s in specs]
    group.train_step([x] * P, y, lrs)
    update, moved = group._update_buckets, {"bytes": 0}

    def counted_update(*args: object) -> None:  # the weight update's traffic, eager
        with _Bytes(moved):
            update(*args)

    group._update_buckets = counted_update  # type: ignore[method-assign]
    with _Counter() as counted:
        group.train_step([x] * P, y, lrs)
    # Adam's floor: read p, g, m, v and write p, m, v once
    floor = 7 * group.weights.numel() * group.weights.element_size()
    # forward, weight gradient and input gradient: 3 products a layer, less layer 0's input
    # gradient (the data needs none)
    useful = sum(
        6 * B * sum(a * b for a, b in itertools.pairwise(sizes)) - 2 * B * D * sizes[1]
        for sizes in (s.layer_sizes(D, C) for s in specs)
    )
    return {
        "calls": counted.calls,
        "flops_ratio": counted.flops / useful,
        "update_bytes_ratio": moved["bytes"] / floor,
    }


def measure_refill(P: int, mixed: bool) -> dict[str, float]:
    """Seconds to replace a third of a pool of P members (after a round), ready to train: of one
    shape (every newcomer fits a freed slot), or ``mixed`` (8..16 units, 1..2 layers)."""
    import torch

    from caviar.nn import Pool, TrainingData

    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    n, D = 200, 8
    x, y = torch.rand(n, D, generator=g), torch.randint(0, 10, (n,), generator=g)
    data = TrainingData.from_arrays(x, y, n_classes=10)
    pool = Pool(data, device=torch.device("cpu"), keep_states=False)
    leaving = range(0, P, 3)
    shapes = (
        {"units": (8, 16), "depths": (1, 2)} if mixed else {"units": (16, 16), "depths": (2, 2)}
    )
    specs = _specs(P + len(leaving), **shapes, dropout=False, seed=3)
    for k in range(P):
        pool.add(k, specs[k])
    pool.step()  # a first round: every member has trained an epoch
    t0 = time.perf_counter()
    for k in leaving:
        pool.remove(k)
    for k in range(P, P + len(leaving)):
        pool.add(k, specs[k])
    pool._regroup()  # what the next round does first
    return {"seconds": time.perf_counter() - t0}


def measure_study(P: int, trials: int) -> dict[str, float]:
    """Seconds for a study of ``trials`` tiny trials on the digits (8..16 units, 1..3 layers,
    3 epochs, successive halving, one thread) in a pool of P."""
    with tempfile.TemporaryDirectory() as tmp:
        try:
            from caviar.search.job import tune
        except ModuleNotFoundError:  # the baseline, from before the rooms: caviar.tuning
            from caviar.tuning import tune  # type: ignore[no-redef]

        space = {
            "lr": {"scale": "log", "low": 1e-4, "high": 1e-1},
            "hidden_units": {"scale": "int", "low": 8, "high": 16},
            "n_layers": {"scale": "int", "low": 1, "high": 3},
            "batch_norm": {"choice": [True, False]},
            "optimizer": "adam",
            "batch_size": 64,
            "epochs": 3,
        }
        cfg = {
            "study": {"name": f"tiny-{P}", "storage": f"{tmp}/s.db", "threads": 1, "seed": 0},
            "data": {"dataset": "digits"},
            "space": space,
            "search": {
                "sampler": "random",
                "trials": trials,
                "population": P,
                "halving": {"min_epochs": 1, "eta": 3},
                "keep_models": 0,
            },
        }
        t0 = time.perf_counter()
        study = tune(cfg, progress=False, report=False)
        seconds = time.perf_counter() - t0
        done = sum(t.state.is_finished for t in study.trials(curves=False))
    return {"seconds": seconds, "finished": done}


def measure(what: str, args: list[str]) -> dict[str, object]:
    if what == "state":
        return measure_state([int(s) for s in args[0].split(",")])
    if what == "calls":
        return measure_calls(int(args[0]), args[1])
    if what == "refill":
        return measure_refill(int(args[0]), args[1] == "mixed")
    return measure_study(int(args[0]), int(args[1]))


def child(jobs: list[list[str]]) -> None:
    """Run each job ``[what, *args]`` in turn, one ``RESULT <index> <json>`` line each (a job
    that fails prints its error and the next one runs)."""
    for i, (what, *args) in enumerate(jobs):
        try:
            out = measure(what, args)
        except Exception as e:  # the driver reports it for this job only
            print(f"FAILED {i} {type(e).__name__}: {e}"[:200], flush=True)
            continue
        print(f"RESULT {i} " + json.dumps(out), flush=True)


# -- the driver ---------------------------------------------------------------------------------
def baseline_source(rev: str, into: Path) -> Path:
    """The baseline's src/ unpacked from git into ``into``."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", rev, "src"], capture_output=True, check=True
    ).stdout
    path = into / "archive.tar"
    path.write_bytes(archive)
    with tarfile.open(path) as tar:
        tar.extractall(into, filter="data")
    return into / "src"


def run_side(src: Path, jobs: list[list[str]], *, timeout: float) -> list[dict[str, object] | str]:
    """``jobs`` in one child process importing caviar from ``src``: each job's result, or why
    not."""
    env = {**os.environ, "PYTHONPATH": str(src), "OMP_NUM_THREADS": "1"}
    found: dict[int, dict[str, object] | str] = {}
    try:
        done = subprocess.run(
            [sys.executable, __file__, "--child", json.dumps(jobs)],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout * len(jobs),
        )
    except subprocess.TimeoutExpired:
        return [f"did not finish in {timeout * len(jobs):.0f} s"] * len(jobs)
    for line in done.stdout.splitlines():
        kind, _, rest = line.partition(" ")
        index, _, payload = rest.partition(" ")
        if kind == "RESULT":
            found[int(index)] = json.loads(payload)
        elif kind == "FAILED":
            found[int(index)] = f"failed: {payload[:70]}"
    tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
    return [found.get(i, f"failed: {tail[:70]}") for i in range(len(jobs))]


def fmt(value: object, spec: str) -> str:
    return format(value, spec) if isinstance(value, int | float) else "-"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--what", default="state,calls,refill,study")
    parser.add_argument("--trials", type=int, default=1024, help="trials of the tiny study")
    parser.add_argument("--study-pools", default="32,1024", help="pool sizes of the tiny study")
    parser.add_argument("--sizes", default="64,256,1024,4096", help="P for the state figures")
    parser.add_argument("--pool", type=int, default=1024, help="P for calls and refill")
    parser.add_argument("--baseline", default=BASELINE, help="a git revision, or none")
    parser.add_argument("--timeout", type=float, default=300, help="seconds per measurement")
    parser.add_argument("--check", action="store_true", help="tiny sizes: the script is sound")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(json.loads(args.child))
        return 0
    if args.check:
        args.sizes, args.pool, args.timeout = "8,16", 12, 120
        args.trials, args.study_pools = 12, "2,12"
    whats = args.what.split(",")
    jobs: dict[str, list[str]] = {}  # name -> [what, *args]
    if "state" in whats:
        jobs["state"] = ["state", args.sizes]
    if "calls" in whats:
        for workload in ("book", "realistic"):
            jobs[workload] = ["calls", str(args.pool), workload]
    if "refill" in whats:
        for shapes in ("same", "mixed"):
            jobs[f"refill {shapes}"] = ["refill", str(args.pool), shapes]
    if "study" in whats:
        for P in args.study_pools.split(","):
            jobs[f"study {P}"] = ["study", P, str(args.trials)]
    with tempfile.TemporaryDirectory() as tmp:
        sides = {"this checkout": ROOT / "src"}
        if args.baseline != "none":
            try:
                sides[f"baseline {args.baseline}"] = baseline_source(args.baseline, Path(tmp))
            except subprocess.CalledProcessError as e:
                print(f"baseline {args.baseline}: git archive failed ({e.stderr.strip()!r})")
        results: dict[str, dict[str, object]] = {side: {} for side in sides}
        for side, src in sides.items():
            # a measurement each in a fresh process; --check, all of a side's in one (the
            # script is sound, and each child's torch import is most of a tiny run's time)
            batches = [list(jobs)] if args.check else [[name] for name in jobs]
            for batch in batches:
                found = run_side(src, [jobs[n] for n in batch], timeout=args.timeout)
                results[side].update(zip(batch, found, strict=True))
    print(f"# The pool's bookkeeping (torch {_torch_version()}, one CPU thread)\n")
    pools = [int(P) for P in args.study_pools.split(",")]
    ok = report(results, whats, [int(s) for s in args.sizes.split(",")], args.pool, pools)
    return 0 if ok or not args.check else 1


def _torch_version() -> str:
    import torch

    return torch.__version__


def report(
    results: dict[str, dict[str, object]],
    whats: list[str],
    sizes: list[int],
    pool: int,
    pools: list[int],
) -> bool:
    """Print one table per measurement; whether this checkout's side ran every one."""
    ok = True
    mine = next(iter(results))
    for side, got in results.items():
        for name, value in got.items():
            if isinstance(value, str):
                print(f"{side}, {name}: {value}")
                ok = ok and side != mine
    if "state" in whats:
        print("\n## One member's state: ms to save / to load, by pool size P\n")
        print("| side | " + " | ".join(f"P={P}" for P in sizes) + " | P_max / P_min (save) |")
        print("|---|" + "---:|" * (len(sizes) + 1))
        for side, got in results.items():
            r = got.get("state")
            if not isinstance(r, dict):
                continue
            cells = [
                f"{s * 1e3:.2f} / {ld * 1e3:.2f}"
                for s, ld in zip(r["save"], r["load"], strict=True)
            ]
            print(f"| {side} | " + " | ".join(cells) + f" | {r['save'][-1] / r['save'][0]:.2f}x |")
    if "calls" in whats:
        print(f"\n## ATen calls per training step, GPU code path on the CPU, P = {pool}\n")
        print(
            "| side | book's net | realistic pool | executed / useful FLOPs (realistic) "
            "| eager weight update's bytes / Adam's floor (book) |"
        )
        print("|---|---:|---:|---:|---:|")
        for side, got in results.items():
            book, real = got.get("book"), got.get("realistic")
            b = book.get("calls") if isinstance(book, dict) else None
            r = real.get("calls") if isinstance(real, dict) else None
            f = real.get("flops_ratio") if isinstance(real, dict) else None
            u = book.get("update_bytes_ratio") if isinstance(book, dict) else None
            print(f"| {side} | {fmt(b, ',')} | {fmt(r, ',')} | {fmt(f, '.2f')} | {fmt(u, '.2f')} |")
        print(
            "\n(views and empty allocations launch no kernel and are not counted; the compiled "
            "update, study.compile, is one fused kernel: each buffer read and written once by "
            "construction, not measured here)"
        )
    if "refill" in whats:
        print(f"\n## Replacing a third of a pool of {pool} (a halving rung), seconds\n")
        print("| side | one shape (16 units, 2 layers) | mixed (8..16 units, 1..2 layers) |")
        print("|---|---:|---:|")
        for side, got in results.items():
            cells = []
            for shapes in ("same", "mixed"):
                r = got.get(f"refill {shapes}")
                cells.append(fmt(r.get("seconds") if isinstance(r, dict) else None, ".3f"))
            print(f"| {side} | " + " | ".join(cells) + " |")
    if "study" in whats:
        print("\n## The same tiny trials in pools of different sizes, seconds\n")
        print("| side | " + " | ".join(f"P={P}" for P in pools) + " | last / first |")
        print("|---|" + "---:|" * (len(pools) + 1))
        for side, got in results.items():
            secs = []
            for P in pools:
                r = got.get(f"study {P}")
                secs.append(r.get("seconds") if isinstance(r, dict) else None)
            ratio = secs[-1] / secs[0] if None not in secs else None  # type: ignore[operator]
            cells = [fmt(x, ".1f") for x in secs]
            print(f"| {side} | " + " | ".join(cells) + f" | {fmt(ratio, '.2f')} |")
    return ok


if __name__ == "__main__":
    sys.exit(main())
