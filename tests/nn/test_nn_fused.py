"""The compiled update (torch.compile of the eager rule, inductor's C++ on this CPU, Triton on a
GPU) moves every member as the eager rule does, in float64; a frozen member stays put exactly;
a failed compile falls back to eager, saying so once."""

from __future__ import annotations

import warnings
from dataclasses import replace

import pytest
import torch
from _nn_support import assert_states_equal, cpu_group

from caviar.core.errors import InvalidValue
from caviar.nn import MemberSpec, device, fused
from caviar.nn.fused import BucketUpdate, masked_step, wants_compile
from caviar.nn.group import Group
from caviar.nn.optim import OPTIMIZERS, Hyper
from caviar.nn.randomness import batch_bounds, epoch_order

# optimizer, coupled L2, decoupled decay
CASES = {
    "sgd": ("sgd", False, False),
    "momentum": ("momentum", False, False),
    "rmsprop_coupled": ("rmsprop", True, False),
    "adam": ("adam", False, False),
    "adam_coupled_and_decoupled": ("adam", True, True),
}


def bucket(optimizer: str, seed: int = 0) -> tuple:
    """Five members' rows of 300 weights, their state, [5, 1] hyperparameters; member 1 is
    frozen (lr 0, a NaN in its gradient)."""
    gen = torch.Generator().manual_seed(seed)
    n, size = 5, 300

    def rand(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, dtype=torch.float64, generator=gen)

    theta, grad = torch.randn(n, size, dtype=torch.float64, generator=gen), rand(n, size) - 0.5
    state = [rand(n, size) for _ in OPTIMIZERS[optimizer].slots]
    grad[1, 7] = float("nan")
    frozen = torch.tensor([False, True, False, False, False]).view(n, 1)
    hyper = Hyper(
        lr=(rand(n, 1) * 0.1).masked_fill(frozen, 0.0),
        beta1=0.8 + 0.19 * rand(n, 1),
        beta2=0.9 + 0.099 * rand(n, 1),
        eps=1e-8 * (1 + rand(n, 1)),
        bias_correction1=0.5 + 0.5 * rand(n, 1),
        bias_correction2_sqrt=0.5 + 0.5 * rand(n, 1),
        l2=0.01 * rand(n, 1),
        decoupled=0.01 * rand(n, 1),
    )
    return theta, grad, state, hyper, frozen


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CASES))
def test_the_compiled_update_moves_members_as_the_eager_rule(name):
    optimizer, coupled, decoupled = CASES[name]
    rule = OPTIMIZERS[optimizer]
    eager, compiled = bucket(optimizer), bucket(optimizer)
    before = eager[0][1].clone()
    update = BucketUpdate(compiled=True)
    for _ in range(2):  # the first call compiles, the second runs the kernel as it is
        masked_step(rule, *eager, coupled, decoupled)
        update(rule, *compiled, coupled, decoupled)
    assert update.compiled  # it did not fall back
    torch.testing.assert_close(compiled[0], eager[0], rtol=1e-12, atol=1e-15)
    for got, want in zip(compiled[2], eager[2], strict=True):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-15)
    assert torch.equal(compiled[0][1], before)  # the frozen member, exactly


@pytest.mark.slow
def test_a_group_with_the_compiled_update_trains_what_the_eager_group_trains(data):
    base = MemberSpec(seed=0, batch_size=16, lr=0.01, batch_norm=True, weight_decay=0.01)
    specs = [
        replace(base, seed=1, hidden_units=5, dropout=0.2),
        replace(base, seed=2, hidden_units=9, decoupled_weight_decay=True),
        replace(base, seed=3, hidden_units=40, n_layers=2, lr=1e300),  # diverges: frozen
    ]

    def train(compiled: bool) -> Group:
        group = cpu_group(specs, data, vectorized=True, compiled=compiled)
        x, y = data.x_train, data.y_train
        order = epoch_order(0, 0, len(x))
        for lo, hi in batch_bounds(len(x), 16, batch_norm=True):
            group.train_step([x[order[lo:hi]]] * len(specs), y[order[lo:hi]], [s.lr for s in specs])
        return group

    eager, compiled = train(False), train(True)
    assert compiled._bucket_update.compiled
    assert eager.alive == compiled.alive == [True, True, False]
    for k in range(2):
        a = compiled.member_state(k, epoch=1, batch=0)
        assert_states_equal(a, eager.member_state(k, epoch=1, batch=0), exact=False)


def test_a_failed_compile_falls_back_to_eager_saying_so_once(monkeypatch):
    def broken(*args: object) -> None:
        raise RuntimeError("no C++ compiler found")

    monkeypatch.setattr(fused, "_compiled", lambda: broken)
    monkeypatch.setattr(device, "_WARNED", set())
    rule = OPTIMIZERS["adam"]
    update = BucketUpdate(compiled=True)
    got, want = bucket("adam"), bucket("adam")
    with pytest.warns(RuntimeWarning, match=r"torch.compile failed \(RuntimeError: no C\+\+"):
        update(rule, *got, False, False)
    masked_step(rule, *want, False, False)
    assert not update.compiled
    assert torch.equal(got[0], want[0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no second warning, from this or another update
        BucketUpdate(compiled=True)(rule, *bucket("adam", seed=1), False, False)


@pytest.mark.parametrize(
    "setting, device, expected",
    [("auto", "cpu", False), ("auto", "cuda", True), ("on", "cpu", True), ("off", "cuda", False)],
)
def test_study_compile_chooses_the_compiled_update(setting, device, expected):
    assert wants_compile(setting, torch.device(device)) is expected


def test_study_compile_refuses_other_values():
    with pytest.raises(InvalidValue, match=r"study\.compile.*'yes'"):
        wants_compile("yes", torch.device("cpu"))
