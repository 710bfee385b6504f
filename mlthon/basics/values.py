"""Exact decimal values: :class:`Price` and :class:`Qty`.

Both wrap a :class:`decimal.Decimal` and are immutable. They are built from ``str``, ``int``,
``Decimal`` or another value of the same family, never from ``float``: a float has already lost the
exact value. NaN and infinities are refused.

Arithmetic between two values of the same class keeps the class (``Price + Price -> Price``);
multiplying or dividing by a plain number keeps it too; anything else gives a ``Decimal``
(``Price * Qty`` is a notional, not a price). Comparisons work against the same class, ``Decimal``
and ``int``.

They are hand-written slotted classes rather than attrs classes because the market-data path builds
millions of them; the cost of attrs' frozen ``__setattr__`` guard shows there.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any, Self, SupportsIndex, TypeVar

from mlthon.basics.sanity import MAX_ABS, MAX_DECIMALS, decimal_problem

_DISPLAY = Decimal("0.00000001")
_CACHE_MAX = 200_000

_Number = int | Decimal
_V = TypeVar("_V")


def to_decimal(value: object, what: str = "value") -> Decimal:
    """Convert ``value`` (str, int, Decimal, Price or Qty) to a finite Decimal.

    Raises:
        TypeError: ``value`` is a float, a bool or of another type.
        ValueError: ``value`` is not a number, or is NaN or infinite.
    """
    if isinstance(value, Decimal):
        d = value
    elif isinstance(value, _DecimalValue):
        return value._v
    elif isinstance(value, str):
        try:
            d = Decimal(value.strip())
        except InvalidOperation:
            raise ValueError(f"{what} {value!r} is not a decimal number") from None
    elif isinstance(value, bool):
        raise TypeError(f"{what} must be a str, int or Decimal, not bool ({value!r})")
    elif isinstance(value, int):
        return Decimal(value)
    elif isinstance(value, float):
        raise TypeError(
            f"{what} must be exact: pass a str or Decimal, not the float {value!r} "
            f"(e.g. '{value!r}')"
        )
    else:
        raise TypeError(f"{what} must be a str, int or Decimal, not {type(value).__name__}")
    if not d.is_finite():
        raise ValueError(f"{what} must be finite, got {value!r}")
    return d


class _DecimalValue:
    __slots__ = ("_v",)
    _v: Decimal

    def __init__(self, value: object) -> None:
        object.__setattr__(self, "_v", to_decimal(value, type(self).__name__))

    @classmethod
    def _make(cls, d: Decimal) -> Self:
        obj = object.__new__(cls)
        object.__setattr__(obj, "_v", d)
        return obj

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (str(self._v),))

    # --- conversions -------------------------------------------------------------------------
    @property
    def value(self) -> Decimal:
        """The exact Decimal."""
        return self._v

    def as_decimal(self) -> Decimal:
        """The exact Decimal."""
        return self._v

    def __str__(self) -> str:
        return format(self._v, "f")

    def __repr__(self) -> str:
        shown = self._v.quantize(_DISPLAY) if self._v == self._v.quantize(_DISPLAY) else self._v
        return f"{type(self).__name__}('{shown:f}')"

    def __format__(self, spec: str) -> str:
        return format(self._v, spec)

    def __float__(self) -> float:
        return float(self._v)

    def __int__(self) -> int:
        return int(self._v)

    def __bool__(self) -> bool:
        return bool(self._v)

    def __hash__(self) -> int:
        return hash(self._v)

    # --- comparisons -------------------------------------------------------------------------
    def _other(self, other: object) -> Decimal | None:
        if type(other) is type(self):
            return other._v  # type: ignore[attr-defined, no-any-return]
        if isinstance(other, Decimal):
            return other
        if isinstance(other, int) and not isinstance(other, bool):
            return Decimal(other)
        return None

    def __eq__(self, other: object) -> bool:
        o = self._other(other)
        if o is None:
            return NotImplemented
        return self._v == o

    def __lt__(self, other: object) -> bool:
        o = self._other(other)
        if o is None:
            return NotImplemented
        return self._v < o

    def __le__(self, other: object) -> bool:
        o = self._other(other)
        if o is None:
            return NotImplemented
        return self._v <= o

    def __gt__(self, other: object) -> bool:
        o = self._other(other)
        if o is None:
            return NotImplemented
        return self._v > o

    def __ge__(self, other: object) -> bool:
        o = self._other(other)
        if o is None:
            return NotImplemented
        return self._v >= o

    # --- arithmetic --------------------------------------------------------------------------
    def __neg__(self) -> Self:
        return self._make(-self._v)

    def __pos__(self) -> Self:
        return self

    def __abs__(self) -> Self:
        return self._make(abs(self._v))

    def __add__(self, other: Self) -> Self:
        if type(other) is not type(self):
            return NotImplemented
        return self._make(self._v + other._v)

    def __sub__(self, other: Self) -> Self:
        if type(other) is not type(self):
            return NotImplemented
        return self._make(self._v - other._v)

    def __mul__(self, other: _Number) -> Self:
        if isinstance(other, bool) or not isinstance(other, int | Decimal):
            return NotImplemented
        return self._make(self._v * other)

    __rmul__ = __mul__

    def __truediv__(self, other: _Number) -> Self:
        if isinstance(other, bool) or not isinstance(other, int | Decimal):
            return NotImplemented
        return self._make(self._v / other)

    def __round__(self, ndigits: SupportsIndex | None = None) -> Self:
        return self._make(round(self._v, 0 if ndigits is None else ndigits))

    # --- grid helpers ------------------------------------------------------------------------
    def is_multiple_of(self, step: Decimal) -> bool:
        """True if the value lies on the grid of ``step`` (a tick size or a lot size)."""
        if not step:
            return True
        return (self._v % step) == 0

    def round_to(self, step: Decimal, rounding: str = "ROUND_HALF_EVEN") -> Self:
        """The nearest multiple of ``step`` (for example the tick size), as the same class."""
        if not step:
            return self
        n = (self._v / step).quantize(Decimal(1), rounding=rounding)
        return self._make((n * step).quantize(step))

    def to_ticks(self, step: Decimal) -> int:
        """The value as a whole number of ``step``; raises ValueError if it is off the grid."""
        n, rem = divmod(self._v, step)
        if rem:
            raise ValueError(f"{self} is not a multiple of {step}")
        return int(n)

    @classmethod
    def from_ticks(cls, ticks: int, step: Decimal) -> Self:
        """Build the value ``ticks * step`` exactly."""
        return cls._make(ticks * step)


class Price(_DecimalValue):
    """An exact price. ``Price('9226.5')`` — never from a float."""

    __slots__ = ()


class Qty(_DecimalValue):
    """An exact quantity. ``Qty('0.014')`` — never from a float."""

    __slots__ = ()


def _grid_limit(step: Decimal) -> tuple[int, bool]:
    """The first multiple of ``step`` that is not sane (at or past the sanity bound), and whether
    every multiple below it is (``step`` has at most the decimals a value may have)."""
    sign, digits, exp = step.as_tuple()
    if not isinstance(exp, int) or exp < -MAX_DECIMALS or sign or not any(digits):
        return 0, False
    coeff = int("".join(map(str, digits)))
    bound = int(MAX_ABS)  # exact integer arithmetic: ceil(bound / step)
    if exp >= 0:
        return -(-bound // (coeff * 10**exp)), True
    return -(-(bound * 10**-exp) // coeff), True


class TickPrices(dict[int, Price]):
    """The :class:`Price` of each tick of one grid, made once: ``prices[tick]``.

    Market data travel in integer ticks (``price = tick * step``); this is where a strategy's
    ``Price`` objects come from, one per tick value, shared by every callback and book read. A
    tick seen for the first time is checked (the rule of
    :func:`~mlthon.basics.sanity.decimal_problem`: a price is > 0 and in range); one that is not
    sane raises ValueError and is not kept.

    Example::

        prices = TickPrices(Decimal("0.10"))
        prices[600003]   # -> Price('60000.30'), the same object on every later lookup
    """

    __slots__ = ("_fine", "_limit", "step")

    def __init__(self, step: Decimal) -> None:
        super().__init__()
        self.step = step
        self._limit, self._fine = _grid_limit(step)

    def __missing__(self, tick: int) -> Price:
        d = tick * self.step
        if not (self._fine and 0 < tick < self._limit):  # the common case needs no more
            why = decimal_problem(d, positive=True)
            if why is not None:
                raise ValueError(f"market-data price (tick {tick}) {why}")
        if len(self) >= _CACHE_MAX:
            self.clear()
        p = self[tick] = Price._make(d)
        return p


class LotQtys(dict[int, Qty]):
    """The :class:`Qty` of each lot count of one grid, made once: ``qtys[lots]`` (see
    :class:`TickPrices`; a size is >= 0 and in range)."""

    __slots__ = ("_fine", "_limit", "step")

    def __init__(self, step: Decimal) -> None:
        super().__init__()
        self.step = step
        self._limit, self._fine = _grid_limit(step)

    def __missing__(self, lots: int) -> Qty:
        d = lots * self.step
        if not (self._fine and 0 <= lots < self._limit):
            why = decimal_problem(d)
            if why is not None:
                raise ValueError(f"market-data size ({lots} lots) {why}")
        if len(self) >= _CACHE_MAX:
            self.clear()
        q = self[lots] = Qty._make(d)
        return q


class TextValues(dict[str, _V]):
    """The value of each text, made once: ``TextValues(Price)["60000.1"]`` (a ``Price``).

    For texts that repeat, such as the prices and sizes of a gateway's reports: a hit costs a
    dict lookup where ``Price("60000.1")`` parses the text (some 7,000 instructions). A text is
    converted as the class converts it (a bad one raises and is not kept); the values are
    immutable, so sharing them changes nothing."""

    __slots__ = ("kind",)

    def __init__(self, kind: Callable[[str], _V]) -> None:
        super().__init__()
        self.kind = kind

    def __missing__(self, text: str) -> _V:
        value = self.kind(text)
        if len(self) >= _CACHE_MAX:
            self.clear()
        self[text] = value
        return value
