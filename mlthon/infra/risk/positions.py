"""What the strategy holds and has working, from its own requests and fills: the risk layer's
figures.

* :class:`Holding`, per (exchange, instrument): the position (signed: + long), its average entry,
  the realised PnL, the fees paid and the last fill price. The arithmetic is the backtest
  ledger's (``mlthon/app/ledger.py``: an inverse contract's entry is the harmonic mean, a flip
  opens the remainder at the fill's price), with :func:`pnl_of` here; the ledger is to use these
  (``docs/risk.md``, what is not done yet).
* :class:`WorkingOrder`, per client id: an order the risk layer let through, with its side,
  price and leaves, until it ends; and, per instrument, the quantity and notional working on
  each side (kept up to date at each change, so a check never walks the orders).
"""

from __future__ import annotations

from decimal import Decimal

import attrs

from mlthon.basics.instrument import Instrument
from mlthon.basics.mlt_enum import Exchange, InstrumentKind, Side
from mlthon.basics.pnl import notional_of, pnl_of

ZERO = Decimal(0)
Key = tuple[Exchange, int]


@attrs.define(slots=True)
class Holding:
    """One instrument's position and what it earned (see the module docstring).

    Attributes:
        inst: the instrument.
        qty: the position (+ long, - short).
        entry: its average entry price (0 when flat).
        realised: PnL realised by closing fills.
        fees: fees paid (what the gateway reported).
        last_price: the price of the last fill (0: none yet).
        working_buy: quantity of the open buy orders.
        working_sell: quantity of the open sell orders.
        working_notional: notional of every open order of the instrument.
    """

    inst: Instrument
    qty: Decimal = ZERO
    entry: Decimal = ZERO
    realised: Decimal = ZERO
    fees: Decimal = ZERO
    last_price: Decimal = ZERO
    working_buy: Decimal = ZERO
    working_sell: Decimal = ZERO
    working_notional: Decimal = ZERO

    def fill(self, side: Side, qty: Decimal, price: Decimal, fee: Decimal) -> None:
        """A fill of ``qty`` at ``price`` on ``side``, with its ``fee``."""
        signed = qty if side is Side.Buy else -qty
        pos = self.qty
        if pos == 0 or (pos > 0) == (signed > 0):
            total = pos + signed
            if self.inst.kind is InstrumentKind.Inverse:
                # The average entry of an inverse contract is the harmonic mean of the prices.
                self.entry = abs(total) / (abs(pos) / self.entry + qty / price) if pos else price
            else:
                self.entry = (abs(pos) * self.entry + qty * price) / abs(total)
            self.qty = total
        else:
            closed = min(qty, abs(pos))
            self.realised += pnl_of(self.inst, closed if pos > 0 else -closed, self.entry, price)
            self.qty = pos + signed
            if self.qty == 0:
                self.entry = ZERO
            elif (self.qty > 0) == (signed > 0):
                self.entry = price  # flipped: the remainder opened at this price
        self.fees += fee
        self.last_price = price

    def unrealised(self, mark: Decimal | None) -> Decimal:
        """The open position's PnL at ``mark`` (None: the last fill's price)."""
        if not self.qty:
            return ZERO
        price = mark if mark is not None else self.last_price
        return pnl_of(self.inst, self.qty, self.entry, price) if price else ZERO

    def working(self, side: Side) -> Decimal:
        """The quantity working on ``side``."""
        return self.working_buy if side is Side.Buy else self.working_sell


@attrs.define(slots=True)
class WorkingOrder:
    """An open order the risk layer let through.

    Attributes:
        holding: its instrument's holding (whose working figures include it).
        side: buy or sell.
        price: the price its notional is counted at (its limit price, or the reference price
            when it was sent as a market order).
        leaves: what is left to fill.
        filled: what was filled of it (a modify's new size less this is its new leaves).
    """

    holding: Holding
    side: Side
    price: Decimal
    leaves: Decimal
    filled: Decimal = ZERO

    def add(self, sign: int) -> None:
        """Count this order (``sign`` 1) in its holding's working figures, or take it out (-1)."""
        h = self.holding
        qty = self.leaves * sign
        if self.side is Side.Buy:
            h.working_buy += qty
        else:
            h.working_sell += qty
        h.working_notional += notional_of(h.inst, qty, self.price)
