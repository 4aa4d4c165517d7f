"""What a value must be, declared as data, and the one validator that checks it.

Every rule a user's value meets (a config key, an engine hyperparameter, a sampler's parameter,
a control of a panda run, a study name) is a :class:`Constraint`, of one of these kinds:

- :class:`Scalar`: an integer, a number, true/false, a text or one of some choices
  (:func:`integer`, :func:`number`, :data:`BOOLEAN`, :data:`TEXT`, :func:`one_of`);
- :class:`ListOf`: a list whose items all meet one rule (``search.per_round``);
- :class:`TableOf`: a table of names whose values all meet one rule (``points_per_dim`` by name);
- :class:`Record`: a table of known keys, each with a rule of its own (``search.halving``);
- :class:`AnyOf`: a value that meets any of several rules (``'auto'`` or a count);
- :class:`Alias`: a word that stands for a value (``'auto'`` for ``None``).

``check`` returns the value as read (an int widened to a float where a number is wanted, a list
made a tuple, an alias its meaning) or raises :class:`~caviar.core.errors.InvalidValue` in the
one error style, naming the owner, what is allowed and the bad value::

    space.epochs: must be an integer in [1, inf), got -1
    search.per_round[1]: must be an integer in [1, inf), got 0

``describe`` gives the same words for the config reference (``docs/config.md``), so the rule,
the message and the documentation cannot drift apart.
"""

from __future__ import annotations

import copy
import math
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from caviar.core.errors import InvalidValue, got
from caviar.core.suggest import did_you_mean

#: the kinds of a :class:`Scalar`
KINDS = ("integer", "number", "boolean", "text", "choice")


class Constraint(ABC):
    """A rule a value must meet: its words (``describe``) and its check (``check``)."""

    #: which kind of rule: one of :data:`KINDS`, or list, table, record, any or alias
    kind: str
    #: words of its own for the allowed values, where its kind's would not say it as well
    words: str | None

    def describe(self) -> str:
        """The allowed values in words: ``an integer in [1, inf)``."""
        return self.words if self.words is not None else self.kind_words()

    @abstractmethod
    def kind_words(self) -> str:
        """The allowed values in the words of the kind, from its bounds, items or options."""

    @abstractmethod
    def check(self, value: Any, owner: str) -> Any:
        """``value`` as read if allowed, else an InvalidValue owned by ``owner`` (by
        ``owner[i]`` or ``owner.key`` where one item of a list or table is at fault)."""

    def allows(self, value: Any) -> bool:
        """Whether ``check`` accepts ``value``."""
        try:
            self.check(value, "")
        except InvalidValue:
            return False
        return True

    def fits(self, value: Any) -> bool:
        """Whether ``value`` has this rule's shape (a list for a list, a table for a table), so
        that its refusal, naming the bad item, says more than the words of an :class:`AnyOf`."""
        return False

    def refusal(self, value: Any, owner: str) -> InvalidValue:
        """``<owner>: must be <describe>, got <value>``."""
        return InvalidValue(owner, f"must be {self.describe()}, {got(value)}")


@dataclass(frozen=True)
class Scalar(Constraint):
    """One plain value: a kind of :data:`KINDS` and its bounds or options.

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
            raise InvalidValue("Scalar", f"kind must be one of {list(KINDS)}, {got(self.kind)}")
        if (self.kind == "choice") != (self.choices is not None):
            raise InvalidValue("Scalar", "choices go with kind 'choice', and only with it")

    def kind_words(self) -> str:
        """``an integer in [1, inf)`` (a value that may be left out, ``nullable``, is described
        by what it may be when given)."""
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

    def refusal(self, value: Any, owner: str) -> InvalidValue:
        """As :meth:`Constraint.refusal`; a mistyped choice also names the nearest one."""
        refused = super().refusal(value, owner)
        if self.kind != "choice":
            return refused
        return InvalidValue(owner, refused.reason + did_you_mean(value, self.choices or ()))

    def allows(self, value: Any) -> bool:
        """Whether ``value`` meets the rule (bools are not numbers; NaN and inf never are)."""
        if value is None:
            return self.nullable
        if self.kind == "choice":
            return any(_same(value, c) for c in self.choices or ())
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
            raise self.refusal(value, owner)
        return value


@dataclass(frozen=True)
class ListOf(Constraint):
    """A list (or tuple) of at least ``min_len`` items, each meeting ``item``; read as a tuple.

    With ``sep``, one text is read as the list of its parts (``'cuda:0, cuda:1'``; a blank
    text is the empty list). A bad item is named by its index: ``search.per_round[1]``.
    """

    item: Constraint
    min_len: int = 1
    sep: str | None = None
    words: str | None = None
    kind: str = field(default="list", init=False, repr=False)

    def kind_words(self) -> str:
        size = {0: "a list", 1: "a non-empty list"}.get(self.min_len)
        return f"{size or f'a list of {self.min_len} or more'}, each {self.item.describe()}"

    def check(self, value: Any, owner: str) -> tuple[Any, ...]:
        items = self._items(value)
        if items is None or len(items) < self.min_len:
            raise self.refusal(value, owner)
        return tuple(self.item.check(v, f"{owner}[{i}]") for i, v in enumerate(items))

    def fits(self, value: Any) -> bool:
        return self._items(value) is not None

    def _items(self, value: Any) -> list[Any] | None:
        if isinstance(value, str) and self.sep is not None:
            return [part.strip() for part in value.split(self.sep)] if value.strip() else []
        return list(value) if isinstance(value, list | tuple) else None


@dataclass(frozen=True)
class TableOf(Constraint):
    """A table (mapping) of names, each value meeting ``values`` (without it: any value, for its
    reader to check); read as a dict. A bad value is named by its key: ``points_per_dim.lr``."""

    values: Constraint | None = None
    words: str | None = None
    kind: str = field(default="table", init=False, repr=False)

    def kind_words(self) -> str:
        if self.values is None:
            return "a table of names to values"
        return f"a table of names, each to {self.values.describe()}"

    def check(self, value: Any, owner: str) -> dict[str, Any]:
        if not isinstance(value, Mapping):
            raise self.refusal(value, owner)
        if self.values is None:
            return {str(k): v for k, v in value.items()}
        return {str(k): self.values.check(v, f"{owner}.{k}") for k, v in value.items()}

    def fits(self, value: Any) -> bool:
        return isinstance(value, Mapping)


@dataclass(frozen=True)
class Record(Constraint):
    """A table of the keys of ``keys``, each value meeting its own rule; keys left out take
    ``defaults`` where it has them (else they stay out). Read as a dict in the order of ``keys``.

    An unknown key is refused by name: ``search.halving.rungs: unknown key; halving takes
    ['eta', 'min_epochs']``.
    """

    keys: Mapping[str, Constraint]
    defaults: Mapping[str, Any] = field(default_factory=dict)
    words: str | None = None
    kind: str = field(default="record", init=False, repr=False)

    def kind_words(self) -> str:
        return f"a table of the keys {sorted(self.keys)}"

    def check(self, value: Any, owner: str) -> dict[str, Any]:
        if not isinstance(value, Mapping):
            raise self.refusal(value, owner)
        unknown = sorted(map(str, set(value) - set(self.keys)))
        if unknown:
            name = owner.rsplit(".", 1)[-1]
            raise InvalidValue(
                f"{owner}.{unknown[0]}",
                f"unknown key; {name} takes {sorted(self.keys)}"
                + did_you_mean(unknown[0], self.keys),
            )
        return {
            key: rule.check(value[key], f"{owner}.{key}") if key in value else self.defaults[key]
            for key, rule in self.keys.items()
            if key in value or key in self.defaults
        }

    def fits(self, value: Any) -> bool:
        return isinstance(value, Mapping)


@dataclass(frozen=True)
class AnyOf(Constraint):
    """A value meeting any of ``alternatives``, read by the first that allows it.

    A refused value is named in the words of the whole (``must be 'auto' or an integer in
    [1, inf)``), unless it has the shape of a list or table among the alternatives: then that
    one's refusal names the bad item (``search.devices[1]``). ``nullable`` also allows None.
    """

    alternatives: tuple[Constraint, ...]
    words: str | None = None
    nullable: bool = False
    kind: str = field(default="any", init=False, repr=False)

    def kind_words(self) -> str:
        return " or ".join(rule.describe() for rule in self.alternatives)

    def check(self, value: Any, owner: str) -> Any:
        if value is None and self.nullable:
            return None
        for rule in self.alternatives:
            try:
                return rule.check(value, owner)
            except InvalidValue:
                continue
        for rule in self.alternatives:
            if rule.fits(value):
                rule.check(value, owner)  # raises, naming the bad item
        raise self.refusal(value, owner)

    def fits(self, value: Any) -> bool:
        return any(rule.fits(value) for rule in self.alternatives)


@dataclass(frozen=True)
class Alias(Constraint):
    """A word that stands for a value: ``'auto'`` for None, ``true`` for a table of defaults.

    Allows the word (a text with white space around it ignored) and the value it stands for, so
    that a stored config reads back; reads either as the value (``means``, a fresh copy).
    """

    word: Any
    means: Any
    words: str | None = None
    kind: str = field(default="alias", init=False, repr=False)

    def kind_words(self) -> str:
        if isinstance(self.word, bool):
            return "true" if self.word else "false"
        return repr(self.word)

    def check(self, value: Any, owner: str) -> Any:
        given = value.strip() if isinstance(value, str) else value
        if not (_same(given, self.word) or _same(value, self.means)):
            raise self.refusal(value, owner)
        return copy.deepcopy(self.means)


def _same(value: Any, expected: Any) -> bool:
    """Equal and of the same type (``1`` is not ``True``), lists and tuples alike."""
    if isinstance(expected, list | tuple):
        return (
            isinstance(value, list | tuple)
            and len(value) == len(expected)
            and all(_same(v, e) for v, e in zip(value, expected, strict=True))
        )
    if isinstance(expected, Mapping):
        return (
            isinstance(value, Mapping)
            and set(value) == set(expected)
            and all(_same(value[k], expected[k]) for k in expected)
        )
    return type(value) is type(expected) and value == expected


def _bound(value: float | None, infinite: str) -> str:
    if value is None:
        return infinite
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def integer(low: int | None = None, high: int | None = None, *, nullable: bool = False) -> Scalar:
    """An integer in ``[low, high]`` (a missing bound is infinite)."""
    return Scalar("integer", low, high, nullable=nullable)


def number(
    low: float | None = None,
    high: float | None = None,
    *,
    low_open: bool = False,
    high_open: bool = False,
    nullable: bool = False,
) -> Scalar:
    """A finite number between ``low`` and ``high`` (closed unless said open)."""
    return Scalar("number", low, high, low_open, high_open, nullable=nullable)


def one_of(*choices: Any, nullable: bool = False) -> Scalar:
    """One of ``choices`` (compared with their type: ``1`` is not ``True``)."""
    return Scalar("choice", choices=tuple(choices), nullable=nullable)


def any_of(*alternatives: Constraint, words: str | None = None) -> AnyOf:
    """A value meeting any of ``alternatives`` (see :class:`AnyOf`)."""
    return AnyOf(alternatives, words)


def optional(rule: Constraint) -> AnyOf:
    """``rule``, or nothing (None)."""
    return AnyOf((rule,), nullable=True)


BOOLEAN = Scalar("boolean")
#: a share of something, both ends excluded: a validation fraction, a coarse-to-fine keep rate
FRACTION = Scalar("number", 0.0, 1.0, low_open=True, high_open=True)
TEXT = Scalar("text")
OPTIONAL_TEXT = Scalar("text", nullable=True)

#: a study's name: it names files (reports, kept models) and appears in commands, so it may not
#: start with '.' (hidden files) or '-' (read as an option: ``caviar show -rf``)
STUDY_NAME = Scalar(
    "text",
    pattern=r"[A-Za-z0-9_][A-Za-z0-9._-]{0,99}",
    words="1-100 letters, digits, '.', '_' or '-', starting with a letter, digit or '_'",
)
