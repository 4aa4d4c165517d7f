"""The hand-written forward and backward pieces (caviar.nn.functional) against torch's own
modules and autograd, member by member, in float64; batch norm on every device (the oracle on
the CPU)."""

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


EPS = 1e-3


def bn_params(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """gamma and beta for P members side by side: [P * H] each, all different."""
    gamma = 1.0 + rand(P * H, seed=seed, scale=0.5)
    beta = rand(P * H, seed=seed + 1)
    return gamma, beta


def block(t: torch.Tensor, p: int) -> torch.Tensor:
    """Member p's columns of a [..., P * H] tensor."""
    return t[..., p * H : (p + 1) * H]


def torch_batch_norm(p: int, gamma: torch.Tensor, beta: torch.Tensor) -> nn.BatchNorm1d:
    bn = nn.BatchNorm1d(H, eps=EPS, dtype=torch.float64)
    with torch.no_grad():
        bn.weight.copy_(block(gamma, p))
        bn.bias.copy_(block(beta, p))
    return bn


def composed_batch_norm(z: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    """The course's formulas, written with plain operations (autograd differentiates them)."""
    mean = z.mean(dim=0)
    var = ((z - mean) ** 2).mean(dim=0)
    return gamma * (z - mean) / torch.sqrt(var + EPS) + beta


def on(device: torch.device, *tensors: torch.Tensor) -> list[torch.Tensor]:
    return [t.to(device) for t in tensors]


def cpu(tensors: tuple[torch.Tensor, ...]) -> list[torch.Tensor]:
    return [t.cpu() for t in tensors]


# -- batch norm: P members' units side by side, [B, P * H] ------------------------------------
def test_batch_norm_train_matches_batchnorm1d_for_each_member(device):
    z = rand(B, P * H, seed=0, scale=3.0) + 2.0
    gamma, beta = bn_params(1)

    out, mean, inv_std = cpu(F.batch_norm(*on(device, z, gamma, beta), EPS))

    for p in range(P):
        bn = torch_batch_norm(p, gamma, beta).train()
        zp = block(z, p)
        torch.testing.assert_close(block(out, p), bn(zp), rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(block(mean, p), zp.mean(dim=0), rtol=1e-12, atol=1e-12)
        var = zp.var(dim=0, unbiased=False)
        torch.testing.assert_close(block(inv_std, p), 1.0 / torch.sqrt(var + EPS))


def test_batch_norm_backward_matches_autograd_of_the_formulas(device):
    z = rand(B, P * H, seed=2, scale=2.0).requires_grad_()
    gamma, beta = bn_params(3)
    gamma.requires_grad_()
    beta.requires_grad_()
    dout = rand(B, P * H, seed=4)

    z_, gamma_, beta_, dout_ = on(device, z.detach(), gamma.detach(), beta.detach(), dout)
    _, mean, inv_std = F.batch_norm(z_, gamma_, beta_, EPS)
    dz, dgamma, dbeta = cpu(F.batch_norm_backward(dout_, z_, gamma_, mean, inv_std, EPS))
    expected = torch.autograd.grad(
        (composed_batch_norm(z, gamma, beta) * dout).sum(), (z, gamma, beta)
    )

    torch.testing.assert_close(dz, expected[0], rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(dgamma, expected[1], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(dbeta, expected[2], rtol=1e-12, atol=1e-12)


def test_batch_norm_eval_matches_batchnorm1d_with_the_same_running_statistics(device):
    z = rand(B, P * H, seed=5, scale=2.0)
    gamma, beta = bn_params(6)
    running_mean = rand(P * H, seed=7)
    running_var = 0.5 + rand(P * H, seed=8).abs()

    (out,) = cpu((F.batch_norm_eval(*on(device, z, gamma, beta, running_mean, running_var), EPS),))

    for p in range(P):
        bn = torch_batch_norm(p, gamma, beta)
        bn.running_mean.copy_(block(running_mean, p))
        bn.running_var.copy_(block(running_var, p))
        bn.eval()
        torch.testing.assert_close(block(out, p), bn(block(z, p)), rtol=1e-12, atol=1e-12)
        # a single example is normalised with the running statistics, not its own
        single = F.batch_norm_eval(z[:1], gamma, beta, running_mean, running_var, EPS)
        torch.testing.assert_close(block(single, p), bn(block(z[:1], p)), rtol=1e-12, atol=1e-12)


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
