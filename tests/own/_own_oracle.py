"""The oracle the own-model tests share: a member's optimizer and schedule as torch.optim and
LambdaLR build them for one model alone.

Imported by the test modules of this folder (pytest puts the folder on ``sys.path``); the name
starts with ``_own`` so that it cannot clash with a helper module of another test folder.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor


def torch_optimizer(
    s: Mapping[str, Any], leaves: list[Tensor], *, fused_adam: bool = False
) -> torch.optim.Optimizer:
    """Member settings ``s`` as torch.optim's optimizer over ``leaves``: single-tensor forms,
    or, with ``fused_adam``, Adam and AdamW as ``fused=True`` (what the stack runs on a CPU)."""
    name = s["optimizer"]
    if name == "sgd":
        return torch.optim.SGD(
            leaves,
            lr=s["lr"],
            momentum=s["momentum"],
            weight_decay=s["weight_decay"],
            nesterov=s["nesterov"],
            foreach=False,
        )
    if name == "rmsprop":
        return torch.optim.RMSprop(
            leaves,
            lr=s["lr"],
            alpha=s["alpha"],
            eps=s["eps"],
            weight_decay=s["weight_decay"],
            momentum=s["momentum"],
            foreach=False,
        )
    kind = torch.optim.Adam if name == "adam" else torch.optim.AdamW
    form: dict[str, bool] = {"fused": True} if fused_adam else {"foreach": False}
    return kind(
        leaves,
        lr=s["lr"],
        betas=(s["beta1"], s["beta2"]),
        eps=s["eps"],
        weight_decay=s["weight_decay"],
        **form,
    )


def factor(s: Mapping[str, Any]) -> Callable[[int], float]:
    """The schedule as LambdaLR's lambda."""
    rate, every = s["decay_rate"], s["decay_every"]
    return {
        "none": lambda e: 1.0,
        "inverse_time": lambda e: 1.0 / (1.0 + rate * e),
        "exponential": lambda e: rate**e,
        "step": lambda e: rate ** (e // every),
    }[s["lr_decay"]]
