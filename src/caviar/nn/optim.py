"""Optimizers with a hyperparameter per member, as in-place updates of stacked buffers.

``torch.optim`` takes one learning rate per parameter group, so a population of P members would
need P groups and P times the kernel launches. Here each update works on a whole buffer holding
every member's parameters, with hyperparameters as tensors that broadcast along the member axis.
State is kept apart from the rule, under the names torch.optim uses, so the two compare.

The rules, the course's (and torch's, see tests/nn/test_population_vs_reference.py):

- sgd:      theta -= lr * g
- momentum: v = beta1 v + (1 - beta1) g;            theta -= lr * v
- rmsprop:  s = beta2 s + (1 - beta2) g**2;         theta -= lr * g / (sqrt(s) + eps)
- adam:     m = beta1 m + (1 - beta1) g;  v = beta2 v + (1 - beta2) g**2;
            theta -= lr * (m / (1 - beta1**t)) / (sqrt(v / (1 - beta2**t)) + eps)

Weight decay, on weight matrices only: coupled L2 adds ``l2 * theta`` to g (the gradient of
``l2/2 ||W||**2`` in the loss); decoupled decay scales ``theta *= 1 - lr * wd`` first (AdamW).
A member whose ``lr`` is 0 (frozen: diverged or done) keeps its parameters exactly.

Hyperparameters are floats when a buffer holds one member (the engine updates each member's
weights on their own, in cache-sized pieces: 6x faster on a CPU than one pass over a buffer of
many members, which streams every pass from main memory) or tensors when it holds many (the
small buffer of biases and batch-norm parameters).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

#: a hyperparameter: one float for a buffer holding one member, or a tensor broadcasting
#: along the member axis of a buffer holding many
Value = float | Tensor


@dataclass(frozen=True)
class Hyper:
    """Per-member hyperparameters: floats (one member's buffer) or tensors shaped to
    broadcast against a buffer of many members."""

    lr: Value
    beta1: Value
    beta2: Value
    eps: Value
    bias_correction1: Value
    bias_correction2_sqrt: Value
    l2: Value
    decoupled: Value


def _add_scaled(theta: Tensor, x: Tensor, scale: Value) -> None:
    """``theta += scale * x``."""
    if isinstance(scale, Tensor):
        theta.addcmul_(x, scale)
    else:
        theta.add_(x, alpha=scale)


def _sub_ratio(theta: Tensor, num: Tensor, denom: Tensor, scale: Value) -> None:
    """``theta -= scale * num / denom`` (``denom`` is scratch). A tensor ``scale`` is folded
    into the denominator, so a frozen member (scale 0) gets an infinite one and moves by
    exactly 0."""
    if isinstance(scale, Tensor):
        theta.addcdiv_(num, denom.div_(scale), value=-1.0)
    else:
        theta.addcdiv_(num, denom, value=-scale)


def _sgd(theta: Tensor, grad: Tensor, state: list[Tensor], h: Hyper) -> None:
    _add_scaled(theta, grad, -h.lr)


def _momentum(theta: Tensor, grad: Tensor, state: list[Tensor], h: Hyper) -> None:
    (momentum_buffer,) = state
    momentum_buffer.lerp_(grad, 1.0 - h.beta1)
    _add_scaled(theta, momentum_buffer, -h.lr)


def _rmsprop(theta: Tensor, grad: Tensor, state: list[Tensor], h: Hyper) -> None:
    (square_avg,) = state
    square_avg.lerp_(grad * grad, 1.0 - h.beta2)
    denom = torch.sqrt(square_avg).add_(h.eps)
    _sub_ratio(theta, grad, denom, h.lr)


def _adam(theta: Tensor, grad: Tensor, state: list[Tensor], h: Hyper) -> None:
    exp_avg, exp_avg_sq = state
    exp_avg.lerp_(grad, 1.0 - h.beta1)
    exp_avg_sq.lerp_(grad.square_(), 1.0 - h.beta2)  # grad is scratch from here on
    # torch.optim.Adam's single-tensor form: theta -= lr/bc1 * m / (sqrt(v)/sqrt(bc2) + eps)
    denom = torch.sqrt(exp_avg_sq, out=grad).div_(h.bias_correction2_sqrt).add_(h.eps)
    _sub_ratio(theta, exp_avg, denom, h.lr / h.bias_correction1)


@dataclass(frozen=True)
class Optimizer:
    """An update rule and the names of the state it keeps per parameter buffer."""

    name: str
    slots: tuple[str, ...]
    update: Callable[[Tensor, Tensor, list[Tensor], Hyper], None]

    def init_state(self, theta: Tensor) -> list[Tensor]:
        """Zeroed state for one buffer (the course starts v, s, m at 0)."""
        return [torch.zeros_like(theta) for _ in self.slots]

    def step(
        self,
        theta: Tensor,
        grad: Tensor,
        state: list[Tensor],
        h: Hyper,
        *,
        coupled_decay: bool,
        decoupled_decay: bool,
    ) -> None:
        """Update ``theta`` (and ``state``) in place; ``grad`` is used as scratch.

        The decay flags say whether any member of this buffer has that kind of weight decay
        (False for buffers of biases and batch-norm parameters), so no pass is spent otherwise.
        """
        if coupled_decay:
            _add_scaled(grad, theta, h.l2)
        if decoupled_decay:
            theta.mul_(1.0 - h.lr * h.decoupled)
        self.update(theta, grad, state, h)


OPTIMIZERS: dict[str, Optimizer] = {
    o.name: o
    for o in (
        Optimizer("sgd", (), _sgd),
        Optimizer("momentum", ("momentum_buffer",), _momentum),
        Optimizer("rmsprop", ("square_avg",), _rmsprop),
        Optimizer("adam", ("exp_avg", "exp_avg_sq"), _adam),
    )
}
