"""Each strategy's latest orders and fills and its PnL over time, for the status page.

An :class:`ActivityLog` listens where the data already travel:

* ``{root}/gtw/+/rpt/+``: every gateway's reports to every strategy. A ``NewOrderAck`` carries
  the whole order (side, price, quantity), so the requests need not be read; modify acks,
  executions, cancels and rejects update it. Each execution is also a fill.
* ``{root}/status/strategy/+``: each strategy's heartbeat, whose ``extra["strategy"]["pnl"]``
  (realised + unrealised - fees, from its env's portfolio, which saw every fill since the
  strategy started) is sampled once per heartbeat into the PnL series.

Everything is bounded: the latest ``keep_orders`` orders and ``keep_fills`` fills and
``keep_points`` PnL samples per strategy.
"""

from __future__ import annotations

import logging
from collections import OrderedDict, deque
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import attrs

from mlthon.basics.mlt_enum import Side
from mlthon.infra.bus import messages as m
from mlthon.infra.bus.bus import BusBase, Subscription
from mlthon.infra.bus.topics import Topics
from mlthon.infra.clock import Scheduler
from mlthon.infra.ops.figures import to_decimal

log = logging.getLogger(__name__)

OPEN = "open"
PARTLY_FILLED = "partly filled"
FILLED = "filled"
CANCELLED = "cancelled"
REJECTED = "rejected"


@attrs.define
class OrderRow:
    """One order as the page shows it (prices and quantities as the wire's decimal text)."""

    cl_id: str
    ts: int
    exchange: str = ""
    instrument_id: int = 0
    side: str = ""
    price: str = ""
    qty: str = ""
    leaves_qty: str = ""
    status: str = OPEN
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        """A JSON-able view."""
        return attrs.asdict(self)


@attrs.frozen
class FillRow:
    """One fill as the page shows it."""

    ts: int
    exchange: str
    instrument_id: int
    cl_id: str
    exec_id: str
    side: str
    price: str
    qty: str
    fee: str
    fee_coin: str
    maker: bool

    def to_json(self) -> dict[str, Any]:
        """A JSON-able view."""
        return attrs.asdict(self)


@attrs.define
class StrategyActivity:
    """One strategy's latest orders, fills and PnL samples."""

    orders: OrderedDict[str, OrderRow]
    fills: deque[FillRow]
    pnl: deque[tuple[int, Decimal]]


class ActivityLog:
    """Follows every strategy's orders, fills and PnL from the bus.

    Args:
        bus: the bus (the control service's, or an in-process one).
        topics: the topic layout.
        scheduler: time for reports that carry none.
        keep_orders: orders kept per strategy (the oldest go first).
        keep_fills: fills kept per strategy.
        keep_points: PnL samples kept per strategy (one per heartbeat: 720 is an hour at 5 s).
        on_change: called after every change (the web page pushes its view then).
    """

    def __init__(
        self,
        bus: BusBase,
        topics: Topics,
        scheduler: Scheduler,
        *,
        keep_orders: int = 20,
        keep_fills: int = 20,
        keep_points: int = 720,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self.bus = bus
        self.topics = topics
        self.scheduler = scheduler
        self.keep_orders = keep_orders
        self.keep_fills = keep_fills
        self.keep_points = keep_points
        self.on_change = on_change
        self.strategies: dict[str, StrategyActivity] = {}
        self._subs: list[Subscription] = []

    def start(self) -> None:
        """Subscribe to every strategy's reports and heartbeats."""
        if self._subs:
            return
        t = self.topics
        self._subs = [
            self.bus.subscribe(t.gtw_rpt_all_exchanges("+"), self.on_report, qos=1),
            self.bus.subscribe(t.component_status("strategy", "+"), self.on_heartbeat, qos=1),
        ]

    def stop(self, *, unsubscribe: bool = True) -> None:
        """Stop listening (``unsubscribe=False`` when the bus is about to close anyway)."""
        if unsubscribe:
            for sub in self._subs:
                self.bus.unsubscribe(sub)
        self._subs.clear()

    def of(self, strat: str) -> StrategyActivity:
        """``strat``'s activity (created empty when first asked)."""
        act = self.strategies.get(strat)
        if act is None:
            act = self.strategies[strat] = StrategyActivity(
                orders=OrderedDict(),
                fills=deque(maxlen=self.keep_fills),
                pnl=deque(maxlen=self.keep_points),
            )
        return act

    # --- updates -------------------------------------------------------------------------------

    def _strat_of(self, topic: str) -> str | None:
        parts = topic[len(self.topics.root) + 1 :].split("/")
        if len(parts) == 4 and parts[0] == "gtw" and parts[2] == "rpt":
            return parts[3]
        return None

    def on_report(self, topic: str, msg: Any) -> None:
        """Update from one gateway report (infos and other answers are ignored)."""
        strat = self._strat_of(topic)
        if strat is None:
            return
        ex = self.topics.exchange_of(topic)
        exchange = ex.name if ex is not None else "?"
        ts = getattr(msg, "ts", 0) or self.scheduler.now_ns()
        act = self.of(strat)
        if isinstance(msg, m.NewOrderAck):
            self._put(
                act,
                OrderRow(
                    cl_id=msg.cl_id,
                    ts=ts,
                    exchange=exchange,
                    instrument_id=msg.instrument_id,
                    side=Side(msg.side).name,
                    price=msg.price,
                    qty=msg.qty,
                    leaves_qty=msg.leaves_qty,
                ),
            )
        elif isinstance(msg, m.NewOrderReject):
            rejected = act.orders.get(msg.cl_id) or OrderRow(
                cl_id=msg.cl_id, ts=ts, exchange=exchange
            )
            rejected.status, rejected.detail = REJECTED, msg.reason or msg.code.name
            self._put(act, rejected)
        elif isinstance(msg, m.ModifyOrderAck):
            modified = act.orders.get(msg.cl_id)
            if modified is not None:
                modified.price, modified.qty = msg.new_price, msg.new_qty
                modified.leaves_qty = msg.leaves_qty
        elif isinstance(msg, m.OrderCancelled):
            cancelled = act.orders.get(msg.cl_id)
            if cancelled is not None:
                cancelled.status, cancelled.detail = CANCELLED, msg.reason
        elif isinstance(msg, m.OrderExecution):
            self._on_execution(act, exchange, ts, msg)
        else:
            return
        self._changed()

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

    def _on_execution(
        self, act: StrategyActivity, exchange: str, ts: int, msg: m.OrderExecution
    ) -> None:
        if any(f.exec_id == msg.exec_id for f in act.fills):
            return  # a redelivered report
        act.fills.append(
            FillRow(
                ts=msg.exec_ts or ts,
                exchange=exchange,
                instrument_id=msg.instrument_id,
                cl_id=msg.cl_id,
                exec_id=msg.exec_id,
                side=Side(msg.side).name,
                price=msg.price,
                qty=msg.fill_qty,
                fee=msg.fee,
                fee_coin=msg.fee_coin,
                maker=msg.maker,
            )
        )
        row = act.orders.get(msg.cl_id)
        if row is not None:
            row.leaves_qty = msg.leaves_qty
            leaves = to_decimal(msg.leaves_qty)
            row.status = FILLED if leaves is not None and leaves == 0 else PARTLY_FILLED

    def _put(self, act: StrategyActivity, row: OrderRow) -> None:
        act.orders[row.cl_id] = row
        act.orders.move_to_end(row.cl_id)
        while len(act.orders) > self.keep_orders:
            act.orders.popitem(last=False)

    def on_heartbeat(self, topic: str, msg: Any) -> None:
        """Sample a strategy's PnL from its heartbeat."""
        if not isinstance(msg, m.ComponentStatus) or msg.kind != "strategy":
            return
        figures = msg.extra.get("strategy") if isinstance(msg.extra, dict) else None
        pnl = to_decimal(figures.get("pnl")) if isinstance(figures, dict) else None
        if pnl is None:
            return
        series = self.of(msg.name).pnl
        ts = msg.ts or self.scheduler.now_ns()
        if series and ts <= series[-1][0]:
            return  # the retained copy again, or out of order
        series.append((ts, pnl))
        self._changed()

    # --- queries -------------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """``{strat: {"orders": [newest first], "fills": [newest first], "pnl": [[ts, "x"]]}}``."""
        return {
            name: {
                "orders": [o.to_json() for o in reversed(act.orders.values())],
                "fills": [f.to_json() for f in reversed(act.fills)],
                "pnl": [[ts, str(v)] for ts, v in act.pnl],
            }
            for name, act in sorted(self.strategies.items())
        }
