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

from caviar.core.constraints import BOOLEAN, Constraint, integer, number, one_of
from caviar.core.errors import InvalidValue
from caviar.core.seeding import check_seed
from caviar.core.suggest import did_you_mean


@dataclass(frozen=True)
class Hyperparameter:
    """One engine hyperparameter: the rule its values meet, its default and its meaning."""

    name: str
    rule: Constraint
    default: Any
    help: str
    #: whether a running member may change it at an epoch boundary (``caviar panda set``): the
    #: update rule's numbers and the schedule, never the shapes or the group it trains in
    mid_run: bool = False

    def describe(self) -> str:
        """The allowed values in words: ``a number in (0, inf)``."""
        return self.rule.describe()

    def allows(self, value: Any) -> bool:
        return self.rule.allows(value)

    def check(self, value: Any, owner: str) -> Any:
        """``value`` (ints accepted for floats), or an InvalidValue owned by ``owner``."""
        return self.rule.check(value, owner)


def _hp(
    name: str, rule: Constraint, default: Any, help: str, *, mid_run: bool = False
) -> Hyperparameter:
    return Hyperparameter(name, rule, rule.check(default, f"default of {name}"), help, mid_run)


_UNIT = number(0.0, 1.0, high_open=True)  # [0, 1): betas, drop rates, bn momentum
_POSITIVE = number(0.0, low_open=True)

HYPERPARAMETERS: dict[str, Hyperparameter] = {
    h.name: h
    for h in (
        # architecture: members that differ in activation, batch norm, batch size or optimizer
        # go to different vectorized groups; widths and depths share a group (nn/ragged.py)
        _hp("hidden_units", integer(1), 100, "units in each hidden layer"),
        _hp("n_layers", integer(1), 2, "number of hidden layers"),
        _hp("activation", one_of("relu", "tanh", "sigmoid"), "relu", "hidden activation"),
        _hp("batch_norm", BOOLEAN, False, "batch norm on z before the activation (bias dropped)"),
        _hp("batch_size", integer(1), 100, "mini-batch size"),
        _hp("optimizer", one_of("sgd", "momentum", "rmsprop", "adam"), "adam", "update rule"),
        # per-member hyperparameters: tensors of shape [P] inside a group
        _hp("lr", _POSITIVE, 1e-3, "learning rate alpha", mid_run=True),
        _hp("beta1", _UNIT, 0.9, "momentum beta / Adam beta1", mid_run=True),
        _hp("beta2", _UNIT, 0.999, "RMSprop / Adam beta2", mid_run=True),
        _hp("eps", _POSITIVE, 1e-8, "RMSprop / Adam epsilon", mid_run=True),
        _hp("weight_decay", number(0.0), 0.0, "L2 lambda on weight matrices", mid_run=True),
        _hp(
            "decoupled_weight_decay", BOOLEAN, False, "decay weights directly (AdamW), not via loss"
        ),
        _hp("dropout", _UNIT, 0.0, "inverted-dropout drop rate", mid_run=True),
        _hp("init", one_of("he", "xavier", "std"), "he", "weight init"),
        _hp("init_std", _POSITIVE, 0.01, "weight std when init = 'std'"),
        _hp(
            "lr_decay",
            one_of("none", "inverse_time", "exponential", "step"),
            "none",
            "learning-rate decay per epoch",
            mid_run=True,
        ),
        _hp(
            "decay_rate",
            number(0.0),
            1.0,
            "inverse_time rate, or factor for exponential/step",
            mid_run=True,
        ),
        _hp("decay_every", integer(1), 10, "epochs between steps of 'step' decay", mid_run=True),
        _hp("epochs", integer(1), 10, "passes over the training data", mid_run=True),
        _hp("bn_momentum", _UNIT, 0.9, "running = m * running + (1 - m) * batch"),
        _hp("bn_eps", _POSITIVE, 1e-5, "batch norm epsilon"),
    )
}


def _default(name: str) -> Any:
    """The default of ``name``, stated once, in :data:`HYPERPARAMETERS`."""
    return HYPERPARAMETERS[name].default


#: the rules across hyperparameters (:meth:`MemberSpec.__post_init__`), by the names each spans.
#: Each holds on an interval of its number, so a range's two ends and a choice's every value
#: decide it: the config checks those combinations before a study starts, not only a few.
CROSS_RULES: tuple[tuple[str, str], ...] = (
    ("batch_norm", "batch_size"),
    ("lr_decay", "decay_rate"),
)

#: hyperparameters the engine reads only under another's value: name -> (that hyperparameter,
#: the values under which it is read). Setting one where it is never read is a mistake the
#: config refuses (``beta2`` with plain gradient descent).
READ_ONLY_WITH: dict[str, tuple[str, tuple[Any, ...]]] = {
    "beta1": ("optimizer", ("momentum", "adam")),
    "beta2": ("optimizer", ("rmsprop", "adam")),
    "eps": ("optimizer", ("rmsprop", "adam")),
    "init_std": ("init", ("std",)),
    "decay_rate": ("lr_decay", ("inverse_time", "exponential", "step")),
    "decay_every": ("lr_decay", ("step",)),
    "bn_momentum": ("batch_norm", (True,)),
    "bn_eps": ("batch_norm", (True,)),
}

#: hyperparameters a running member may change at an epoch boundary
MID_RUN = tuple(name for name, h in HYPERPARAMETERS.items() if h.mid_run)

#: hyperparameters that decide which vectorized group a member joins
GROUP_KEYS = ("batch_size", "batch_norm", "activation", "optimizer", "bn_eps")


@dataclass(frozen=True)
class MemberSpec:
    """One member's hyperparameters (see :data:`HYPERPARAMETERS`) and its seed.

    The seed fixes the member's initial weights and dropout masks; the data order is shared by
    the population (see :mod:`caviar.nn.randomness`).
    """

    seed: int = 0
    hidden_units: int = _default("hidden_units")
    n_layers: int = _default("n_layers")
    activation: str = _default("activation")
    batch_norm: bool = _default("batch_norm")
    batch_size: int = _default("batch_size")
    optimizer: str = _default("optimizer")
    lr: float = _default("lr")
    beta1: float = _default("beta1")
    beta2: float = _default("beta2")
    eps: float = _default("eps")
    weight_decay: float = _default("weight_decay")
    decoupled_weight_decay: bool = _default("decoupled_weight_decay")
    dropout: float = _default("dropout")
    init: str = _default("init")
    init_std: float = _default("init_std")
    lr_decay: str = _default("lr_decay")
    decay_rate: float = _default("decay_rate")
    decay_every: int = _default("decay_every")
    epochs: int = _default("epochs")
    bn_momentum: float = _default("bn_momentum")
    bn_eps: float = _default("bn_eps")

    def __post_init__(self) -> None:
        owner = "MemberSpec"
        object.__setattr__(self, "seed", check_seed(owner, self.seed))
        for name, rule in HYPERPARAMETERS.items():
            object.__setattr__(self, name, rule.check(getattr(self, name), f"{owner}.{name}"))
        if self.batch_norm:  # batch statistics need two examples
            integer(2).check(self.batch_size, f"{owner}.batch_size (with batch_norm)")
        if self.lr_decay in ("exponential", "step"):
            number(0.0, 1.0, low_open=True).check(
                self.decay_rate, f"{owner}.decay_rate (with {self.lr_decay!r} decay)"
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
                f"the engine knows {sorted(HYPERPARAMETERS)}"
                + did_you_mean(unknown[0], HYPERPARAMETERS),
            )
        try:
            return cls(seed=seed, **dict(params))
        except InvalidValue as e:  # "MemberSpec.lr (...)" -> "<owner>.lr (...)"
            raise e.at(owner + e.owner.removeprefix("MemberSpec")) from None

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
