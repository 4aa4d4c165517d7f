"""The batched path's optimizer update as one compiled kernel per bucket.

Eager, a bucket's update is about a dozen elementwise passes over its weights (mask the frozen
members' gradients, weight decay, the moments, the ratio), each reading and writing whole
[n, size] buffers: on a GPU that is a dozen kernel launches and about three times the bytes of
the floor (read p, g, m, v; write p, m, v). The same plain torch function compiled with
``torch.compile`` (inductor: Triton on a GPU, C++ on a CPU) runs as one fused kernel with the
per-member hyperparameters [n, 1] broadcast inside it, and it is tested here against the eager
function in float64 (tests/nn/test_nn_fused.py).

The setting is ``study.compile``: ``auto`` compiles on a GPU only (on a CPU the per-member path
runs, and compiling costs seconds a shape), ``on`` and ``off`` force it. If compiling fails (no
C++ compiler, an unsupported device), the engine says so once and goes on eagerly: the results
do not depend on it beyond the last bits of float rounding.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from caviar.core.constraints import one_of
from caviar.nn.device import warn_fallback
from caviar.nn.memory import is_out_of_memory
from caviar.nn.optim import Hyper, Optimizer

COMPILE = ("auto", "on", "off")

Update = Callable[[Optimizer, Tensor, Tensor, list[Tensor], Hyper, Tensor, bool, bool], None]


def masked_step(
    optimizer: Optimizer,
    theta: Tensor,
    grad: Tensor,
    state: list[Tensor],
    hyper: Hyper,
    frozen: Tensor,
    coupled: bool,
    decoupled: bool,
) -> None:
    """One bucket's update, in place: ``theta`` [n, size] and its ``state``, from ``grad``
    (scratch), with ``hyper`` [n, 1] and ``frozen`` [n, 1] (members that do not move: their
    gradient, NaN where they diverged, is zeroed first; their learning rate is 0)."""
    grad.masked_fill_(frozen, 0.0)
    optimizer.step(theta, grad, state, hyper, coupled_decay=coupled, decoupled_decay=decoupled)


class BucketUpdate:
    """:func:`masked_step`, compiled or eager; falls back to eager (once, saying so) when
    compiling fails."""

    def __init__(self, compiled: bool) -> None:
        self.compiled = compiled
        self._fn: Update = _compiled() if compiled else masked_step

    def __call__(self, *args: Any) -> None:
        """:func:`masked_step` of ``args`` (its arguments, in its order)."""
        if not self.compiled:
            masked_step(*args)
            return
        try:
            self._fn(*args)
        except Exception as error:  # dynamo and inductor raise many kinds, before any kernel
            if is_out_of_memory(error):  # ran; running out of memory is the pool's to handle
                raise
            warn_fallback(
                "torch.compile",
                error,
                "the optimizer update runs eagerly (study.compile = 'off' says so up front)",
            )
            self.compiled, self._fn = False, masked_step
            masked_step(*args)


def wants_compile(setting: str, device: torch.device) -> bool:
    """Whether ``study.compile`` = ``setting`` compiles the update on ``device``."""
    one_of(*COMPILE).check(setting, "study.compile")
    return setting == "on" or (setting == "auto" and device.type == "cuda")


_COMPILED: Update | None = None


def _compiled() -> Update:
    """The compiled :func:`masked_step`, one per process (dynamic shapes: every bucket's
    size shares it; the optimizer and the decay flags specialise it)."""
    global _COMPILED
    if _COMPILED is None:
        _COMPILED = torch.compile(masked_step, dynamic=True, fullgraph=True)
    return _COMPILED
