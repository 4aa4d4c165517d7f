"""What a value must be, declared as data, and the one validator that checks it.

Every rule a user's value meets (a config key, an engine hyperparameter, a sampler's parameter,
a study name) is a :class:`Constraint`. ``check`` returns the value (ints widened to floats where
a number is wanted) or raises :class:`~caviar.core.errors.InvalidValue` in the one error style::

    space.epochs: must be an integer in [1, inf), got -1

``describe`` gives the same words for the config reference (``docs/config.md``), so the rule,
the message and the documentation cannot drift apart.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from caviar.core.errors import InvalidValue, got

KINDS = ("integer", "number", "boolean", "text", "choice")


@dataclass(frozen=True)
class Constraint:
    """One rule: a kind (integer, number, boolean, text, choice) and its bounds or options.

    Bounds are closed unless ``low_open`` / ``high_open``; a missing bound is infinite.
    ``nullable`` also allows None ("nothing"). ``pattern`` (text only) is a regular expression
    the whole value must match, explained by ``words``.
    """

    kind: str
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple[Any, ...] | None = None
    nullable: bool = False
    pattern: str | None = None
    words: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise InvalidValue("Constraint", f"kind must be one of {list(KINDS)}, {got(self.kind)}")
        if (self.kind == "choice") != (self.choices is not None):
            raise InvalidValue("Constraint", "choices go with kind 'choice', and only with it")

    def describe(self) -> str:
        """The allowed values in words: ``an integer in [1, inf)`` (a value that may be left
        out, ``nullable``, is described by what it may be when given)."""
        if self.words is not None:
            return self.words
        if self.kind == "choice":
            return f"one of {list(self.choices or ())!r}"
        if self.kind == "boolean":
            return "true or false"
        if self.kind == "text":
            return "a non-empty string"
        noun = "an integer" if self.kind == "integer" else "a number"
        if self.low is None and self.high is None:
            return "an integer" if self.kind == "integer" else "a finite number"
        left = "(" if self.low_open or self.low is None else "["
        right = ")" if self.high_open or self.high is None else "]"
        return f"{noun} in {left}{_bound(self.low, '-inf')}, {_bound(self.high, 'inf')}{right}"

    def allows(self, value: Any) -> bool:
        """Whether ``value`` meets the rule (bools are not numbers; NaN and inf never are)."""
        if value is None:
            return self.nullable
        if self.kind == "choice":
            return any(type(c) is type(value) and c == value for c in self.choices or ())
        if self.kind == "boolean":
            return isinstance(value, bool)
        if self.kind == "text":
            if not isinstance(value, str) or not value.strip():
                return False
            return self.pattern is None or re.fullmatch(self.pattern, value) is not None
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        if self.kind == "integer" and not isinstance(value, int):
            return False
        if not math.isfinite(value):
            return False
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return not (
            self.high is not None and (value >= self.high if self.high_open else value > self.high)
        )

    def check(self, value: Any, owner: str) -> Any:
        """``value`` if allowed (an int widened to float for a number), else an InvalidValue
        owned by ``owner``: ``<owner>: must be <describe>, got <value>``."""
        if self.kind == "number" and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not self.allows(value):
            raise InvalidValue(owner, f"must be {self.describe()}, {got(value)}")
        return value


def _bound(value: float | None, infinite: str) -> str:
    if value is None:
        return infinite
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def integer(
    low: int | None = None, high: int | None = None, *, nullable: bool = False
) -> Constraint:
    """An integer in ``[low, high]`` (a missing bound is infinite)."""
    return Constraint("integer", low, high, nullable=nullable)


def number(
    low: float | None = None,
    high: float | None = None,
    *,
    low_open: bool = False,
    high_open: bool = False,
    nullable: bool = False,
) -> Constraint:
    """A finite number between ``low`` and ``high`` (closed unless said open)."""
    return Constraint("number", low, high, low_open, high_open, nullable=nullable)


def one_of(*choices: Any, nullable: bool = False) -> Constraint:
    """One of ``choices`` (compared with their type: ``1`` is not ``True``)."""
    return Constraint("choice", choices=tuple(choices), nullable=nullable)


BOOLEAN = Constraint("boolean")
#: a share of something, both ends excluded: a validation fraction, a coarse-to-fine keep rate
FRACTION = Constraint("number", 0.0, 1.0, low_open=True, high_open=True)
TEXT = Constraint("text")
OPTIONAL_TEXT = Constraint("text", nullable=True)

#: a study's name: it names files (reports, kept models) and appears in commands, so it may not
#: start with '.' (hidden files) or '-' (read as an option: ``caviar show -rf``)
STUDY_NAME = Constraint(
    "text",
    pattern=r"[A-Za-z0-9_][A-Za-z0-9._-]{0,99}",
    words="1-100 letters, digits, '.', '_' or '-', starting with a letter, digit or '_'",
)
