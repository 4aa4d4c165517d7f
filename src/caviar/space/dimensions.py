"""Search dimensions: one small immutable class per scale, each a map to and from the unit interval.

Samplers only ever draw numbers ``u`` in [0, 1]; a dimension turns ``u`` into a value on its own
scale (``from_unit``) and a value back into ``u`` (``to_unit``). That is what makes random search
sample a learning rate per decade and a momentum per power of ten of ``1 - beta``, and what lets
coarse-to-fine zoom into a box in unit coordinates whatever the scale.

Every scaled dimension is a line in a transformed coordinate ``t`` (``t = v`` for linear,
``t = log10 v`` for log, ``t = -log10(1 - v)`` for betas): ``u`` is uniform in ``t``. Integer
dimensions give each integer the bin ``[v - 1/2, v + 1/2]`` in value space, so every integer of a
linear range is equally likely and the end points are not halved. Bounds are closed ``[low, high]``
everywhere, integers included.
"""

from __future__ import annotations

import math
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

from caviar.core.errors import InvalidValue, got
from caviar.core.suggest import did_you_mean

Scalar = str | int | float | bool | None


class Dimension(ABC):
    """A hyperparameter's range and scale; maps values to and from ``u`` in [0, 1]."""

    #: how many unit-cube coordinates the dimension takes (a fixed value takes none)
    n_free: ClassVar[int] = 1
    #: how a plot draws the dimension: linear, log, one_minus_log or categorical
    axis: ClassVar[str] = "linear"

    @abstractmethod
    def from_unit(self, u: float) -> Any:
        """The value at unit coordinate ``u`` (clipped into [0, 1])."""

    @abstractmethod
    def to_unit(self, value: Any) -> float:
        """The unit coordinate of ``value`` (for discrete values: the centre of its bin)."""

    @abstractmethod
    def contains(self, value: Any) -> bool:
        """Whether ``value`` is a legal value of this dimension."""

    @property
    @abstractmethod
    def cardinality(self) -> int | None:
        """The number of distinct values, or None for a continuous range."""

    @abstractmethod
    def to_config(self) -> Any:
        """The config form (a mapping, or the plain value for a fixed one); see ``from_config``."""

    def grid_units(self, n: int) -> tuple[float, ...]:
        """Unit coordinates of an ``n``-point grid over the whole range, end points included.

        A discrete dimension gives at most ``cardinality`` distinct points, so it may return fewer
        than ``n``; the grid sampler warns about that.
        """
        if n < 1:
            raise InvalidValue(type(self).__name__, f"grid points must be >= 1, {got(n)}")
        if self.cardinality is None:
            return (0.5,) if n == 1 else tuple(i / (n - 1) for i in range(n))
        first, last = self.to_unit(self.from_unit(0.0)), self.to_unit(self.from_unit(1.0))
        if n == 1:
            return (self.to_unit(self.from_unit(0.5)),)
        points = [first + (last - first) * i / (n - 1) for i in range(n)]
        return tuple(sorted({self.to_unit(self.from_unit(u)) for u in points}))

    def ends(self) -> tuple[Any, ...]:
        """The values that decide a rule holding on an interval of values (``batch_size >= 2``,
        ``decay_rate <= 1``): a range's two ends; a choice overrides it with its every value,
        since its values are not ordered."""
        low, high = self.from_unit(0.0), self.from_unit(1.0)
        return (low,) if low == high else (low, high)

    def validate(self, value: Any, owner: str) -> Any:
        """``value`` if it is legal here, else an :class:`InvalidValue` naming ``owner``."""
        if not self.contains(value):
            raise InvalidValue(owner, f"must be {self.describe()}, {got(value)}")
        return value

    @abstractmethod
    def describe(self) -> str:
        """The allowed values in words, for error messages: ``a float in [1e-06, 0.01]``."""


def _clip01(u: float) -> float:
    return 0.0 if u < 0.0 else 1.0 if u > 1.0 else float(u)


def _is_real(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def _as_int(owner: str, name: str, x: Any) -> int:
    if isinstance(x, bool) or not (
        isinstance(x, int) or (isinstance(x, float) and math.isfinite(x) and x.is_integer())
    ):
        raise InvalidValue(owner, f"{name} must be an integer, {got(x)}")
    return int(x)


def _as_real(owner: str, name: str, x: Any) -> float:
    if not _is_real(x):
        hint = ""
        if isinstance(x, str) and re.fullmatch(r"[-+]?\d+(\.\d*)?[eE][-+]?\d+", x.strip()):
            hint = " (YAML reads 1e-3 as text: write 1.0e-3)"
        raise InvalidValue(owner, f"{name} must be a finite number, {got(x)}{hint}")
    return float(x)


@dataclass(frozen=True)
class _Scaled(Dimension):
    """A closed range ``[low, high]`` sampled uniformly in a transformed coordinate ``t``."""

    low: Any
    high: Any
    scale: ClassVar[str]
    integer: ClassVar[bool] = False

    def __post_init__(self) -> None:
        owner = type(self).__name__
        convert = _as_int if self.integer else _as_real
        low, high = convert(owner, "low", self.low), convert(owner, "high", self.high)
        self._check_bounds(owner)  # on the values as given, so messages show them unchanged
        object.__setattr__(self, "low", low)
        object.__setattr__(self, "high", high)
        if low > high:
            raise InvalidValue(owner, f"low must be <= high, got low={low!r}, high={high!r}")

    def _check_bounds(self, owner: str) -> None:
        """Scale-specific rules on ``low`` and ``high`` (positivity, (0, 1), ...)."""

    @abstractmethod
    def _t(self, value: float) -> float:
        """Value -> transformed coordinate (increasing)."""

    @abstractmethod
    def _v(self, t: float) -> float:
        """Transformed coordinate -> value (inverse of ``_t``)."""

    @property
    def _t_range(self) -> tuple[float, float]:
        if self.integer:  # integer v owns the value-space bin [v - 1/2, v + 1/2]
            return self._t(self.low - 0.5), self._t(self.high + 0.5)
        return self._t(self.low), self._t(self.high)

    def from_unit(self, u: float) -> Any:
        u = _clip01(u)
        if not self.integer and u in (0.0, 1.0):  # the bounds as written, not 10**log10(low)
            return self.low if u == 0.0 else self.high
        t_lo, t_hi = self._t_range
        value = self._v(t_lo + u * (t_hi - t_lo))
        if self.integer:
            value = math.floor(value + 0.5)
        return min(max(value, self.low), self.high)

    def to_unit(self, value: Any) -> float:
        t_lo, t_hi = self._t_range
        if t_hi == t_lo:
            return 0.5
        if self.integer:
            v = int(value)
            t = 0.5 * (self._t(v - 0.5) + self._t(v + 0.5))
        else:
            t = self._t(float(value))
        return _clip01((t - t_lo) / (t_hi - t_lo))

    def contains(self, value: Any) -> bool:
        if self.integer and (isinstance(value, bool) or not isinstance(value, int)):
            return False
        return _is_real(value) and self.low <= value <= self.high

    @property
    def cardinality(self) -> int | None:
        if self.integer:
            return int(self.high - self.low + 1)
        return 1 if self.low == self.high else None

    def describe(self) -> str:
        kind = "an integer" if self.integer else "a number"
        return f"{kind} in [{self.low!r}, {self.high!r}]"

    def to_config(self) -> dict[str, Any]:
        return {"scale": self.scale, "low": self.low, "high": self.high}


@dataclass(frozen=True)
class Uniform(_Scaled):
    """Linear scale, e.g. a dropout rate in [0, 0.5]."""

    scale: ClassVar[str] = "linear"

    def _t(self, value: float) -> float:
        return value

    def _v(self, t: float) -> float:
        return t


@dataclass(frozen=True)
class IntUniform(_Scaled):
    """Integers on a linear scale, bounds included, e.g. hidden units 50..100 or layers 2..4."""

    scale: ClassVar[str] = "int"
    integer: ClassVar[bool] = True

    def _t(self, value: float) -> float:
        return value

    def _v(self, t: float) -> float:
        return t


@dataclass(frozen=True)
class LogUniform(_Scaled):
    """``10**r`` with r uniform in [log10 low, log10 high]: each decade gets the same share.

    The learning rate in [1e-4, 1] gets a quarter of its samples in each of its four decades.
    """

    scale: ClassVar[str] = "log"
    axis: ClassVar[str] = "log"

    def _check_bounds(self, owner: str) -> None:
        if self.low <= 0:
            raise InvalidValue(owner, f"low must be > 0 on a log scale, {got(self.low)}")

    def _t(self, value: float) -> float:
        return math.log10(value)

    def _v(self, t: float) -> float:
        return float(10.0**t)


@dataclass(frozen=True)
class IntLogUniform(_Scaled):
    """Integers on a log scale, e.g. batch sizes 16..512."""

    scale: ClassVar[str] = "int_log"
    integer: ClassVar[bool] = True
    axis: ClassVar[str] = "log"

    def _check_bounds(self, owner: str) -> None:
        if self.low < 1:
            raise InvalidValue(owner, f"low must be >= 1 on an integer log scale, {got(self.low)}")

    def _t(self, value: float) -> float:
        return math.log10(value)

    def _v(self, t: float) -> float:
        return float(10.0**t)


@dataclass(frozen=True)
class OneMinusLog(_Scaled):
    """Momentum and EMA betas: ``beta = 1 - 10**r``, r uniform in [log10(1-high), log10(1-low)].

    Over [0.9, 0.999] the median is 0.99 and half of the samples lie above it: averaging over
    the last 10 or the last 1000 steps is equally likely, as the course prescribes.
    """

    scale: ClassVar[str] = "one_minus_log"
    axis: ClassVar[str] = "one_minus_log"

    def _check_bounds(self, owner: str) -> None:
        for name, bound in (("low", self.low), ("high", self.high)):
            if not 0.0 < bound < 1.0:
                raise InvalidValue(
                    owner, f"{name} must be in (0, 1) on a 1 - beta scale, {got(bound)}"
                )

    def _t(self, value: float) -> float:
        return -math.log10(1.0 - value)

    def _v(self, t: float) -> float:
        return float(1.0 - 10.0 ** (-t))


def _typed(values: tuple[Scalar, ...]) -> tuple[tuple[str, Scalar], ...]:
    """Values with their types, so that 1, 1.0 and True compare as different."""
    return tuple((type(v).__name__, v) for v in values)


def _check_scalar(owner: str, what: str, value: Any) -> None:
    if value is not None and not isinstance(value, str | int | float | bool):
        raise InvalidValue(owner, f"{what} must be a string, number, boolean or null, {got(value)}")
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidValue(owner, f"{what} must be finite, {got(value)}")


@dataclass(frozen=True)
class Choice(Dimension):
    """One of a few values (activation, optimizer, batch norm on/off), equally likely."""

    options: tuple[Scalar, ...]
    axis: ClassVar[str] = "categorical"

    def __post_init__(self) -> None:
        owner = "Choice"
        if isinstance(self.options, str | bytes) or not hasattr(self.options, "__iter__"):
            raise InvalidValue(owner, f"options must be a list of values, {got(self.options)}")
        options = tuple(self.options)
        if not options:
            raise InvalidValue(owner, f"options must not be empty, {got(list(options))}")
        for option in options:
            _check_scalar(owner, "each option", option)
        keys = [(type(o).__name__, o) for o in options]  # True and 1 are different options
        if len(set(keys)) != len(keys):
            raise InvalidValue(owner, f"options must be distinct, {got(list(options))}")
        object.__setattr__(self, "options", options)

    def __eq__(self, other: object) -> bool:  # typed: Choice([1]) is not Choice([1.0])
        return isinstance(other, Choice) and _typed(self.options) == _typed(other.options)

    def __hash__(self) -> int:
        return hash(_typed(self.options))

    def _index(self, value: Any) -> int:
        for i, option in enumerate(self.options):
            if type(option) is type(value) and option == value:
                return i
        raise InvalidValue("Choice", f"value must be one of {list(self.options)!r}, {got(value)}")

    def from_unit(self, u: float) -> Any:
        k = len(self.options)
        return self.options[min(int(_clip01(u) * k), k - 1)]

    def to_unit(self, value: Any) -> float:
        return (self._index(value) + 0.5) / len(self.options)

    def contains(self, value: Any) -> bool:
        return any(type(o) is type(value) and o == value for o in self.options)

    @property
    def cardinality(self) -> int:
        return len(self.options)

    def ends(self) -> tuple[Any, ...]:
        return self.options

    def describe(self) -> str:
        return f"one of {list(self.options)!r}"

    def to_config(self) -> dict[str, Any]:
        return {"choice": list(self.options)}


@dataclass(frozen=True)
class Fixed(Dimension):
    """A value that is not searched; it takes no unit coordinate."""

    value: Scalar
    n_free: ClassVar[int] = 0

    def __post_init__(self) -> None:
        _check_scalar("Fixed", "value", self.value)

    def __eq__(self, other: object) -> bool:  # typed: Fixed(1) is not Fixed(1.0) or Fixed(True)
        return isinstance(other, Fixed) and _typed((self.value,)) == _typed((other.value,))

    def __hash__(self) -> int:
        return hash(_typed((self.value,)))

    def from_unit(self, u: float) -> Any:
        return self.value

    def to_unit(self, value: Any) -> float:
        return 0.5

    def contains(self, value: Any) -> bool:
        return type(value) is type(self.value) and value == self.value

    @property
    def cardinality(self) -> int:
        return 1

    def describe(self) -> str:
        return f"the fixed value {self.value!r}"

    def to_config(self) -> Any:
        return self.value


SCALES: dict[str, type[_Scaled]] = {
    cls.scale: cls for cls in (Uniform, IntUniform, LogUniform, IntLogUniform, OneMinusLog)
}


def dimension_from_config(spec: Any) -> Dimension:
    """Read one dimension from its config form (the shape a TOML/YAML table gives).

    - ``{scale = "log", low = 1e-6, high = 1e-2}`` (scales: linear, int, log, int_log,
      one_minus_log)
    - ``{choice = ["relu", "tanh"]}``
    - a plain value, or ``{fixed = value}``: not searched.
    """
    if isinstance(spec, Dimension):
        return spec
    if isinstance(spec, list | tuple):
        raise InvalidValue(
            "", f"a list is not a dimension; write {{choice = {list(spec)!r}}}, {got(spec)}"
        )
    if not isinstance(spec, dict):
        return Fixed(spec)
    for form, allowed in (("choice", {"choice"}), ("fixed", {"fixed"})):
        if form in spec:
            _reject_unknown(spec, allowed)
            return Choice(spec["choice"]) if form == "choice" else Fixed(spec["fixed"])
    if "scale" not in spec:
        raise InvalidValue(
            "", f"a dimension needs 'scale' (with low and high), 'choice' or 'fixed', {got(spec)}"
        )
    _reject_unknown(spec, {"scale", "low", "high"})
    scale = spec["scale"]
    if not isinstance(scale, str) or scale not in SCALES:
        raise InvalidValue(
            "", f"scale must be one of {sorted(SCALES)}, {got(scale)}" + did_you_mean(scale, SCALES)
        )
    for bound in ("low", "high"):
        if bound not in spec:
            raise InvalidValue("", f"scale {scale!r} needs '{bound}'")
    return SCALES[scale](spec["low"], spec["high"])


def _reject_unknown(spec: dict[str, Any], allowed: set[str]) -> None:
    unknown = sorted(map(str, set(spec) - allowed))
    if unknown:
        raise InvalidValue(
            "",
            f"unknown key {unknown[0]!r}; allowed here: {sorted(allowed)}"
            + did_you_mean(unknown[0], allowed),
        )
