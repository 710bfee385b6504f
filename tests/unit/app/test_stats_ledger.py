"""The ledger's order records: the final state keeps the price an order was sent with, and the
event log has every request and answer with the time the strategy saw it."""

from __future__ import annotations

from decimal import Decimal

from mlthon.app.ledger import ORDER_COLUMNS, ORDER_EVENT_COLUMNS, Ledger, OrderEventRow
from mlthon.basics.instrument import Instrument
from mlthon.basics.mlt_enum import (
    TIF,
    CancelCode,
    Exchange,
    ExecInstructions,
    GtwRejectCode,
    InstrumentKind,
    OrderType,
    Side,
)
from mlthon.infra.bus import messages as m

INST = Instrument(
    9001, "SIMUSDT", Exchange.Sim, "SIM", "USDT", InstrumentKind.Linear, "0.1", "0.001"
)
MS = 1_000_000


class Clock:
    def __init__(self) -> None:
        self.t = 0

    def __call__(self) -> int:
        return self.t


def new(cl: str, side: Side, price: str, ts: int) -> m.NewOrder:
    return m.NewOrder(
        strat="s", cl_id=cl, instrument_id=9001, side=side, price=price, qty="0.010", ts=ts
    )


def ack(cl: str, side: Side, price: str, ts: int) -> m.NewOrderAck:
    return m.NewOrderAck(
        cl_id=cl,
        exch_id=f"x-{cl}",
        instrument_id=9001,
        side=side,
        price=price,
        qty="0.010",
        leaves_qty="0.010",
        ord_type=OrderType.Limit,
        tif=TIF.GTC,
        exec_instr=ExecInstructions.PostOnly,
        ts=ts,
    )


def test_a_modified_order_keeps_its_sent_price_beside_its_final_one():
    clock = Clock()
    ledger = Ledger([INST], lambda iid: Decimal("100.05"), now=clock)
    ledger.on_request("t", new("1", Side.Buy, "100.0", 0))
    clock.t = 4 * MS
    ledger.on_report("t", ack("1", Side.Buy, "100.0", 2 * MS))
    clock.t = 10 * MS
    ledger.on_request("t", m.ModifyOrder(strat="s", cl_id="1", new_price="99.5", ts=10 * MS))
    clock.t = 14 * MS
    ledger.on_report(
        "t",
        m.ModifyOrderAck(
            cl_id="1", new_price="99.5", new_qty="0.010", leaves_qty="0.010", ts=12 * MS
        ),
    )
    row = ledger.orders["1"]
    # Before: the row's price was overwritten with 99.5 at the order's creation time.
    assert (row.ts, row.price, row.final_price, row.modifies) == (0, "100.0", "99.5", 1)
    assert (row.qty, row.final_qty, row.ack_ts, row.status) == ("0.010", "0.010", 4 * MS, "open")
    events = [(e.ts, e.event, e.price) for e in ledger.events]
    assert events == [
        (0, "new", "100.0"),
        (4 * MS, "ack", ""),
        (10 * MS, "modify", "99.5"),
        (14 * MS, "modify_ack", "99.5"),
    ]
    assert ledger.events[1].exch_ts == 2 * MS


def test_every_answer_is_in_the_event_log_and_ends_its_order():
    clock = Clock()
    ledger = Ledger([INST], lambda iid: Decimal("100.05"), now=clock)
    ledger.on_request("t", new("1", Side.Buy, "100.0", 0))
    ledger.on_request("t", new("2", Side.Sell, "100.1", 0))
    ledger.on_request("t", new("3", Side.Sell, "100.5", 0))
    clock.t = 4 * MS
    for cl, side, px in (("1", Side.Buy, "100.0"), ("2", Side.Sell, "100.1")):
        ledger.on_report("t", ack(cl, side, px, 2 * MS))
    ledger.on_report(
        "t", m.NewOrderReject(cl_id="3", code=GtwRejectCode.InsufficientBalance, reason="no")
    )
    clock.t = 9 * MS
    ledger.on_report(
        "t",
        m.OrderExecution(
            cl_id="1",
            exec_id="e1",
            instrument_id=9001,
            side=Side.Buy,
            price="100.0",
            fill_qty="0.010",
            leaves_qty="0",
            exec_ts=7 * MS,
            fee="-0.0002",
            maker=True,
            ts=7 * MS,
        ),
    )
    ledger.on_request("t", m.CancelOrder(strat="s", cl_id="2", instrument_id=9001, ts=9 * MS))
    clock.t = 13 * MS
    ledger.on_report(
        "t",
        m.OrderCancelled(
            cl_id="2",
            unsolicited=False,
            engine_ts=11 * MS,
            cancel_code=CancelCode.CanceledByUser,
            ts=11 * MS,
        ),
    )
    o1, o2, o3 = (ledger.orders[c] for c in "123")
    assert (o1.status, o1.done_ts) == ("filled", 9 * MS)
    assert (o2.status, o2.done_ts) == ("cancelled", 13 * MS)
    assert (o3.status, o3.done_ts, o3.ack_ts) == ("rejected", 4 * MS, 4 * MS)
    assert o3.reject == "InsufficientBalance: no"
    kinds = [(e.event, e.cl_id) for e in ledger.events]
    assert kinds[3:] == [
        ("ack", "1"),
        ("ack", "2"),
        ("reject", "3"),
        ("fill", "1"),
        ("cancel", "2"),
        ("cancelled", "2"),
    ]
    fill_event = ledger.events[6]
    assert (fill_event.ts, fill_event.exch_ts, fill_event.leaves_qty) == (9 * MS, 7 * MS, "0")
    assert fill_event.detail.startswith("maker e1")
    (f,) = ledger.fills
    assert (f.ts, f.recv_ts) == (7 * MS, 9 * MS)


def test_the_tables_columns_are_the_rows_attributes():
    for col in ORDER_EVENT_COLUMNS:
        assert hasattr(OrderEventRow(0, "new"), col)
    # the backtest fills avg_price and reject itself: they stay last
    assert ORDER_COLUMNS[-2:] == ["avg_price", "reject"]
