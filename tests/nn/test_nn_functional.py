"""The hand-written forward and backward pieces (caviar.nn.functional) against torch's own
modules and autograd, member by member, in float64."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.nn import functional as TF

from caviar.nn import functional as F

P, B, H, C = 3, 7, 5, 4


def rand(*shape: int, seed: int, scale: float = 1.0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return scale * torch.randn(*shape, generator=gen, dtype=torch.float64)


def bn_params(seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-member gamma, beta [P, 1, H] and eps [P, 1, 1], all different."""
    gamma = 1.0 + rand(P, 1, H, seed=seed, scale=0.5)
    beta = rand(P, 1, H, seed=seed + 1)
    eps = torch.tensor([1e-5, 1e-3, 0.1], dtype=torch.float64).view(P, 1, 1)
    return gamma, beta, eps


def torch_batch_norm(p: int, gamma: torch.Tensor, beta: torch.Tensor, eps: torch.Tensor):
    bn = nn.BatchNorm1d(H, eps=float(eps[p]), dtype=torch.float64)
    with torch.no_grad():
        bn.weight.copy_(gamma[p, 0])
        bn.bias.copy_(beta[p, 0])
    return bn


# -- batch norm ------------------------------------------------------------------------------
def test_batch_norm_train_matches_batchnorm1d_for_each_member():
    z = rand(P, B, H, seed=0, scale=3.0) + 2.0
    gamma, beta, eps = bn_params(1)

    out, zhat, inv_std, mean, var = F.batch_norm(z, gamma, beta, eps)

    for p in range(P):
        bn = torch_batch_norm(p, gamma, beta, eps).train()
        torch.testing.assert_close(out[p], bn(z[p]), rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(mean[p, 0], z[p].mean(dim=0), rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(var[p, 0], z[p].var(dim=0, unbiased=False))
        torch.testing.assert_close(inv_std[p, 0], 1.0 / torch.sqrt(var[p, 0] + eps[p, 0]))
        torch.testing.assert_close(zhat[p], (z[p] - mean[p]) * inv_std[p])


def test_batch_norm_backward_matches_autograd():
    z = rand(P, B, H, seed=2, scale=2.0).requires_grad_()
    gamma, beta, eps = bn_params(3)
    gamma.requires_grad_()
    beta.requires_grad_()
    dout = rand(P, B, H, seed=4)

    out, zhat, inv_std, _, _ = F.batch_norm(z, gamma, beta, eps)
    dz, dgamma, dbeta = F.batch_norm_backward(dout, zhat.detach(), inv_std.detach(), gamma.detach())
    expected_dz, expected_dgamma, expected_dbeta = torch.autograd.grad(
        (out * dout).sum(), (z, gamma, beta)
    )

    torch.testing.assert_close(dz, expected_dz, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(dgamma, expected_dgamma.squeeze(1), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(dbeta, expected_dbeta.squeeze(1), rtol=1e-12, atol=1e-12)


def test_batch_norm_eval_matches_batchnorm1d_with_the_same_running_statistics():
    z = rand(P, B, H, seed=5, scale=2.0)
    gamma, beta, eps = bn_params(6)
    running_mean = rand(P, 1, H, seed=7)
    running_var = 0.5 + rand(P, 1, H, seed=8).abs()

    out = F.batch_norm_eval(z, running_mean, running_var, gamma, beta, eps)

    for p in range(P):
        bn = torch_batch_norm(p, gamma, beta, eps)
        bn.running_mean.copy_(running_mean[p, 0])
        bn.running_var.copy_(running_var[p, 0])
        bn.eval()
        torch.testing.assert_close(out[p], bn(z[p]), rtol=1e-12, atol=1e-12)
        # a single example is normalised with the running statistics, not its own
        torch.testing.assert_close(out[p, :1], bn(z[p, :1]), rtol=1e-12, atol=1e-12)


# -- activations -----------------------------------------------------------------------------
ACTIVATIONS = {"relu": torch.relu, "tanh": torch.tanh, "sigmoid": torch.sigmoid}


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_forward_is_the_torch_function(name):
    y = rand(P, B, H, seed=9, scale=2.0)
    assert torch.equal(F.activation(name, y), ACTIVATIONS[name](y))


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_backward_matches_autograd(name):
    y = rand(P, B, H, seed=10, scale=2.0)
    y[0, 0, :2] = 0.0  # relu's kink: autograd's subgradient there is 0
    y.requires_grad_()
    da = rand(P, B, H, seed=11)

    a = ACTIVATIONS[name](y)
    (expected,) = torch.autograd.grad((a * da).sum(), y)

    torch.testing.assert_close(
        F.activation_backward(name, da, a.detach()), expected, rtol=1e-12, atol=1e-14
    )


# -- softmax cross-entropy -------------------------------------------------------------------
def one_hot_targets(labels: torch.Tensor) -> torch.Tensor:
    return TF.one_hot(labels, C).to(torch.float64)  # [B, C]


def test_softmax_cross_entropy_loss_matches_torch_and_gradient_is_yhat_minus_y():
    logits = rand(P, B, C, seed=12, scale=3.0)
    labels = torch.tensor([0, 3, 1, 1, 2, 3, 0])

    loss, grad = F.softmax_cross_entropy(logits.clone(), labels)

    for p in range(P):
        torch.testing.assert_close(loss[p], TF.cross_entropy(logits[p], labels), rtol=1e-12, atol=0)
        yhat = torch.exp(logits[p]) / torch.exp(logits[p]).sum(dim=1, keepdim=True)
        torch.testing.assert_close(
            grad[p], (yhat - one_hot_targets(labels)) / B, rtol=1e-12, atol=1e-15
        )


def test_softmax_cross_entropy_gradient_matches_autograd():
    logits = rand(P, B, C, seed=13).requires_grad_()
    labels = torch.tensor([2, 2, 0, 1, 3, 0, 1])
    _, grad = F.softmax_cross_entropy(logits.detach().clone(), labels)
    (expected,) = torch.autograd.grad(
        sum(TF.cross_entropy(logits[p], labels) for p in range(P)), logits
    )
    torch.testing.assert_close(grad, expected, rtol=1e-12, atol=1e-15)


def test_softmax_cross_entropy_is_stable_for_huge_logits():
    # member 0: the label has the largest logit; member 1: the label has the smallest
    logits = torch.tensor(
        [[[1000.0, -1000.0, 0.0, 999.0]], [[1000.0, -1000.0, 0.0, 999.0]]], dtype=torch.float64
    )
    loss, grad = F.softmax_cross_entropy(logits.clone(), torch.tensor([0]))
    loss_other, _ = F.softmax_cross_entropy(logits.clone(), torch.tensor([1]))

    # log-sum-exp by hand, the max (1000) taken out: 1000 + log(1 + e^-1 + e^-1000 + e^-2000)
    lse = 1000.0 + math.log1p(math.exp(-1.0) + math.exp(-1000.0) + math.exp(-2000.0))
    assert torch.isfinite(loss).all() and torch.isfinite(grad).all()
    assert loss[0].item() == pytest.approx(lse - 1000.0, rel=1e-12)
    assert loss_other[0].item() == pytest.approx(lse + 1000.0, rel=1e-12)
    yhat = torch.tensor([1.0, 0.0, 0.0, math.exp(-1.0)], dtype=torch.float64) / (1 + math.exp(-1))
    torch.testing.assert_close(grad[0, 0], yhat - torch.tensor([1.0, 0, 0, 0], dtype=torch.float64))


def test_loss_and_correct_sum_the_loss_and_count_argmax_hits():
    logits = rand(P, B, C, seed=14, scale=2.0)
    labels = torch.tensor([1, 0, 3, 3, 2, 0, 1])
    loss_sum, correct = F.loss_and_correct(logits, labels)
    for p in range(P):
        expected = TF.cross_entropy(logits[p], labels, reduction="sum")
        torch.testing.assert_close(loss_sum[p], expected, rtol=1e-12, atol=0)
        assert correct[p].item() == sum(int(logits[p, b].argmax() == labels[b]) for b in range(B))
