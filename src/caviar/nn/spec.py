"""What one population member is: its architecture, its hyperparameters and its seed.

Every hyperparameter the engine understands is declared once, as data, in :data:`HYPERPARAMETERS`
(type, allowed range, default, meaning). The member spec, the study config and the error messages
all read from that table, so a rule is stated in one place.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from caviar.errors import InvalidValue, got
from caviar.seeding import check_seed


@dataclass(frozen=True)
class Hyperparameter:
    """One engine hyperparameter: its type, allowed values and default."""

    name: str
    kind: type
    default: Any
    help: str
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple[Any, ...] | None = None

    def describe(self) -> str:
        """The allowed values in words: ``a number in (0, inf)``."""
        if self.choices is not None:
            return f"one of {list(self.choices)!r}"
        if self.kind is bool:
            return "true or false"
        kind = "an integer" if self.kind is int else "a number"
        if self.low is None and self.high is None:
            return kind
        lo = "-inf" if self.low is None else repr(self.low)
        hi = "inf" if self.high is None else repr(self.high)
        left = "(" if self.low_open or self.low is None else "["
        right = ")" if self.high_open or self.high is None else "]"
        return f"{kind} in {left}{lo}, {hi}{right}"

    def allows(self, value: Any) -> bool:
        if self.choices is not None:
            return any(type(c) is type(value) and c == value for c in self.choices)
        if self.kind is bool:
            return isinstance(value, bool)
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        if self.kind is int and not isinstance(value, int):
            return False
        if not math.isfinite(value):
            return False
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return not (
            self.high is not None and (value >= self.high if self.high_open else value > self.high)
        )

    def check(self, value: Any, owner: str) -> Any:
        """``value`` (ints accepted for floats), or an InvalidValue naming ``owner``."""
        if self.kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not self.allows(value):
            raise InvalidValue(owner, f"{self.name} must be {self.describe()}, {got(value)}")
        return value


def _hp(name: str, kind: type, default: Any, help: str, **rule: Any) -> Hyperparameter:
    return Hyperparameter(name, kind, default, help, **rule)


HYPERPARAMETERS: dict[str, Hyperparameter] = {
    h.name: h
    for h in (
        # architecture: members that differ in activation, batch norm, batch size or optimizer
        # go to different vectorized groups; widths and depths share a group (nn/ragged.py)
        _hp("hidden_units", int, 100, "units in each hidden layer", low=1),
        _hp("n_layers", int, 2, "number of hidden layers", low=1),
        _hp("activation", str, "relu", "hidden activation", choices=("relu", "tanh", "sigmoid")),
        _hp("batch_norm", bool, False, "batch norm on z before the activation (bias dropped)"),
        _hp("batch_size", int, 100, "mini-batch size", low=1),
        _hp(
            "optimizer",
            str,
            "adam",
            "update rule",
            choices=("sgd", "momentum", "rmsprop", "adam"),
        ),
        # per-member hyperparameters: tensors of shape [P] inside a group
        _hp("lr", float, 1e-3, "learning rate alpha", low=0.0, low_open=True),
        _hp("beta1", float, 0.9, "momentum beta / Adam beta1", low=0.0, high=1.0, high_open=True),
        _hp("beta2", float, 0.999, "RMSprop / Adam beta2", low=0.0, high=1.0, high_open=True),
        _hp("eps", float, 1e-8, "RMSprop / Adam epsilon", low=0.0, low_open=True),
        _hp("weight_decay", float, 0.0, "L2 lambda on weight matrices", low=0.0),
        _hp("decoupled_weight_decay", bool, False, "decay weights directly (AdamW) not via loss"),
        _hp("dropout", float, 0.0, "inverted-dropout drop rate", low=0.0, high=1.0, high_open=True),
        _hp("init", str, "he", "weight init", choices=("he", "xavier", "std")),
        _hp("init_std", float, 0.01, "weight std when init = 'std'", low=0.0, low_open=True),
        _hp(
            "lr_decay",
            str,
            "none",
            "learning-rate decay per epoch",
            choices=("none", "inverse_time", "exponential", "step"),
        ),
        _hp("decay_rate", float, 1.0, "inverse_time rate, or factor for exponential/step", low=0.0),
        _hp("decay_every", int, 10, "epochs between steps of 'step' decay", low=1),
        _hp("epochs", int, 10, "passes over the training data", low=1),
        _hp(
            "bn_momentum",
            float,
            0.9,
            "running = m * running + (1 - m) * batch",
            low=0.0,
            high=1.0,
            high_open=True,
        ),
        _hp("bn_eps", float, 1e-5, "batch norm epsilon", low=0.0, low_open=True),
    )
}

#: hyperparameters that decide which vectorized group a member joins
GROUP_KEYS = ("batch_size", "batch_norm", "activation", "optimizer", "bn_eps")


@dataclass(frozen=True)
class MemberSpec:
    """One member's hyperparameters (see :data:`HYPERPARAMETERS`) and its seed.

    The seed fixes the member's initial weights and dropout masks; the data order is shared by
    the population (see :mod:`caviar.nn.randomness`).
    """

    seed: int = 0
    hidden_units: int = 100
    n_layers: int = 2
    activation: str = "relu"
    batch_norm: bool = False
    batch_size: int = 100
    optimizer: str = "adam"
    lr: float = 1e-3
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    weight_decay: float = 0.0
    decoupled_weight_decay: bool = False
    dropout: float = 0.0
    init: str = "he"
    init_std: float = 0.01
    lr_decay: str = "none"
    decay_rate: float = 1.0
    decay_every: int = 10
    epochs: int = 10
    bn_momentum: float = 0.9
    bn_eps: float = 1e-5

    def __post_init__(self) -> None:
        owner = "MemberSpec"
        object.__setattr__(self, "seed", check_seed(owner, self.seed))
        for name, rule in HYPERPARAMETERS.items():
            object.__setattr__(self, name, rule.check(getattr(self, name), owner))
        if self.batch_norm and self.batch_size < 2:
            raise InvalidValue(
                owner,
                f"batch_size must be >= 2 with batch_norm (batch statistics need two), "
                f"{got(self.batch_size)}",
            )
        if self.lr_decay in ("exponential", "step") and not 0.0 < self.decay_rate <= 1.0:
            raise InvalidValue(
                owner,
                f"decay_rate must be in (0, 1] for {self.lr_decay!r} decay, {got(self.decay_rate)}",
            )

    @classmethod
    def from_params(
        cls, params: Mapping[str, Any], *, seed: int, owner: str = "params"
    ) -> MemberSpec:
        """A spec from a configuration; unknown names are an error naming the allowed ones."""
        unknown = sorted(set(params) - set(HYPERPARAMETERS))
        if unknown:
            raise InvalidValue(
                owner,
                f"unknown hyperparameter {unknown[0]!r}; "
                f"the engine knows {sorted(HYPERPARAMETERS)}",
            )
        try:
            return cls(seed=seed, **dict(params))
        except InvalidValue as e:
            raise e.at(owner) from None

    def group_key(self) -> tuple[Any, ...]:
        return tuple(getattr(self, k) for k in GROUP_KEYS)

    def lr_at(self, epoch: int) -> float:
        """The learning rate during ``epoch`` (0-based): the course's decay schedules."""
        if self.lr_decay == "inverse_time":
            return self.lr / (1.0 + self.decay_rate * epoch)
        if self.lr_decay == "exponential":
            return self.lr * self.decay_rate**epoch
        if self.lr_decay == "step":
            return self.lr * self.decay_rate ** (epoch // self.decay_every)
        return self.lr

    def layer_sizes(self, n_inputs: int, n_classes: int) -> list[int]:
        """``[n_inputs, hidden, ..., hidden, n_classes]``."""
        return [n_inputs, *[self.hidden_units] * self.n_layers, n_classes]

    def init_stds(self, n_inputs: int, n_classes: int) -> list[float]:
        """The std of each weight matrix's initial values (He and Xavier use the fan-in)."""
        sizes = self.layer_sizes(n_inputs, n_classes)
        if self.init == "std":
            return [self.init_std] * (len(sizes) - 1)
        gain = 2.0 if self.init == "he" else 1.0
        return [math.sqrt(gain / fan_in) for fan_in in sizes[:-1]]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
