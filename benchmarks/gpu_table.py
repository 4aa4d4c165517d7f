"""The table at the end of benchmarks/gpu.sh: what its steps wrote to the results folder.

One row per workload and pool size P: ms per model-epoch of the population, the per-model
PyTorch loop measured in the same run, the speed-up, and the peak GPU memory of the run; then
the budget benchmark's rows (budget.md), where that step ran. A step that wrote nothing is
named, not skipped silently.

    python benchmarks/gpu_table.py gpu-results
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def table(folder: Path) -> list[str]:
    lines = [
        "| workload | P | ms / model-epoch | loop ms / model-epoch | speed-up | peak GiB |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    missing = []
    device = None
    for workload in ("book", "realistic", "own-cnn"):
        path = folder / f"{workload}.json"
        if not path.is_file():
            missing.append(workload)
            continue
        record = json.loads(path.read_text(encoding="utf-8"))
        device = record["device"]
        for row in record["rows"]:
            lines.append(
                f"| {workload} | {row['P']} | {row['ms']:.3f} | {record['loop_ms']:.1f} | "
                f"{row['speedup']:.{0 if row['speedup'] >= 10 else 1}f}x | {row['peak_gib']:.2f} |"
            )
    head = [f"## Population against the per-model loop, on {device or 'an unknown device'}", ""]
    out = head + lines
    if missing:
        out.append(f"(no figures from: {', '.join(missing)}; see their logs)")
    budget = folder / "budget.md"
    out += ["", "## Search in a budget (budget.py, caviar with halving against the loop)", ""]
    if budget.is_file():
        out += [line for line in budget.read_text(encoding="utf-8").splitlines() if line.strip()]
    else:
        out.append("(the budget step wrote no budget.md; see its log)")
    return out


if __name__ == "__main__":
    print("\n".join(table(Path(sys.argv[1] if len(sys.argv) > 1 else "gpu-results"))))
