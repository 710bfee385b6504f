"""Orders as a strategy sees them (``on_orders_info``, ``fetch_order_status``)."""

from __future__ import annotations

import attrs

from mlthon.basics.mlt_enum import TIF, Exchange, ExecInstructions, OrderStatus, OrderType, Side
from mlthon.basics.values import Price, Qty


@attrs.frozen
class Order:
    """A snapshot of one order's state at a gateway.

    Attributes:
        exchange: where the order lives.
        instrument_id: what it trades.
        client_ord_id: the id the strategy's env gave it (a decimal string).
        exch_ord_id: the venue's id.
        side, price, qty: as sent (price and qty after the last accepted modify).
        leaves_qty: quantity still open.
        filled_qty: quantity filled so far.
        status: life-cycle state.
        order_type, tif, exec_instr: as sent.
        created_ts: when the gateway accepted it (ns).
        adopted: True when the env handed it over unasked (``on_orders_info`` after a login or a
            gateway's return): an order of this strategy that this process did not place (it
            was placed before a restart). An open one is tracked like the strategy's own from
            then on; a closed one (it ended while the strategy was away) comes just before the
            reports about it that were waiting for the strategy (its fills, its cancel).
    """

    exchange: Exchange
    instrument_id: int
    client_ord_id: str
    exch_ord_id: str
    side: Side
    price: Price
    qty: Qty
    leaves_qty: Qty
    filled_qty: Qty
    status: OrderStatus
    order_type: OrderType = OrderType.Limit
    tif: TIF = TIF.GTC
    exec_instr: ExecInstructions = ExecInstructions.Unset
    created_ts: int = 0
    adopted: bool = False
