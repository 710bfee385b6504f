"""The strategy-side ledger of a backtest: orders, fills, position, PnL and the equity curve.

It listens to the same bus as the strategy (requests and reports), so its figures are built from
the messages alone, independently of the simulated exchange's own accounts; the backtest compares
the two at the end (an accounting check).

PnL conventions (all exact decimals, in the instrument's settlement coin):

* linear and spot: ``qty * (exit - entry)`` times the contract multiplier;
* inverse: ``qty * multiplier * (1/entry - 1/exit)`` (in the base coin);
* fees are paid (negative maker fees are rebates), funding as the exchange settles it;
* spread captured by a fill: ``mid - price`` for a buy, ``price - mid`` for a sell, times the
  quantity, with the mid of the simulated exchange's book at the fill.

Records (the result's tables): one row per order in its final state (``orders.csv``: the price
and quantity it was sent with beside the last ones a modify set), one per fill (``fills.csv``)
and the order event log (``order_events.csv``): every request as the strategy sent it and every
answer as it arrived, in simulated time. The statistics built on them are in
:mod:`mlthon.app.stats`.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import attrs

from mlthon.basics.instrument import Instrument
from mlthon.basics.mlt_enum import InstrumentKind, Side
from mlthon.basics.pnl import pnl_of
from mlthon.infra.bus import messages as m

ZERO = Decimal(0)

# Columns of the result tables (orders.csv, fills.csv, equity.csv, order_events.csv), in order.
# orders.csv: ts is when the order was sent; price and qty as sent, final_price and final_qty
# after its last acknowledged modify; ack_ts when its ack (or reject) arrived, done_ts when it
# ended (filled, cancelled, rejected). avg_price and reject stay last (the backtest fills them).
ORDER_COLUMNS = [
    "ts",
    "cl_id",
    "instrument_id",
    "side",
    "ord_type",
    "tif",
    "price",
    "qty",
    "final_price",
    "final_qty",
    "modifies",
    "status",
    "filled_qty",
    "ack_ts",
    "done_ts",
    "avg_price",
    "reject",
]
FILL_COLUMNS = [
    "ts",
    "cl_id",
    "exec_id",
    "instrument_id",
    "side",
    "price",
    "qty",
    "fee",
    "maker",
    "mid",
    "position",
    "realised",
    "recv_ts",
]
CURVE_COLUMNS = ["ts", "equity", "position", "mid"]
# order_events.csv: ts is when the strategy sent the request or received the answer; exch_ts the
# exchange's time of an answer. Events: new, modify, cancel, cancel_all (requests); ack, reject,
# modify_ack, modify_reject, cancel_reject, cancel_all_ack, cancel_all_reject, cancelled, fill,
# request_reject (answers).
ORDER_EVENT_COLUMNS = [
    "ts",
    "event",
    "cl_id",
    "instrument_id",
    "side",
    "price",
    "qty",
    "leaves_qty",
    "exch_ts",
    "detail",
]

# The figures a person looks at first, in the order the CLI and the report show them.
HEADLINE_FIGURES = (
    "total_pnl",
    "realised_pnl",
    "unrealised_pnl",
    "fees",
    "funding",
    "turnover",
    "return_pct",
    "max_drawdown",
    "sharpe",
    "sortino",
    "round_trips",
    "win_rate",
    "profit_factor",
    "fills",
    "orders",
    "rejects",
    "fill_ratio",
    "spread_captured",
    "ack_latency_p50_ms",
    "events",
    "duration_s",
)


@attrs.define
class OrderRow:
    ts: int
    cl_id: str
    instrument_id: int
    side: str
    ord_type: str
    tif: str
    price: str
    qty: str
    final_price: str = ""
    final_qty: str = ""
    modifies: int = 0
    status: str = "sent"
    filled_qty: Decimal = ZERO
    ack_ts: int | None = None
    done_ts: int | None = None
    notional: Decimal = ZERO
    reject: str = ""

    def __attrs_post_init__(self) -> None:
        self.final_price = self.final_price or self.price
        self.final_qty = self.final_qty or self.qty

    def end(self, status: str, ts: int) -> None:
        self.status = status
        if self.done_ts is None:
            self.done_ts = ts

    def avg_price(self) -> str:
        return str(self.notional / self.filled_qty) if self.filled_qty else ""


@attrs.define
class FillRow:
    ts: int
    cl_id: str
    exec_id: str
    instrument_id: int
    side: str
    price: Decimal
    qty: Decimal
    fee: Decimal
    maker: bool
    mid: Decimal | None
    position: Decimal
    realised: Decimal
    recv_ts: int


@attrs.define
class OrderEventRow:
    ts: int
    event: str
    cl_id: str = ""
    instrument_id: int | None = None
    side: str = ""
    price: str = ""
    qty: str = ""
    leaves_qty: str = ""
    exch_ts: int | None = None
    detail: str = ""


@attrs.define
class _Pos:
    qty: Decimal = ZERO
    entry: Decimal = ZERO
    realised: Decimal = ZERO


class Ledger:
    """Collects a backtest's orders, fills and order events and keeps the PnL.

    Args:
        instruments: the instruments traded.
        mid_of: the mid price of an instrument id now (None without a book).
        now: the simulated clock (ns): when an answer reached the strategy. None: answers are
            timed with their exchange time.
    """

    def __init__(
        self,
        instruments: list[Instrument],
        mid_of: Any,
        now: Callable[[], int] | None = None,
    ) -> None:
        self.instruments = {i.instrument_id: i for i in instruments}
        self._mid_of = mid_of
        self._now = now
        self.orders: dict[str, OrderRow] = {}
        self.order_list: list[OrderRow] = []
        self.fills: list[FillRow] = []
        self.events: list[OrderEventRow] = []
        self.pos: dict[int, _Pos] = {i: _Pos() for i in self.instruments}
        self.fees = ZERO
        self.funding = ZERO
        self.turnover = ZERO
        self.spread_captured = ZERO
        self.curve: list[tuple[int, Decimal, Decimal, Decimal | None]] = []  # ts, equity, pos, mid
        self.rejects = 0
        self.modifies = 0
        self.cancels = 0

    # --- bus handlers ----------------------------------------------------------------------------

    def on_request(self, topic: str, msg: Any) -> None:
        if isinstance(msg, m.NewOrder):
            row = OrderRow(
                msg.ts,
                msg.cl_id,
                msg.instrument_id,
                msg.side.name,
                msg.ord_type.name,
                msg.tif.name,
                msg.price,
                msg.qty,
            )
            self.orders[msg.cl_id] = row
            self.order_list.append(row)
            self._event(msg.ts, "new", msg.cl_id, price=msg.price, qty=msg.qty)
        elif isinstance(msg, m.ModifyOrder):
            self.modifies += 1
            self._event(
                msg.ts, "modify", msg.cl_id, price=msg.new_price or "", qty=msg.new_qty or ""
            )
        elif isinstance(msg, m.CancelOrder):
            self.cancels += 1
            self._event(msg.ts, "cancel", msg.cl_id)
        elif isinstance(msg, m.CancelAll):
            self.cancels += 1
            self.events.append(
                OrderEventRow(msg.ts, "cancel_all", instrument_id=msg.instrument_id or None)
            )

    def on_report(self, topic: str, msg: Any) -> None:
        ts = self._now() if self._now is not None else int(getattr(msg, "ts", 0))
        if isinstance(msg, m.OrderExecution):
            self._on_fill(msg, ts)
            return
        row = self.orders.get(getattr(msg, "cl_id", None) or "")
        if isinstance(msg, m.NewOrderAck):
            if row is not None:
                row.ack_ts = ts if row.ack_ts is None else row.ack_ts
                if row.status == "sent":
                    row.status = "open"
            self._event(ts, "ack", msg.cl_id, msg, leaves=msg.leaves_qty, detail=msg.exch_id)
        elif isinstance(msg, m.NewOrderReject):
            self.rejects += 1
            why = f"{msg.code.name}: {msg.reason}"
            if row is not None:
                row.ack_ts = ts if row.ack_ts is None else row.ack_ts
                row.end("rejected", ts)
                row.reject = why
            self._event(ts, "reject", msg.cl_id, msg, detail=why)
        elif isinstance(msg, m.OrderCancelled):
            if row is not None:
                row.end("partially_filled_cancelled" if row.filled_qty else "cancelled", ts)
            why = msg.cancel_code.name + (f": {msg.reason}" if msg.reason else "")
            self._event(ts, "cancelled", msg.cl_id, msg, detail=why)
        elif isinstance(msg, m.ModifyOrderAck):
            if row is not None:
                row.final_price = msg.new_price
                row.final_qty = msg.new_qty
                row.modifies += 1
            self._event(
                ts,
                "modify_ack",
                msg.cl_id,
                msg,
                price=msg.new_price,
                qty=msg.new_qty,
                leaves=msg.leaves_qty,
            )
        elif isinstance(msg, m.ModifyOrderReject | m.CancelOrderReject):
            kind = "modify_reject" if isinstance(msg, m.ModifyOrderReject) else "cancel_reject"
            self._event(ts, kind, msg.cl_id or "", msg, detail=f"{msg.code.name}: {msg.reason}")
        elif isinstance(msg, m.CancelAllAck | m.CancelAllReject):
            rejected = isinstance(msg, m.CancelAllReject)
            self.events.append(
                OrderEventRow(
                    ts,
                    "cancel_all_reject" if rejected else "cancel_all_ack",
                    instrument_id=msg.instrument_id or None,
                    exch_ts=msg.ts or None,
                    detail=f"{msg.code.name}: {msg.reason}"
                    if isinstance(msg, m.CancelAllReject)
                    else "",
                )
            )
        elif isinstance(msg, m.RequestReject):
            self.events.append(
                OrderEventRow(
                    ts,
                    "request_reject",
                    exch_ts=msg.ts or None,
                    detail=f"{msg.rqst_type} {msg.code.name}: {msg.detail}",
                )
            )

    def _event(
        self,
        ts: int,
        event: str,
        cl_id: str,
        answer: Any = None,
        *,
        price: str = "",
        qty: str = "",
        leaves: str = "",
        detail: str = "",
    ) -> None:
        """One line of the order event log; the order's instrument and side come from its row."""
        row = self.orders.get(cl_id)
        exch_ts = getattr(answer, "ts", 0) if answer is not None else 0
        self.events.append(
            OrderEventRow(
                ts,
                event,
                cl_id,
                row.instrument_id if row is not None else None,
                row.side if row is not None else "",
                price,
                qty,
                leaves,
                exch_ts or None,
                detail,
            )
        )

    def _on_fill(self, msg: m.OrderExecution, recv_ts: int) -> None:
        inst = self.instruments.get(msg.instrument_id)
        if inst is None:
            return
        price = Decimal(msg.price)
        qty = Decimal(msg.fill_qty)
        fee = Decimal(msg.fee)
        signed = qty if msg.side is Side.Buy else -qty
        p = self.pos[msg.instrument_id]
        if p.qty == 0 or (p.qty > 0) == (signed > 0):
            total = p.qty + signed
            if inst.kind is InstrumentKind.Inverse:
                # The average entry of an inverse contract is the harmonic mean of the prices.
                p.entry = abs(total) / (abs(p.qty) / p.entry + qty / price) if p.qty else price
            else:
                p.entry = (abs(p.qty) * p.entry + qty * price) / abs(total)
            p.qty = total
        else:
            closed = min(abs(signed), abs(p.qty))
            p.realised += pnl_of(inst, closed if p.qty > 0 else -closed, p.entry, price)
            p.qty += signed
            if p.qty == 0:
                p.entry = ZERO
            elif (p.qty > 0) == (signed > 0):
                p.entry = price  # flipped: the remainder opened at this price
        self.fees += fee
        self.turnover += qty * price * inst.contract_multiplier
        mid = self._mid_of(msg.instrument_id)
        if mid is not None:
            self.spread_captured += (mid - price if signed > 0 else price - mid) * qty
        row = self.orders.get(msg.cl_id)
        if row is not None:
            row.filled_qty += qty
            row.notional += qty * price
            if Decimal(msg.leaves_qty) == 0:
                row.end("filled", recv_ts)
            else:
                row.status = "partially_filled"
        self.events.append(
            OrderEventRow(
                recv_ts,
                "fill",
                msg.cl_id,
                msg.instrument_id,
                msg.side.name,
                msg.price,
                msg.fill_qty,
                msg.leaves_qty,
                msg.exec_ts,
                ("maker" if msg.maker else "taker") + f" {msg.exec_id} fee {msg.fee}",
            )
        )
        self.fills.append(
            FillRow(
                msg.exec_ts,
                msg.cl_id,
                msg.exec_id,
                msg.instrument_id,
                msg.side.name,
                price,
                qty,
                fee,
                msg.maker,
                mid,
                p.qty,
                p.realised,
                recv_ts,
            )
        )
        self.sample(msg.exec_ts)

    # --- marks -----------------------------------------------------------------------------------

    def realised(self) -> Decimal:
        return sum((p.realised for p in self.pos.values()), ZERO)

    def unrealised(self) -> Decimal:
        total = ZERO
        for iid, p in self.pos.items():
            if p.qty:
                mid = self._mid_of(iid)
                if mid is not None:
                    total += pnl_of(self.instruments[iid], p.qty, p.entry, mid)
        return total

    def equity(self) -> Decimal:
        """Realised + unrealised - fees + funding."""
        return self.realised() + self.unrealised() - self.fees + self.funding

    def sample(self, ts: int) -> None:
        """Add a point to the equity curve (position and mid of the first instrument)."""
        iid = next(iter(self.pos))
        self.curve.append((ts, self.equity(), self.pos[iid].qty, self._mid_of(iid)))
