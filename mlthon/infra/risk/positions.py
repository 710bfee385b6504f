"""What the strategy has working, from its own requests: the risk layer's figures.

:class:`WorkingOrder`, per client id: an order the risk layer let through, with its side, price
and leaves, until it ends; and, per instrument, the quantity and notional working on each side
(kept in the instrument's :class:`~mlthon.infra.portfolio.Holding`, up to date at each change, so
a check never walks the orders). The positions themselves are the portfolio's
(:mod:`mlthon.infra.portfolio`), one copy for the strategy and the risk layer.
"""

from __future__ import annotations

from decimal import Decimal

import attrs

from mlthon.basics.mlt_enum import Side
from mlthon.basics.pnl import notional_of
from mlthon.infra.portfolio import ZERO, Holding


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
