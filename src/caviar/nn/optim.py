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
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class Hyper:
    """Per-member hyperparameters shaped to broadcast against one buffer."""

    lr: Tensor
    beta1: Tensor
    beta2: Tensor
    eps: Tensor
    bias_correction1: Tensor
    bias_correction2_sqrt: Tensor
    l2: Tensor
    decoupled: Tensor


def _sgd(theta: Tensor, grad: Tensor, state: list[Tensor], h: Hyper) -> None:
    theta.addcmul_(grad, h.lr, value=-1.0)


def _momentum(theta: Tensor, grad: Tensor, state: list[Tensor], h: Hyper) -> None:
    (momentum_buffer,) = state
    momentum_buffer.lerp_(grad, 1.0 - h.beta1)
    theta.addcmul_(momentum_buffer, h.lr, value=-1.0)


def _rmsprop(theta: Tensor, grad: Tensor, state: list[Tensor], h: Hyper) -> None:
    (square_avg,) = state
    square_avg.mul_(h.beta2).addcmul_(grad, grad * (1.0 - h.beta2))
    denom = square_avg.sqrt().add_(h.eps)
    theta.addcdiv_(grad.mul_(h.lr), denom, value=-1.0)


def _adam(theta: Tensor, grad: Tensor, state: list[Tensor], h: Hyper) -> None:
    exp_avg, exp_avg_sq = state
    exp_avg.lerp_(grad, 1.0 - h.beta1)
    exp_avg_sq.lerp_(grad.square_(), 1.0 - h.beta2)  # grad is scratch from here on
    # theta -= lr/bc1 * m / (sqrt(v)/sqrt(bc2) + eps), rewritten so that the per-member step
    # folds into the denominator, m / (sqrt(v) * scale + eps sqrt(bc2) * scale) with
    # scale = bc1 / (lr sqrt(bc2)): fewer passes over the buffers, the same value to rounding.
    # A frozen member (lr = 0) gets an infinite denominator, so its step is exactly 0.
    moving = h.lr > 0  # [P, 1]
    scale = torch.where(moving, h.bias_correction1 / (h.lr * h.bias_correction2_sqrt), 0.0)
    floor = torch.where(moving, h.eps * h.bias_correction2_sqrt * scale, torch.inf)
    denom = torch.addcmul(floor, torch.sqrt(exp_avg_sq, out=grad), scale, out=grad)
    theta.addcdiv_(exp_avg, denom, value=-1.0)


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
            grad.addcmul_(theta, h.l2)
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
