"""The settings of a user's model's optimizer and learning-rate schedule, as a search space
names them: which keys each optimizer reads, their defaults (torch.optim's, stated once) and the
rules their values meet. No torch here: the config reads them before anything is trained
(:mod:`caviar.own.optim` holds the update rules).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from caviar.core.constraints import BOOLEAN, Constraint, integer, number, one_of
from caviar.core.errors import InvalidValue, got

#: optimizer name -> the search-space keys it reads
OPTIMIZER_KEYS: dict[str, tuple[str, ...]] = {
    "sgd": ("lr", "momentum", "weight_decay", "nesterov"),
    "adam": ("lr", "beta1", "beta2", "eps", "weight_decay"),
    "adamw": ("lr", "beta1", "beta2", "eps", "weight_decay"),
    "rmsprop": ("lr", "alpha", "eps", "weight_decay", "momentum"),
}
#: the learning-rate schedule's keys, read with every optimizer
SCHEDULE_KEYS: tuple[str, ...] = ("lr_decay", "decay_rate", "decay_every")
#: the schedules: lr at epoch e (0-based) is lr * factor(e)
DECAYS: tuple[str, ...] = ("none", "inverse_time", "exponential", "step")

#: every key's default, stated once (torch.optim's where it has one)
DEFAULTS: dict[str, object] = {
    "optimizer": "adam",
    "lr": 1e-3,
    "momentum": 0.0,
    "weight_decay": 0.0,
    "nesterov": False,
    "beta1": 0.9,
    "beta2": 0.999,
    "eps": 1e-8,
    "alpha": 0.99,
    "lr_decay": "none",
    "decay_rate": 1.0,  # no decay for exponential and step; 1 / (1 + e) for inverse_time
    "decay_every": 1,
}
#: where an optimizer's default differs from :data:`DEFAULTS` (torch.optim.AdamW's decay)
OPTIMIZER_DEFAULTS: dict[str, dict[str, object]] = {"adamw": {"weight_decay": 0.01}}

_BETA = number(0.0, 1.0, high_open=True)
#: the rule each key's values meet: torch.optim's own checks, as data
RULES: dict[str, Constraint] = {
    "optimizer": one_of(*OPTIMIZER_KEYS),
    "lr": number(0.0),
    "momentum": number(0.0),
    "weight_decay": number(0.0),
    "nesterov": BOOLEAN,
    "beta1": _BETA,
    "beta2": _BETA,
    "eps": number(0.0),
    "alpha": number(0.0),
    "lr_decay": one_of(*DECAYS),
    "decay_rate": number(0.0),
    "decay_every": integer(1),
}
#: settings every member of one stack shares (they are part of its group key)
SHARED_KEYS: tuple[str, ...] = ("optimizer", "nesterov", "lr_decay")
_EVERY_KEY = frozenset(RULES)


def split_params(params: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the optimizer's and schedule's settings, checked, defaults filled in; the rest, for
    the model's builder).

    Keys only another optimizer reads (``beta1`` with ``"sgd"``) are in neither: a search space
    may mix optimizers, so they are not an error here; the caller may refuse them.
    """
    name = RULES["optimizer"].check(params.get("optimizer", DEFAULTS["optimizer"]), "optimizer")
    defaults = {**DEFAULTS, **OPTIMIZER_DEFAULTS.get(name, {})}
    settings = {"optimizer": name}
    for key in (*OPTIMIZER_KEYS[name], *SCHEDULE_KEYS):
        settings[key] = RULES[key].check(params[key], key) if key in params else defaults[key]
    if settings.get("nesterov") and settings["momentum"] == 0:
        raise InvalidValue("momentum", f"must be > 0 with nesterov (as torch.optim), {got(0.0)}")
    rest = {k: v for k, v in params.items() if k not in _EVERY_KEY}
    return settings, rest
