"""Forward and backward of the network's pieces over a population, by hand.

Tensors carry the member axis first and the batch axis second: ``[P, B, H]``. Per-member
parameters are ``[P, 1, H]`` views, per-member scalars ``[P, 1, 1]``.

Why by hand rather than autograd: the population's gradients are written straight into slices of
flat per-group buffers that the optimizer updates in a few fused passes; autograd would allocate
a full-size gradient per slice and sum them. Every function here is checked against torch's own
modules and autograd in float64 (tests/nn).
"""

from __future__ import annotations

import torch
from torch import Tensor


def activation(name: str, y: Tensor) -> Tensor:
    """relu, tanh or sigmoid of ``y``."""
    if name == "relu":
        return torch.relu(y)
    if name == "tanh":
        return torch.tanh(y)
    return torch.sigmoid(y)


def activation_backward(name: str, da: Tensor, a: Tensor) -> Tensor:
    """Gradient through the activation, from its output ``a``: relu' = [a > 0],
    tanh' = 1 - a**2, sigmoid' = a (1 - a)."""
    if name == "relu":
        return torch.ops.aten.threshold_backward(da, a, 0.0)  # da where a > 0, else 0
    if name == "tanh":
        return da * (1.0 - a * a)
    return da * (a * (1.0 - a))


def batch_norm(
    z: Tensor, gamma: Tensor, beta: Tensor, eps: Tensor
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Normalise ``z`` [P, B, H] over the batch with its mean and biased variance.

    Returns ``(out, zhat, inv_std, mean, var)`` with ``out = gamma * zhat + beta``,
    ``zhat = (z - mean) * inv_std`` and ``inv_std = 1 / sqrt(var + eps)``; ``mean`` and ``var``
    are [P, 1, H] and feed the running averages.
    """
    mean = z.mean(dim=1, keepdim=True)  # [P, 1, H]
    centred = z - mean  # [P, B, H]
    var = (centred * centred).mean(dim=1, keepdim=True)  # [P, 1, H], biased
    inv_std = torch.rsqrt(var + eps)  # [P, 1, H]
    zhat = centred * inv_std  # [P, B, H]
    return torch.addcmul(beta, zhat, gamma), zhat, inv_std, mean, var


def batch_norm_backward(
    dout: Tensor, zhat: Tensor, inv_std: Tensor, gamma: Tensor
) -> tuple[Tensor, Tensor, Tensor]:
    """Gradients ``(dz, dgamma, dbeta)`` of batch norm, with dgamma and dbeta [P, H].

    dz = inv_std * (dzhat - mean(dzhat) - zhat * mean(dzhat * zhat)), dzhat = dout * gamma.
    """
    dbeta = dout.sum(dim=1)  # [P, H]
    dgamma = (dout * zhat).sum(dim=1)  # [P, H]
    dzhat = dout * gamma  # [P, B, H]
    mean_dzhat = dzhat.mean(dim=1, keepdim=True)
    mean_dzhat_zhat = (dzhat * zhat).mean(dim=1, keepdim=True)
    dz = (dzhat - mean_dzhat - zhat * mean_dzhat_zhat) * inv_std
    return dz, dgamma, dbeta


def batch_norm_eval(
    z: Tensor, mean: Tensor, var: Tensor, gamma: Tensor, beta: Tensor, eps: Tensor
) -> Tensor:
    """Batch norm at inference: the running mean and variance in place of the batch's."""
    return torch.addcmul(beta, (z - mean) * torch.rsqrt(var + eps), gamma)


def softmax_cross_entropy(logits: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
    """Mean softmax cross-entropy per member and its gradient with respect to the logits.

    ``logits`` [P, B, C], ``labels`` [B]. Loss per member ``mean_b(logsumexp(z_b) - z_b[y_b])``
    (stable: the max is subtracted inside logsumexp); gradient ``(softmax(z) - onehot(y)) / B``,
    the course's ``yhat - y`` averaged over the batch.
    """
    batch = logits.shape[1]
    log_probs = torch.log_softmax(logits, dim=2)  # [P, B, C]
    index = labels.view(1, -1, 1).expand(logits.shape[0], -1, 1)
    loss = -log_probs.gather(2, index).squeeze(2).mean(dim=1)  # [P]
    grad = log_probs.exp_()
    grad.scatter_add_(2, index, torch.full_like(index, -1, dtype=grad.dtype))
    return loss, grad.div_(batch)


def loss_and_correct(logits: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
    """Summed cross-entropy and number of correct predictions per member, [P] each."""
    log_probs = torch.log_softmax(logits, dim=2)
    index = labels.view(1, -1, 1).expand(logits.shape[0], -1, 1)
    loss_sum = -log_probs.gather(2, index).sum(dim=(1, 2))
    correct = (logits.argmax(dim=2) == labels.view(1, -1)).sum(dim=1)
    return loss_sum, correct
