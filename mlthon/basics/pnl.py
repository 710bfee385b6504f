"""PnL and notional of a position, by the instrument's kind (linear, inverse, spot): one copy for
the backtest's ledger and the env's risk layer."""

from __future__ import annotations

from decimal import Decimal

from mlthon.basics.instrument import Instrument
from mlthon.basics.mlt_enum import InstrumentKind

ZERO = Decimal(0)


def pnl_of(inst: Instrument, qty: Decimal, entry: Decimal, exit_: Decimal) -> Decimal:
    """PnL of closing ``qty`` (signed: + long) opened at ``entry`` at ``exit_``, in the
    instrument's settlement coin."""
    mult = inst.contract_multiplier
    if inst.kind is InstrumentKind.Inverse:
        if not entry or not exit_:
            return ZERO
        return qty * mult * (1 / entry - 1 / exit_)
    return qty * mult * (exit_ - entry)


def notional_of(inst: Instrument, qty: Decimal, price: Decimal) -> Decimal:
    """The value of ``qty`` at ``price`` in the quote coin (an inverse contract's is its face
    value, whatever the price)."""
    if inst.kind is InstrumentKind.Inverse:
        return qty * inst.contract_multiplier
    return qty * inst.contract_multiplier * price
