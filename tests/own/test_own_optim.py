"""The stacked optimizers (caviar.own.optim) against torch.optim itself, one member at a time.

Each case is three members with their own hyperparameters and their own initial tensors, who
join the stack at different steps: member p first runs ``WARMUP[p]`` steps alone under
torch.optim (and ``LambdaLR``), and the stack resumes it from torch.optim's state. Then the
stack and torch.optim run on the same gradients, the stack is rebuilt (members in another
order) from ``member_state``, and both run on. On the CPU the two agree bitwise, in float64 and
in float32: the stack uses torch.optim's operations in torch.optim's order.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from _own_oracle import factor, torch_optimizer
from torch import Tensor

from caviar.core.errors import InvalidValue
from caviar.own.optim import MemberOptimizer
from caviar.own.settings import split_params

SHAPES = ((4, 3), (3,), (2, 1, 3, 3))
WARMUP = (0, 3, 5)  # steps member p runs alone before it joins
STEPS = 6  # steps in the stack: half before the rebuild, half after
PER_EPOCH = 2  # steps per epoch, for the schedule


def rand(*shape: int, seed: int, dtype: torch.dtype) -> Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


class Alone:
    """One member under torch.optim and LambdaLR, stepped as the stack steps it."""

    def __init__(self, s: dict[str, Any], p: int, dtype: torch.dtype) -> None:
        self.leaves = [
            rand(*shape, seed=100 * p + j, dtype=dtype).requires_grad_()
            for j, shape in enumerate(SHAPES)
        ]
        self.optimizer = torch_optimizer(s, self.leaves, fused_adam=True)
        self.schedule = torch.optim.lr_scheduler.LambdaLR(self.optimizer, factor(s))
        self.done = 0

    @property
    def epoch(self) -> int:
        return self.done // PER_EPOCH

    def step(self, grads: list[Tensor]) -> None:
        for leaf, g in zip(self.leaves, grads, strict=True):
            leaf.grad = g.clone()
        self.optimizer.step()
        self.done += 1
        if self.done % PER_EPOCH == 0:
            self.schedule.step()

    def state(self) -> list[dict[str, Tensor]]:
        return [dict(self.optimizer.state[leaf]) for leaf in self.leaves]


def grads_at(p: int, k: int, dtype: torch.dtype) -> list[Tensor]:
    """Member p's gradients at its k-th step."""
    return [
        rand(*shape, seed=10_000 * p + 10 * k + j, dtype=dtype) for j, shape in enumerate(SHAPES)
    ]


def stacked(grads: list[list[Tensor]]) -> list[Tensor]:
    """Each member's gradients (a list per member) stacked per leaf."""
    return [torch.stack(g) for g in zip(*grads, strict=True)]


def stack(
    name: str, settings: list[dict[str, Any]], leaves: list[list[Tensor]], states: list[Any]
) -> tuple[MemberOptimizer, list[Tensor]]:
    params = [torch.stack([m[j].detach() for m in leaves]) for j in range(len(SHAPES))]
    return MemberOptimizer(name, settings, params, state=states), params


def run_case(name: str, members: list[dict[str, Any]], dtype: torch.dtype) -> None:
    settings = [split_params({"optimizer": name, **m})[0] for m in members]
    alone = [Alone(s, p, dtype) for p, s in enumerate(settings)]
    for p, a in enumerate(alone):
        for k in range(WARMUP[p]):
            a.step(grads_at(p, k, dtype))
    order = [0, 1, 2]
    optimizer, params = stack(name, settings, [a.leaves for a in alone], [a.state() for a in alone])
    for k in range(STEPS):
        if k == STEPS // 2:  # members move: a new stack, another order, their own saved state
            was, order = order, [2, 0, 1]
            optimizer, params = stack(
                name,
                [settings[p] for p in order],
                [[leaf[was.index(p)] for leaf in params] for p in order],
                [optimizer.member_state(was.index(p)) for p in order],
            )
        grads = [grads_at(p, alone[p].done, dtype) for p in order]
        epochs = [alone[p].epoch for p in order]
        optimizer.step(stacked(grads), epochs)
        for p in order:
            alone[p].step(grads_at(p, alone[p].done, dtype))
        for slot, p in enumerate(order):
            for j, leaf in enumerate(alone[p].leaves):
                assert torch.equal(params[j][slot], leaf.detach()), (name, p, k, j)


LR = ({"lr": 0.1}, {"lr": 0.03}, {"lr": 0.5})
#: case name -> (optimizer, each member's hyperparameters)
CASES: dict[str, tuple[str, list[dict[str, Any]]]] = {
    "sgd plain": ("sgd", [*LR]),
    "sgd momentum 0 and > 0, decay 0 and > 0": (
        "sgd",
        [
            {"lr": 0.1, "momentum": 0.0, "weight_decay": 0.1},
            {"lr": 0.03, "momentum": 0.9},
            {"lr": 0.5, "momentum": 0.5, "weight_decay": 0.01},
        ],
    ),
    "sgd nesterov": (
        "sgd",
        [
            {"lr": 0.1, "momentum": 0.9, "nesterov": True},
            {"lr": 0.03, "momentum": 0.5, "nesterov": True, "weight_decay": 0.1},
            {"lr": 0.5, "momentum": 0.99, "nesterov": True},
        ],
    ),
    "adam defaults": ("adam", [{}, {}, {}]),
    "adam, decay 0 and > 0": (
        "adam",
        [
            {"lr": 0.1, "beta1": 0.5, "beta2": 0.9, "eps": 1e-3},
            {"lr": 0.03, "weight_decay": 0.1},
            {"lr": 0.5, "beta1": 0.0, "beta2": 0.5, "eps": 0.1, "weight_decay": 0.01},
        ],
    ),
    "adamw, decay default, 0 and > 0": (
        "adamw",
        [
            {"lr": 0.1, "beta1": 0.5, "beta2": 0.9},
            {"lr": 0.03, "weight_decay": 0.0},
            {"lr": 0.5, "beta1": 0.0, "eps": 0.1, "weight_decay": 0.3},
        ],
    ),
    "rmsprop plain": ("rmsprop", [*LR]),
    "rmsprop momentum 0 and > 0, decay 0 and > 0": (
        "rmsprop",
        [
            {"lr": 0.1, "alpha": 0.9, "momentum": 0.0, "weight_decay": 0.1},
            {"lr": 0.03, "momentum": 0.9, "eps": 1e-3},
            {"lr": 0.5, "alpha": 0.5, "momentum": 0.5, "weight_decay": 0.01},
        ],
    ),
}
for decay in ("inverse_time", "exponential", "step"):
    for opt in ("sgd", "adam"):
        CASES[f"{opt} with {decay} decay"] = (
            opt,
            [
                {**LR[0], "lr_decay": decay, "decay_rate": 0.5, "momentum": 0.9},
                {**LR[1], "lr_decay": decay, "decay_rate": 0.9, "decay_every": 2},
                {**LR[2], "lr_decay": decay, "decay_rate": 0.3, "decay_every": 3},
            ],
        )
        if opt == "adam":  # momentum is not adam's: dropped by split_params
            CASES[f"{opt} with {decay} decay"][1][0].pop("momentum")


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("case", list(CASES))
def test_each_member_moves_as_torch_optim_alone(case: str, dtype: torch.dtype) -> None:
    name, members = CASES[case]
    run_case(name, members, dtype)


def test_a_frozen_member_is_left_exactly_as_it_was() -> None:
    name = "adam"
    settings = [split_params({"optimizer": name, "lr": lr})[0] for lr in (0.1, 0.2, 0.3)]
    alone = [Alone(s, p, torch.float32) for p, s in enumerate(settings)]
    optimizer, params = stack(name, settings, [a.leaves for a in alone], [None, None, None])
    optimizer.step(stacked([grads_at(p, 0, torch.float32) for p in range(3)]), [0, 0, 0])
    for p, a in enumerate(alone):
        a.step(grads_at(p, 0, torch.float32))
    optimizer.freeze(1)
    before = [p[1].clone() for p in params], optimizer.member_state(1)
    for k in range(1, 4):
        grads = [grads_at(p, k, torch.float32) for p in range(3)]
        grads[1] = [torch.full_like(g, float("nan")) for g in grads[1]]  # it diverged
        optimizer.step(stacked(grads), [0, 0, 0])
        for p in (0, 2):
            alone[p].step(grads[p])
    for j in range(len(SHAPES)):
        assert torch.equal(params[j][1], before[0][j])
        for p in (0, 2):
            assert torch.equal(params[j][p], alone[p].leaves[j].detach())
    for leaf, kept in zip(optimizer.member_state(1), before[1], strict=True):
        assert leaf.keys() == kept.keys()
        assert all(torch.equal(leaf[key], kept[key]) for key in leaf)


def test_split_params_fills_defaults_and_hands_the_rest_to_the_builder() -> None:
    settings, rest = split_params({"optimizer": "adamw", "lr": 0.1, "width": 64, "momentum": 0.9})
    assert settings == {
        "optimizer": "adamw",
        "lr": 0.1,
        "beta1": 0.9,
        "beta2": 0.999,
        "eps": 1e-8,
        "weight_decay": 0.01,
        "lr_decay": "none",
        "decay_rate": 1.0,
        "decay_every": 1,
    }
    assert rest == {"width": 64}  # momentum: sgd's and rmsprop's, not adamw's, so in neither
    assert split_params({})[0]["optimizer"] == "adam"


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"optimizer": "adagrad"}, r"^optimizer: must be one of \['sgd', .*got 'adagrad'"),
        ({"optimizer": "sgd", "lr": -0.1}, r"^lr: must be a number in \[0, inf\), got -0.1$"),
        ({"optimizer": "adam", "beta2": 1.0}, r"^beta2: must be a number in \[0, 1\), got 1.0$"),
        ({"lr_decay": "cosine"}, r"^lr_decay: must be one of .*got 'cosine'"),
        ({"decay_every": 0}, r"^decay_every: must be an integer in \[1, inf\), got 0$"),
        ({"optimizer": "sgd", "nesterov": True}, r"^momentum: must be > 0 with nesterov"),
    ],
)
def test_split_params_names_the_bad_value(params: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidValue, match=message):
        split_params(params)


def test_members_of_one_stack_share_the_group_keys() -> None:
    settings = [split_params({"lr_decay": d})[0] for d in ("none", "step")]
    with pytest.raises(InvalidValue, match=r"^lr_decay: the members of one stack share it"):
        MemberOptimizer("adam", settings, [torch.zeros(2, 3)])
