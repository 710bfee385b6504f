"""A strategy for the chaos suite: it trades all the time and writes down everything it is told.

Every ``period_ms`` it sends one order: in turn an IOC buy at the best ask, an IOC sell at the
best bid (takers that fill at once) and a post-only bid ``rest_ticks`` under the best bid, which it
cancels ``rest_ms`` later. It does not trade while the gateway is not ready or the feed is stale.

Every callback that matters to the chaos checks is one JSON line in the file named by the
``log`` parameter, written and flushed at once (the process may be killed -9 at any moment)::

    {"e": "start"|"send"|"ack"|"rej"|"fill"|"cxl"|"cxl_rej"|"gtw"|"feed"|"up"|"down"|"adopt"|
          "stop", "t": <wall ns>, ...}

On stop it cancels everything and acknowledges once the cancel-all is answered.
"""

from __future__ import annotations

import json
import os
import time
from decimal import Decimal
from typing import Any

from mlthon.api import IStratEnv, MDSub, Strategy
from mlthon.basics import (
    TIF,
    CancelCode,
    Exchange,
    ExecInstructions,
    FeedHandlerStatus,
    GtwRejectCode,
    GtwStatus,
    Order,
    OrderType,
    Price,
    Qty,
    Side,
)


class ChaosTrader(Strategy):
    """See the module docstring."""

    def __init__(self, params: dict[str, Any]) -> None:
        super().__init__("chaos")
        self.p: dict[str, Any] = dict(params)
        self.fh: Any = None
        self.ex = Exchange.Sim
        self.iid = 9001
        self.bid: Price | None = None
        self.ask: Price | None = None
        self.n = 0
        self.gateway_ready = True  # the env tells transitions only
        self.feed_live = True
        self.running = False
        self.stopping = False
        self.resting: dict[str, int] = {}  # client id -> when to cancel it (ns)

    def _log(self, event: str, **fields: Any) -> None:
        if self.fh is None:
            path = self.p["log"]
            self.fh = open(path, "a", buffering=1)  # noqa: SIM115 (kept open for the process)
        fields["e"] = event
        fields["t"] = time.time_ns()
        fields["pid"] = os.getpid()
        self.fh.write(json.dumps(fields, default=str) + "\n")

    # --- life cycle --------------------------------------------------------------------------

    def on_framework_connected(self, env: IStratEnv) -> None:
        self._log("up")
        super().on_framework_connected(env)

    def on_framework_disconnected(self) -> None:
        self._log("down")

    def on_start(self, params: str) -> None:
        self.running = True
        self.stopping = False
        self._log("start")

    def on_strat_params_update(self, strat_params: dict[str, Any]) -> None:
        first = not self.p.get("_subscribed")
        self.p.update(strat_params)
        if first:
            self.p["_subscribed"] = True
            self.env.subscribe(self.ex, self.iid, MDSub.BBO)
            self.env.setup_timer(int(self.p.get("period_ms", 100)), self.on_timer)

    def on_stop(self, params: str) -> None:
        self._log("stop")
        self.running = False
        self.stopping = True
        self.env.send_cancel_all(self.ex, self.iid)

    def on_cancel_all_ack(self, exchange: Exchange, instrument_id: int) -> None:
        if self.stopping:
            self.stopping = False
            self.env.send_stop_ack()

    def on_cancel_all_reject(
        self, exchange: Exchange, instrument_id: int, reject_code: GtwRejectCode, reject_reason: str
    ) -> None:
        self._log("cxl_all_rej", code=reject_code.name, why=reject_reason)
        if self.stopping:
            self.stopping = False
            self.env.send_stop_ack()

    # --- statuses ----------------------------------------------------------------------------

    def on_gateway_status(self, exchange: Exchange, status: GtwStatus, detail: str) -> None:
        self.gateway_ready = status is GtwStatus.ReadyToTrade
        self._log("gtw", status=status.name, detail=detail)

    def on_feed_handler_status(
        self, exchange: Exchange, status: FeedHandlerStatus, detail: str
    ) -> None:
        if status in (FeedHandlerStatus.Stale, FeedHandlerStatus.Disconnected):
            self.feed_live = False
        elif status in (FeedHandlerStatus.Resumed, FeedHandlerStatus.SnapshotEnd):
            self.feed_live = True
        self._log("feed", status=status.name, detail=detail)

    # --- market data and trading -------------------------------------------------------------

    def on_best_bid_level_update(
        self, exchange: Exchange, instrument_id: int, price: Price, qty: Qty, recv_ts: int
    ) -> None:
        self.bid = price

    def on_best_ask_level_update(
        self, exchange: Exchange, instrument_id: int, price: Price, qty: Qty, recv_ts: int
    ) -> None:
        self.ask = price

    def on_timer(self) -> bool:
        now = self.env.get_time_ns()
        for cl, due in list(self.resting.items()):
            if due <= now:
                del self.resting[cl]
                self.env.send_cancel_order(self.ex, self.iid, cl)
        if not (self.running and self.gateway_ready and self.feed_live):
            return True
        if self.bid is None or self.ask is None or self.bid >= self.ask:
            return True
        kind = self.n % 3
        self.n += 1
        size = Qty(str(self.p.get("size", "0.001")))
        tick = self.env.get_instrument(self.ex, self.iid).tick_size
        if kind == 2:
            price = Price(self.bid.value - Decimal(int(self.p.get("rest_ticks", 20))) * tick)
            side, tif, instr = Side.Buy, TIF.GTC, ExecInstructions.PostOnly
        else:
            side = Side.Buy if kind == 0 else Side.Sell
            price = self.ask if kind == 0 else self.bid
            tif, instr = TIF.IOC, ExecInstructions.Unset
        cid = self.env.send_new_order(
            None, self.ex, self.iid, side, price, size, instr, OrderType.Limit, tif, False
        )
        self._log("send", cl=str(cid), side=side.name, tif=tif.name, px=str(price))
        if kind == 2:
            self.resting[str(cid)] = now + int(self.p.get("rest_ms", 300)) * 1_000_000
        return True

    # --- answers -----------------------------------------------------------------------------

    def on_new_order_ack(
        self,
        exchange: Exchange,
        client_id: str,
        exchange_id: str,
        instrument_id: int,
        side: Side,
        price: Price,
        qty: Qty,
        leaves_qty: Qty,
        order_type: OrderType,
        tif: TIF,
        exec_instr: ExecInstructions,
    ) -> None:
        self._log("ack", cl=client_id)

    def on_new_order_reject(
        self, exchange: Exchange, client_id: str, reject_code: GtwRejectCode, reject_reason: str
    ) -> None:
        self.resting.pop(client_id, None)
        self._log("rej", cl=client_id, code=reject_code.name, why=reject_reason)

    def on_order_execution(
        self,
        exchange: Exchange,
        client_id: str,
        side: Side,
        price: Price,
        fill_qty: Qty,
        leaves_qty: Qty,
        exec_ts: int,
        recv_ts: int,
    ) -> None:
        self._log("fill", cl=client_id, side=side.name, qty=str(fill_qty), leaves=str(leaves_qty))
        if not leaves_qty:
            self.resting.pop(client_id, None)

    def on_order_cancelled(
        self,
        exchange: Exchange,
        client_id: str,
        unsolicited: bool,
        engine_ts: int,
        recv_ts: int,
        cancel_code: CancelCode,
        cancel_reason: str,
    ) -> None:
        self.resting.pop(client_id, None)
        self._log("cxl", cl=client_id, code=cancel_code.name)

    def on_cancel_order_reject(
        self,
        exchange: Exchange,
        nullable_client_id: str | None,
        reject_code: GtwRejectCode,
        reject_reason: str,
    ) -> None:
        self._log("cxl_rej", cl=nullable_client_id, code=reject_code.name, why=reject_reason)

    def on_orders_info(self, exchange: Exchange, orders: list[Order]) -> None:
        for o in orders:
            if o.adopted and o.status.is_open:
                self._log("adopt", cl=o.client_ord_id)
                self.env.send_cancel_order(exchange, o.instrument_id, o.client_ord_id)
