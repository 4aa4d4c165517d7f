"""The demo study ``caviar tune`` runs with no config: embedded data, no network, under a minute.

Scikit-learn's bundled 8x8 digits; a two-round coarse-to-fine search over the course's favourite
hyperparameters, each on its proper scale (learning rate and weight decay on log10, Adam's beta1
on log(1 - beta), width and depth as integers, batch norm on or off). The same config lives in
examples/demo.toml.
"""

from __future__ import annotations

from typing import Any

DEMO: dict[str, Any] = {
    "study": {"name": "demo", "seed": 0},
    "data": {"dataset": "digits", "validation": 0.2},
    "space": {
        "lr": {"scale": "log", "low": 1e-4, "high": 1e-1},
        "beta1": {"scale": "one_minus_log", "low": 0.8, "high": 0.99},
        "hidden_units": {"scale": "int", "low": 16, "high": 128},
        "n_layers": {"scale": "int", "low": 1, "high": 3},
        "weight_decay": {"scale": "log", "low": 1e-6, "high": 1e-2},
        "batch_norm": {"choice": [True, False]},
        "optimizer": "adam",
        "batch_size": 64,
        "epochs": 20,
    },
    "search": {"sampler": "coarse_to_fine", "trials": 96, "rounds": 2, "keep": 0.25},
}
