"""softmax: a softmax classifier on a 2-D toy problem, its decision regions (hardmax) and its
probabilities, and the check that the cross-entropy's gradient is ``dz = yhat - y``.

The classifier has no hidden layer (softmax regression: z = x W + b), which the engine does not
build, so it trains in plain torch with the hand-derived gradient; the gradient itself is checked
against autograd.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from caviar.experiments.base import Options, Result, save_figure, table

CENTRES = np.array([[0.0, 2.0], [-2.0, -1.0], [2.0, -1.0]])


def blobs(seed: int, n: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """Three Gaussian blobs around :data:`CENTRES`, ``n`` points each."""
    rng = np.random.default_rng(seed)
    x = np.concatenate([c + rng.normal(size=(n, 2)) for c in CENTRES])
    return x, np.repeat(np.arange(len(CENTRES)), n)


def softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise softmax, stable (the row max subtracted)."""
    e = np.exp(z - z.max(axis=1, keepdims=True))
    out: np.ndarray = e / e.sum(axis=1, keepdims=True)
    return out


def hardmax(z: np.ndarray) -> np.ndarray:
    """One-hot of each row's largest entry."""
    out: np.ndarray = np.eye(z.shape[1])[z.argmax(axis=1)]
    return out


def dz(z: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Gradient of the summed cross-entropy with respect to the logits: ``yhat - y``."""
    out: np.ndarray = softmax(z) - np.eye(z.shape[1])[y]
    return out


def autograd_dz(z: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The same gradient by torch's autograd (the check)."""
    zt = torch.tensor(z, dtype=torch.float64, requires_grad=True)
    torch.nn.functional.cross_entropy(zt, torch.as_tensor(y), reduction="sum").backward()  # type: ignore[no-untyped-call]
    assert zt.grad is not None
    return zt.grad.numpy()


def train(
    x: np.ndarray, y: np.ndarray, lr: float = 0.1, steps: int = 300
) -> tuple[np.ndarray, np.ndarray]:
    """Softmax regression by full-batch gradient descent with ``dz = yhat - y``."""
    w, b = np.zeros((2, 3)), np.zeros(3)
    for _ in range(steps):
        g = dz(x @ w + b, y) / len(y)
        w -= lr * x.T @ g
        b -= lr * g.sum(axis=0)
    return w, b


def regions(w: np.ndarray, b: np.ndarray, lim: float = 5.0, n: int = 120) -> dict[str, Any]:
    """The plane on an ``n`` x ``n`` grid: hardmax class and the largest softmax probability."""
    g = np.linspace(-lim, lim, n)
    xx, yy = np.meshgrid(g, g)
    z = np.c_[xx.ravel(), yy.ravel()] @ w + b
    return {
        "grid": g.tolist(),
        "cls": z.argmax(1).reshape(n, n).tolist(),
        "pmax": softmax(z).max(1).reshape(n, n).tolist(),
    }


def run(options: Options) -> Result:
    runs: list[dict[str, Any]] = []
    n = 30 if options.quick else 100
    for seed in options.seeds:
        x, y = blobs(seed, n)
        w, b = train(x, y)
        z = x @ w + b
        err = float(np.abs(dz(z, y) - autograd_dz(z, y)).max())
        runs.append(
            {
                "seed": seed,
                "accuracy": float(np.mean(z.argmax(1) == y)),
                "dz_max_error": err,
                "x": x.tolist(),
                "y": y.tolist(),
                **regions(w, b, n=60 if options.quick else 120),
            }
        )
    rows: list[tuple[Any, ...]] = [
        (r["seed"], r["accuracy"], f"{r['dz_max_error']:.1e}") for r in runs
    ]
    notes = [
        "way: plain torch/numpy softmax regression (no hidden layer: not an engine net); "
        "dz = yhat - y checked against autograd in float64"
    ]
    data = f"three 2-D Gaussian blobs of {n} points each, drawn with the seed"
    return Result(
        {"runs": runs, "data": data},
        table(["seed", "train acc", "max |dz - autograd|"], rows),
        notes,
    )


def draw(numbers: Mapping[str, Any], path: Path) -> None:
    import matplotlib  # deferred: matplotlib, only when a figure is drawn

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    r = numbers["runs"][0]
    g = np.asarray(r["grid"])
    x, y = np.asarray(r["x"]), np.asarray(r["y"])
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.5))
    for ax, key, title in (
        (axes[0], "cls", "hardmax: decision regions"),
        (axes[1], "pmax", "softmax: largest probability"),
    ):
        mesh = ax.pcolormesh(
            g, g, np.asarray(r[key]), shading="auto", cmap="Pastel1" if key == "cls" else "viridis"
        )
        ax.scatter(x[:, 0], x[:, 1], c=y, cmap="Set1", s=8, edgecolors="k", linewidths=0.3)
        ax.set_title(title)
        if key == "pmax":
            fig.colorbar(mesh, ax=ax)
    save_figure(fig, path, numbers)
