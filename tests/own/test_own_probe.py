"""Bad input to ``caviar.optimize(build, space, data=...)`` is one clear line before any trial
runs: an InvalidValue naming the bad thing (the builder, the module's output, the loss, the
hyperparameter, the labels, the examples, the optimizer's setting), and no study file written.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import Tensor, nn

import caviar
from caviar.core.errors import InvalidValue
from caviar.own.data import ModuleData
from caviar.search.own_model import cross_entropy, probe
from caviar.space import SearchSpace

CLASSES = 10
X = torch.randn(80, 8, generator=torch.Generator().manual_seed(0))
Y = torch.arange(80) % CLASSES
SPACE: dict[str, Any] = {"width": {"choice": [4, 8]}, "epochs": 1, "batch_size": 16}


def build(params: Mapping[str, Any]) -> nn.Module:
    width = params["width"]
    return nn.Sequential(nn.Linear(8, width), nn.ReLU(), nn.Linear(width, CLASSES))


def build_raises(params: Mapping[str, Any]) -> nn.Module:
    raise RuntimeError("no such layer 'Lineer'")


def build_not_a_module(params: Mapping[str, Any]) -> Any:
    return [nn.Linear(8, params["width"])]


def build_scores_per_batch(params: Mapping[str, Any]) -> nn.Module:
    return nn.Sequential(nn.Linear(8, 1), nn.Flatten(0))  # [B]


def build_three_scores(params: Mapping[str, Any]) -> nn.Module:
    return nn.Linear(8, 3)  # [B, 3] for 10 classes


def build_wrong_input(params: Mapping[str, Any]) -> nn.Module:
    return nn.Linear(5, CLASSES)  # the examples have 8 features


def nan_loss(output: Tensor, target: Tensor) -> Tensor:
    return cross_entropy(output, target) * float("nan")


def per_example_loss(output: Tensor, target: Tensor) -> Tensor:
    return nn.functional.cross_entropy(output, target, reduction="none")


def build_nothing_to_train(params: Mapping[str, Any]) -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.ReLU())


def with_nan(x: Tensor) -> Tensor:
    x = x.clone()
    x[3, 2] = float("nan")
    return x


#: case -> (what differs from a good call, the message's owner, what the message must say)
CASES: dict[str, tuple[dict[str, Any], str, str]] = {
    "builder raises": (
        {"target": build_raises},
        "model",
        r"builder .*build_raises raised RuntimeError: no such layer 'Lineer'",
    ),
    "builder returns no module": (
        {"target": build_not_a_module},
        "model",
        r"build_not_a_module must return a torch nn.Module, got \[Linear",
    ),
    "output [B]": (
        {"target": build_scores_per_batch},
        "model",
        r"scores of shape \[batch, classes\], got \[16\]",
    ),
    "output [B, 3] for 10 classes": (
        {"target": build_three_scores},
        "model",
        r"gives 3 scores per example, but the labels go to 9: it needs \[batch, 10\]",
    ),
    "module fails on the examples": (
        {"target": build_wrong_input},
        "model",
        r"build_wrong_input makes fails on a batch of examples of shape \[16, 8\]",
    ),
    "nothing to train": (
        {"target": build_nothing_to_train},
        "model",
        r"build_nothing_to_train makes has no parameter to train \(none, or all with "
        r"requires_grad=False\): Sequential",
    ),
    "loss is NaN": ({"loss": nan_loss}, "loss", r"returned nan on the first mini-batch"),
    "loss per example": (
        {"loss": per_example_loss},
        "loss",
        r"must return one number \(the batch's mean\), got shape \[16\]",
    ),
    "hyperparameter nothing reads": (
        {"space": {**SPACE, "depth": {"choice": [1, 2]}}},
        "space.depth",
        r"neither the builder .*build nor the optimizer reads it \(the builder read \['width'\]\)",
    ),
    "y not integers": (
        {"data": (X, Y.double() + 0.5)},
        "data",
        r"y must be integer class labels 0, 1, ..., got dtype float64: \[0.5, 1.5",
    ),
    "y negative": (
        {"data": (X, Y - 1)},
        "data",
        r"y must be integer class labels 0, 1, ..., got dtype int64: \[-1, 0",
    ),
    "x with NaN": ({"data": (with_nan(X), Y)}, "data", r"x holds NaN or infinite values"),
    "unknown optimizer": (
        {"space": {**SPACE, "optimizer": "adagrad"}},
        "space.optimizer",
        r"must be one of \['sgd', 'adam', 'adamw', 'rmsprop'\], got 'adagrad'",
    ),
    "negative lr": (
        {"space": {**SPACE, "lr": {"scale": "linear", "low": -0.1, "high": 0.1}}},
        "space.lr",
        r"must be a number in \[0, inf\), got -0.1",
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_bad_input_is_one_clear_line(case: str, tmp_path: Path) -> None:
    change, owner, says = CASES[case]
    call: dict[str, Any] = {"target": build, "space": SPACE, "data": (X, Y), **change}
    target: Callable[..., Any] = call.pop("target")
    with pytest.raises(InvalidValue, match=says) as caught:
        caviar.optimize(
            target,
            call.pop("space"),
            **call,
            trials=2,
            storage=tmp_path / "study.db",
            report=False,
            progress=False,
        )
    assert caught.value.owner == owner
    assert "\n" not in str(caught.value)
    assert not (tmp_path / "study.db").exists()  # said before the study started


def test_a_good_builder_passes_the_probe() -> None:
    """The control: the same call with nothing wrong is not refused."""
    data = ModuleData(X[:64], Y[:64], X[64:], Y[64:], CLASSES)
    space = SearchSpace({**SPACE, "lr": {"scale": "log", "low": 1e-3, "high": 1e-1}})
    probe(build, space, data, cross_entropy, dtype=torch.float32, device=torch.device("cpu"))
