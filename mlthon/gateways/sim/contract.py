"""Contract arithmetic shared by the fee and accounting models: what a fill is worth.

Every amount is an exact :class:`~decimal.Decimal` in the instrument's settlement coin:

* spot and linear: ``price * qty * contract_multiplier`` (quote coin);
* inverse: ``qty * contract_multiplier / price`` (base coin), the contract being worth a fixed
  amount of quote (e.g. 100 USD per BTCUSD contract).
"""

from __future__ import annotations

from decimal import Decimal

from mlthon.basics.instrument import Instrument
from mlthon.basics.mlt_enum import InstrumentKind

# Read on every fill and order check, bound once: reading it off its Enum class goes through
# EnumType's Python-level __getattr__ hook on Python 3.11 (about 800 instructions).
_INVERSE = InstrumentKind.Inverse


def settle_notional(inst: Instrument, price: Decimal, qty: Decimal) -> Decimal:
    """The value of ``qty`` at ``price`` in the settlement coin (always >= 0 for qty >= 0)."""
    if inst.kind is _INVERSE:
        if price <= 0:
            return Decimal(0)
        return qty * inst.contract_multiplier / price
    return price * qty * inst.contract_multiplier


def pnl(inst: Instrument, long: bool, qty: Decimal, entry: Decimal, exit_: Decimal) -> Decimal:
    """Profit of closing ``qty`` (>= 0) of a long (or short) opened at ``entry`` at ``exit_``.

    Linear: ``qty * mult * (exit - entry)``; inverse: ``qty * mult * (1/entry - 1/exit)`` in base
    coin; both negated for a short.
    """
    if inst.kind is _INVERSE:
        gain = qty * inst.contract_multiplier * (1 / entry - 1 / exit_)
    else:
        gain = qty * inst.contract_multiplier * (exit_ - entry)
    return gain if long else -gain


def average_entry(
    inst: Instrument, qty0: Decimal, px0: Decimal, qty1: Decimal, px1: Decimal
) -> Decimal:
    """Entry price after adding ``qty1`` at ``px1`` to ``qty0`` held at ``px0`` (both >= 0).

    Linear and spot use the quantity-weighted arithmetic mean; inverse the harmonic mean
    ``(q0 + q1) / (q0/p0 + q1/p1)``, which keeps the position's base-coin value exact.
    """
    total = qty0 + qty1
    if total == 0:
        return Decimal(0)
    if qty0 == 0:
        return px1
    if inst.kind is _INVERSE:
        return total / (qty0 / px0 + qty1 / px1)
    return (qty0 * px0 + qty1 * px1) / total
