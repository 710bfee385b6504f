"""Venue text to integer ticks and lots, once, at the feed: one :class:`Grid` per instrument.

A venue sends prices and sizes as decimal text (``"61800.30"``, ``"0.014"``); everything after the
feed engine works in integer ticks and lots of the instrument (``price = ticks * tick_size``,
``size = lots * lot_size``). The conversion is exact and cheap:

* a dict per instrument maps each text already seen to its ticks (lots): prices near the touch and
  common sizes repeat all the time, so almost every level is one lookup;
* a text seen for the first time is parsed by hand against the grid's decimal places (the digits
  before and after the point as one integer of the grid's smallest unit, :func:`scaled`), which
  is exact; anything that is not plain decimal text with at most the grid's decimals (an exponent,
  a sign, ``NaN``, a 10 kB number, extra decimals) goes to the slow path, which checks it with
  :func:`~mlthon.basics.sanity.decimal_problem` and converts it with ``Decimal``.

``bench/bench_feed.py --conversions`` measures the options on a real capture.

Values that are not sane (``NaN``, ``1e999999``, a price <= 0, a negative size) raise
:class:`BadValue` and never become ticks. A price off the tick grid raises :class:`OffGrid` (the
feed counts it, reports it and leaves the level out); a size off the lot grid is rounded down to
whole lots, as the simulated exchange always did, but never to zero (a level less than a lot
deep is one lot: it is there), and reported (:meth:`Grid.lots_slow` says so).
Neither off-grid text is cached, so each occurrence is counted.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from mlthon.basics.instrument import Instrument
from mlthon.basics.sanity import decimal_problem

_CACHE_MAX = 200_000
_MAX_WHOLE = 15  # digits before the point: below the sanity bound of 1e15
_MAX_FRAC = 18  # digits after the point (sanity: at most 18 decimals)


class BadValue(ValueError):
    """A price or size text that is not a sane decimal (the message says why)."""


class OffGrid(ValueError):
    """A price that is not a whole number of the instrument's ticks."""


def places_of(step: Decimal) -> int:
    """The decimal places of a grid step (``Decimal("0.10")`` -> 2, ``Decimal("5")`` -> 0)."""
    exp = step.as_tuple().exponent
    return max(0, -exp) if isinstance(exp, int) else 0


_PAD = tuple("0" * k for k in range(_MAX_FRAC + 1))


def scaled(text: str, places: int) -> int | None:
    """``text`` as an integer number of ``10**-places`` (``"61800.3"``, 2 -> ``6180030``), or
    None if it is not plain unsigned decimal text with at most ``places`` digits after the point
    (the slow path takes those: a sign, an exponent, more decimals, even if they are zeros)."""
    whole, _, frac = text.partition(".")
    k = len(frac)
    if k > places:
        return None
    digits = whole + frac
    # ASCII digits only: no sign, space or underscore (which int() would take), no superscript
    # (which isdigit() takes and int() refuses); "" is not digits either.
    if len(digits) > _MAX_WHOLE + _MAX_FRAC or not (digits.isascii() and digits.isdigit()):
        return None
    return int(digits) if k == places else int(digits + _PAD[places - k])


class Grid:
    """Text -> ticks and lots for one instrument (exact; cached per text).

    Attributes:
        ticks: price text -> ticks, for the texts converted so far (read it in hot loops:
            ``grid.ticks.get(text)``, then :meth:`ticks_slow` on a miss).
        lots: size text -> lots, likewise (:meth:`lots_slow` on a miss).
    """

    __slots__ = (
        "_lot_limit",
        "_lot_places",
        "_lot_units",
        "_tick_limit",
        "_tick_places",
        "_tick_units",
        "lot_size",
        "lots",
        "raw_args",
        "tick_size",
        "ticks",
    )

    def __init__(self, inst: Instrument) -> None:
        self.tick_size: Decimal = inst.tick_size
        self.lot_size: Decimal = inst.lot_size
        self.ticks: dict[str, int] = {}
        self.lots: dict[str, int] = {}
        self._tick_places = places_of(self.tick_size)
        self._tick_units = int(self.tick_size.scaleb(self._tick_places))
        self._lot_places = places_of(self.lot_size)
        self._lot_units = int(self.lot_size.scaleb(self._lot_places))
        # the sanity bound (below 1e15) in units of the smallest decimal of each grid
        self._tick_limit = 10 ** (_MAX_WHOLE + self._tick_places)
        self._lot_limit = 10 ** (_MAX_WHOLE + self._lot_places)
        #: The grid as :func:`mlthon.feeds.levels.apply_raw` takes it: places, units of a tick
        #: and the sanity bound (0: beyond 64 bits, so no 18-digit text reaches it), then the
        #: same for lots.
        self.raw_args: tuple[int, int, int, int, int, int] = (
            self._tick_places,
            self._tick_units,
            self._tick_limit if self._tick_limit < 2**63 else 0,
            self._lot_places,
            self._lot_units,
            self._lot_limit if self._lot_limit < 2**63 else 0,
        )

    def tick_of(self, text: str) -> int:
        """The ticks of a price text (cached).

        Raises:
            BadValue: not a sane price (> 0, in range).
            OffGrid: not a whole number of ticks.
        """
        t = self.ticks.get(text)
        return t if t is not None else self.ticks_slow(text)

    def lots_of(self, text: str) -> int:
        """The lots of a size text, rounded down onto the lot grid (cached when exact).

        Raises:
            BadValue: not a sane size (>= 0, in range).
        """
        n = self.lots.get(text)
        return n if n is not None else self.lots_slow(text)[0]

    def ticks_slow(self, text: str) -> int:
        """:meth:`tick_of` for a text not in the cache: convert, check, cache."""
        units = scaled(text, self._tick_places)
        if units and units < self._tick_limit:
            t, rem = divmod(units, self._tick_units)
        else:
            d = _checked(text, "price", positive=True)
            try:
                n, r = divmod(d, self.tick_size)
            except InvalidOperation:  # more ticks than the context's digits
                raise BadValue(f"price {text!r} is out of range for the tick") from None
            t, rem = int(n), int(bool(r))
        if rem:
            raise OffGrid(f"price {text} is not a multiple of the tick {self.tick_size}")
        ticks = self.ticks
        if len(ticks) >= _CACHE_MAX:
            ticks.clear()
        ticks[text] = t
        return t

    def lots_slow(self, text: str) -> tuple[int, bool]:
        """:meth:`lots_of` for a text not in the cache: ``(lots, on the grid)``; cached only when
        on the grid (an off-grid size is reported by its caller at each occurrence)."""
        units = scaled(text, self._lot_places)
        if units is not None and units < self._lot_limit:
            n, rem = divmod(units, self._lot_units)
            exact = not rem
        else:
            d = _checked(text, "size")
            try:
                q, r = divmod(d, self.lot_size)
            except InvalidOperation:
                raise BadValue(f"size {text!r} is out of range for the lot") from None
            n, exact = int(q), not r
        if exact:
            lots = self.lots
            if len(lots) >= _CACHE_MAX:
                lots.clear()
            lots[text] = n
        elif not n:
            n = 1  # a level that is there stays there: less than a lot is one lot
        return n, exact


def _checked(text: str, what: str, *, positive: bool = False) -> Decimal:
    why = decimal_problem(text, positive=positive)
    if why is not None:
        raise BadValue(f"{what} {why}")
    return Decimal(text)
