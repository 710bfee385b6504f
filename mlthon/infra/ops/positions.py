"""A strategy's open orders, positions and PnL, followed from its gateway reports.

:class:`PositionTracker` listens to ``{root}/gtw/+/rpt/{strat}`` (the env's own pattern, so the
broker sends nothing more) and keeps, per (exchange, instrument): the position, its average
price (average-cost method), realised PnL, fees, and the unrealised PnL marked at the last fill
price. Quantities are in contracts; PnL is in price units times contracts (contract multipliers
are not applied).
"""

from __future__ import annotations

import logging
from decimal import Decimal, InvalidOperation
from typing import Any

import attrs

from mlthon.basics.mlt_enum import Side
from mlthon.infra.bus import messages as m
from mlthon.infra.bus.bus import BusBase, Subscription
from mlthon.infra.bus.topics import Topics
from mlthon.infra.ops.figures import plain

log = logging.getLogger(__name__)

_ZERO = Decimal(0)


@attrs.define
class Position:
    """One instrument's position as followed from fills."""

    qty: Decimal = _ZERO
    avg_price: Decimal = _ZERO
    realized: Decimal = _ZERO
    fees: Decimal = _ZERO
    last_price: Decimal = _ZERO
    fills: int = 0

    def apply(self, side: Side, price: Decimal, qty: Decimal, fee: Decimal) -> None:
        """Apply one fill of ``qty`` at ``price`` on ``side``."""
        signed = qty if side is Side.Buy else -qty
        self.fees += fee
        self.last_price = price
        self.fills += 1
        pos = self.qty
        if pos == 0 or (pos > 0) == (signed > 0):
            total = abs(pos) + qty
            self.avg_price = (self.avg_price * abs(pos) + price * qty) / total
            self.qty = pos + signed
            return
        closing = min(qty, abs(pos))
        self.realized += closing * (price - self.avg_price) * (1 if pos > 0 else -1)
        self.qty = pos + signed
        if self.qty == 0:
            self.avg_price = _ZERO
        elif (self.qty > 0) != (pos > 0):
            self.avg_price = price

    @property
    def unrealized(self) -> Decimal:
        """PnL of the open position marked at the last fill price."""
        return (self.last_price - self.avg_price) * self.qty if self.qty else _ZERO

    def to_wire(self) -> dict[str, str | int]:
        """A JSON-able view (decimals as exact text: no exponent, no trailing zeros)."""
        return {
            "qty": plain(self.qty),
            "avg_price": plain(self.avg_price),
            "realized": plain(self.realized),
            "unrealized": plain(self.unrealized),
            "fees": plain(self.fees),
            "fills": self.fills,
        }


class PositionTracker:
    """Follows one strategy's open orders and positions from its reports.

    Args:
        bus: the strategy process's bus.
        topics: the topic layout.
        strat: the strategy's name.
    """

    def __init__(self, bus: BusBase, topics: Topics, strat: str) -> None:
        self.bus = bus
        self.topics = topics
        self.strat = strat
        self.positions: dict[tuple[str, int], Position] = {}
        self.open_orders: set[str] = set()
        self._sub: Subscription | None = None

    def start(self) -> None:
        """Subscribe to the strategy's reports."""
        if self._sub is None:
            self._sub = self.bus.subscribe(
                self.topics.gtw_rpt_all_exchanges(self.strat), self.on_report, qos=1
            )

    def stop(self) -> None:
        """Unsubscribe."""
        if self._sub is not None:
            self.bus.unsubscribe(self._sub)
            self._sub = None

    def on_report(self, topic: str, msg: Any) -> None:
        """Update from one gateway report (others are ignored)."""
        if isinstance(msg, m.NewOrderAck):
            self.open_orders.add(msg.cl_id)
        elif isinstance(msg, m.OrderCancelled | m.NewOrderReject):
            self.open_orders.discard(msg.cl_id)
        elif isinstance(msg, m.OrderExecution):
            ex = self.topics.exchange_of(topic)
            key = (ex.name if ex is not None else "?", msg.instrument_id)
            try:
                price, qty, fee = Decimal(msg.price), Decimal(msg.fill_qty), Decimal(msg.fee)
                done = Decimal(msg.leaves_qty) == 0
            except InvalidOperation:
                log.warning("ops: execution %s with bad numbers ignored", msg.exec_id)
                return
            self.positions.setdefault(key, Position()).apply(msg.side, price, qty, fee)
            if done:
                self.open_orders.discard(msg.cl_id)

    def to_wire(self) -> dict[str, Any]:
        """``{"open_orders": n, "positions": {"Ex:iid": {...}}, "pnl": total}``."""
        total = sum((p.realized + p.unrealized - p.fees for p in self.positions.values()), _ZERO)
        return {
            "open_orders": len(self.open_orders),
            "positions": {f"{ex}:{iid}": p.to_wire() for (ex, iid), p in self.positions.items()},
            "pnl": plain(total),
        }
