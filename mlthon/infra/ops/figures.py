"""Figures and times as people read them on the status page.

* :func:`plain`: a decimal's exact value as text, never an exponent, no trailing zeros
  (``-0.000699700000000000000000000000`` -> ``-0.0006997``).
* :func:`fig`: a decimal rounded to ``sig`` significant digits, then as :func:`plain`; the
  integer part is never rounded (``1234567.891`` at 6 digits is ``1234568``, ``-0.00069971234``
  is ``-0.000699712``).
* :func:`utc`: integer nanoseconds as ``2026-12-07 06:11:28 UTC``.

The page uses :data:`PRICE_DIGITS` for prices, :data:`PNL_DIGITS` for PnL and fees and exact
values for quantities (a quantity is always on the instrument's lot grid).
"""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation, localcontext

from mlthon.infra.clock import NS_PER_S

#: Significant digits of prices (an average price is a quotient: 28 digits unrounded).
PRICE_DIGITS = 10
#: Significant digits of PnL, fees and other amounts.
PNL_DIGITS = 6
#: The most decimals any figure shows.
MAX_PLACES = 12


def to_decimal(value: object) -> Decimal | None:
    """``value`` (a Decimal, int or decimal text) as a finite Decimal, or None."""
    if isinstance(value, Decimal):
        d = value
    elif isinstance(value, int | str):
        try:
            d = Decimal(value)
        except (InvalidOperation, ValueError):
            return None
    else:
        return None
    return d if d.is_finite() else None


def plain(value: Decimal) -> str:
    """``value`` exactly, without exponent or trailing zeros (``0`` for any zero)."""
    if not value:
        return "0"
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def fig(value: object, sig: int = PNL_DIGITS, *, max_places: int = MAX_PLACES) -> str:
    """``value`` rounded to ``sig`` significant digits (at most ``max_places`` decimals),
    shown as :func:`plain`. Text that is not a finite number is returned as it came (``-``
    for None)."""
    d = to_decimal(value)
    if d is None:
        return "-" if value is None else str(value)
    if not d:
        return "0"
    places = min(max_places, max(0, sig - 1 - d.adjusted()))
    with localcontext() as ctx:
        ctx.prec = max(28, d.adjusted() + places + 2)  # quantize never runs out of digits
        return plain(d.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN))


def exact(value: object) -> str:
    """``value`` unrounded up to :data:`MAX_PLACES` decimals (quantities), as :func:`plain`."""
    return fig(value, sig=10**6)


def utc(ns: int | None) -> str:
    """Nanoseconds since the epoch as ``2026-12-07 06:11:28 UTC`` (``-`` for 0 or None)."""
    if not ns:
        return "-"
    t = dt.datetime.fromtimestamp(ns // NS_PER_S, dt.UTC)
    return t.strftime("%Y-%m-%d %H:%M:%S UTC")
