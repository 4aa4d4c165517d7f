"""The per-member update rules (caviar.nn.optim) against torch.optim, one member at a time, and
against the course's formulas by hand; and the reference's momentum is the course's EWMA."""

from __future__ import annotations

import pytest
import torch

from caviar.nn import MemberSpec
from caviar.nn.optim import OPTIMIZERS, Hyper
from caviar.nn.reference import ReferenceNet, make_optimizer

P, N = 3, 6
LR = torch.tensor([0.1, 0.03, 0.5], dtype=torch.float64)
BETA1 = torch.tensor([0.9, 0.5, 0.0], dtype=torch.float64)
BETA2 = torch.tensor([0.999, 0.9, 0.5], dtype=torch.float64)
EPS = torch.tensor([1e-8, 1e-3, 0.1], dtype=torch.float64)
DECAY = torch.tensor([0.0, 0.1, 0.01], dtype=torch.float64)


def rand(*shape: int, seed: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def hyper(t: int, *, lr=LR, l2=None, decoupled=None, device="cpu") -> Hyper:
    """Hyperparameters shaped [P, 1] for the t-th step (1-based), on ``device``."""
    zero = torch.zeros(P, dtype=torch.float64)
    l2 = zero if l2 is None else l2
    decoupled = zero if decoupled is None else decoupled
    return Hyper(
        lr=lr.view(P, 1).to(device),
        beta1=BETA1.view(P, 1).to(device),
        beta2=BETA2.view(P, 1).to(device),
        eps=EPS.view(P, 1).to(device),
        bias_correction1=(1 - BETA1**t).view(P, 1).to(device),
        bias_correction2_sqrt=torch.sqrt(1 - BETA2**t).view(P, 1).to(device),
        l2=l2.view(P, 1).to(device),
        decoupled=decoupled.view(P, 1).to(device),
    )


def torch_optimizer(name: str, param: torch.Tensor, p: int, decay: str) -> torch.optim.Optimizer:
    """torch.optim's optimizer for member p; coupled L2 is torch's ``weight_decay``."""
    wd = float(DECAY[p]) if decay == "coupled" else 0.0
    lr, b1, b2, eps = float(LR[p]), float(BETA1[p]), float(BETA2[p]), float(EPS[p])
    if name == "sgd":
        return torch.optim.SGD([param], lr=lr, weight_decay=wd)
    if name == "momentum":
        opt = torch.optim.SGD([param], lr=lr, momentum=b1, dampening=b1, weight_decay=wd)
        opt.state[param]["momentum_buffer"] = torch.zeros_like(param)  # the course starts at 0
        return opt
    if name == "rmsprop":
        return torch.optim.RMSprop([param], lr=lr, alpha=b2, eps=eps, weight_decay=wd)
    if decay == "decoupled":
        return torch.optim.AdamW([param], lr=lr, betas=(b1, b2), eps=eps, weight_decay=DECAY[p])
    return torch.optim.Adam([param], lr=lr, betas=(b1, b2), eps=eps, weight_decay=wd)


@pytest.mark.parametrize("decay", ["none", "coupled", "decoupled"])
@pytest.mark.parametrize("name", ["sgd", "momentum", "rmsprop", "adam"])
def test_population_update_matches_torch_optim_member_by_member(name, decay, device):
    """The update on every device; torch.optim, the oracle, on the CPU."""
    optimizer = OPTIMIZERS[name]
    params = [rand(P, N, seed=0)[p].clone().requires_grad_() for p in range(P)]
    theta = rand(P, N, seed=0).to(device)
    state = optimizer.init_state(theta)
    reference = [torch_optimizer(name, params[p], p, decay) for p in range(P)]

    for t in range(1, 5):
        grad = rand(P, N, seed=t)
        h = hyper(
            t,
            l2=DECAY if decay == "coupled" else None,
            decoupled=DECAY if decay == "decoupled" else None,
            device=device,
        )
        optimizer.step(
            theta,
            grad.clone().to(device),
            state,
            h,
            coupled_decay=decay == "coupled",
            decoupled_decay=decay == "decoupled",
        )
        for p in range(P):
            params[p].grad = grad[p].clone()
            if decay == "decoupled" and name != "adam":  # AdamW does this itself
                with torch.no_grad():
                    params[p].mul_(1.0 - LR[p] * DECAY[p])
            reference[p].step()

    for p in range(P):
        torch.testing.assert_close(theta[p].cpu(), params[p].detach(), rtol=1e-12, atol=1e-14)
        if name == "momentum" and BETA1[p] == 0:
            continue  # torch's SGD keeps no buffer at momentum 0 (the update is plain SGD)
        for slot, value in zip(optimizer.slots, state, strict=True):
            torch.testing.assert_close(
                value[p].cpu(), reference[p].state[params[p]][slot], rtol=1e-12, atol=1e-14
            )


def test_first_steps_from_zero_state_follow_the_course_formulas():
    """Two steps of each rule written out by hand for one member (beta1 = 0.9, beta2 = 0.999)."""
    theta0, g1, g2 = rand(P, N, seed=10), rand(P, N, seed=11), rand(P, N, seed=12)
    lr, b1, b2, eps = LR[0], BETA1[0], BETA2[0], EPS[0]

    def run(name: str) -> torch.Tensor:
        theta, optimizer = theta0.clone(), OPTIMIZERS[name]
        state = optimizer.init_state(theta)
        for t, g in ((1, g1), (2, g2)):
            optimizer.step(
                theta, g.clone(), state, hyper(t), coupled_decay=False, decoupled_decay=False
            )
        return theta[0]

    w, a, b = theta0[0], g1[0], g2[0]
    v = b1 * (1 - b1) * a + (1 - b1) * b
    expected = {
        "sgd": w - lr * a - lr * b,
        "momentum": w - lr * (1 - b1) * a - lr * v,
    }
    s1 = (1 - b2) * a**2
    s2 = b2 * s1 + (1 - b2) * b**2
    expected["rmsprop"] = w - lr * a / (s1.sqrt() + eps) - lr * b / (s2.sqrt() + eps)
    m2 = v  # Adam's first moment is the same average as momentum's buffer
    w1 = w - lr * a / (a.abs() + eps)  # bias-corrected: mhat = g, vhat = g**2
    expected["adam"] = w1 - lr * (m2 / (1 - b1**2)) / ((s2 / (1 - b2**2)).sqrt() + eps)

    for name, value in expected.items():
        torch.testing.assert_close(run(name), value, rtol=1e-12, atol=1e-14, msg=name)


@pytest.mark.parametrize("name", ["sgd", "momentum", "rmsprop", "adam"])
def test_a_member_with_zero_learning_rate_keeps_its_parameters_exactly(name):
    optimizer = OPTIMIZERS[name]
    theta = rand(P, N, seed=20)
    before = theta.clone()
    state = optimizer.init_state(theta)
    lr = LR.clone()
    lr[1] = 0.0
    for t in range(1, 4):
        optimizer.step(
            theta,
            rand(P, N, seed=20 + t),
            state,
            hyper(t, lr=lr, l2=DECAY, decoupled=DECAY),
            coupled_decay=True,
            decoupled_decay=True,
        )
    assert torch.equal(theta[1], before[1])
    assert not torch.equal(theta[0], before[0])


def test_reference_momentum_is_the_course_ewma():
    """After one step from zero state the buffer is (1 - beta) g, not g (torch's default)."""
    spec = MemberSpec(optimizer="momentum", beta1=0.8, lr=0.5, hidden_units=3, n_layers=1)
    model = ReferenceNet(spec, 4, 2)
    optimizer = make_optimizer(model)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    grads = {n: rand(*p.shape, seed=i) for i, (n, p) in enumerate(model.named_parameters())}
    for n, p in model.named_parameters():
        p.grad = grads[n].clone()

    optimizer.step()

    for n, p in model.named_parameters():
        buffer = optimizer.state[p]["momentum_buffer"]
        torch.testing.assert_close(buffer, 0.2 * grads[n], rtol=1e-15, atol=0)
        torch.testing.assert_close(p.detach(), before[n] - 0.5 * 0.2 * grads[n])

    # second step: v = 0.8 * 0.2 g1 + 0.2 g2
    second = {n: rand(*p.shape, seed=100 + i) for i, (n, p) in enumerate(model.named_parameters())}
    for n, p in model.named_parameters():
        p.grad = second[n].clone()
    optimizer.step()
    for n, p in model.named_parameters():
        torch.testing.assert_close(
            optimizer.state[p]["momentum_buffer"], 0.16 * grads[n] + 0.2 * second[n]
        )
