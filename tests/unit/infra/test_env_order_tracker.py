"""The env's order tracker on its own: one life cycle per order (legal transitions only, a status
never goes back), cancels in flight until answered, and the gateway's figures winning."""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

from mlthon.basics import TIF, CancelCode, Exchange, ExecInstructions, OrderStatus, OrderType, Side
from mlthon.infra.bus import messages as m
from mlthon.infra.clock import SimClock, SimScheduler
from mlthon.infra.env.orders import OrderTracker
from mlthon.infra.reactor import Reactor
from tests.fakes.recorder import Recorder

SIM = Exchange.Sim


class Host:
    """The tracker's env: a recording strategy, simulated time, questions kept."""

    def __init__(self) -> None:
        self.strategy = Recorder()
        self.scheduler = SimScheduler(SimClock(1_000))
        self.reactor = Reactor(self.scheduler)
        self.strat_name = "u"
        self.asked: list[tuple[Exchange, m.Msg, Any]] = []
        self.summaries: list[str] = []

    def ask(self, exchange: Exchange, msg: m.Msg, on_answer: Any) -> bool:
        self.asked.append((exchange, msg, on_answer))
        return True

    def reconciliation_done(self, summary: str, changed: bool) -> None:
        self.summaries.append(summary)


def _ack(cl: str, qty: str = "2") -> m.NewOrderAck:
    return m.NewOrderAck(
        cl_id=cl,
        exch_id="X",
        instrument_id=9001,
        side=Side.Buy,
        price="100.0",
        qty=qty,
        leaves_qty=qty,
        ord_type=OrderType.Limit,
        tif=TIF.GTC,
        exec_instr=ExecInstructions.Unset,
    )


def _fill(cl: str, n: int, qty: str, leaves: str) -> m.OrderExecution:
    return m.OrderExecution(
        cl_id=cl,
        exec_id=f"E{n}",
        instrument_id=9001,
        side=Side.Buy,
        price="100.0",
        fill_qty=qty,
        leaves_qty=leaves,
        exec_ts=n,
    )


def _tracker() -> tuple[Host, OrderTracker]:
    host = Host()
    tracker = OrderTracker(host)
    tracker._on_open_orders(SIM, m.OrdersInfo(orders=[]))  # the open orders of Sim are known
    return host, tracker


def test_order_status_only_moves_forward_and_illegal_reports_change_nothing(caplog):
    host, t = _tracker()
    t.sent_new(SIM, "1", 9001, Decimal(2), Side.Buy, Decimal(100))
    t.on_report(SIM, _fill("1", 1, "1", "1"), 2)  # the execution stream beat the ack
    assert t.open[(SIM, "1")].life.status is OrderStatus.PartiallyFilled
    t.on_report(SIM, _ack("1"), 3)  # late ack: delivered, the status does not go back
    assert t.open[(SIM, "1")].life.status is OrderStatus.PartiallyFilled
    with caplog.at_level(logging.WARNING):
        t.on_report(SIM, m.NewOrderReject(cl_id="1", code=1, reason="late"), 4)
    assert "reject on a PartiallyFilled order" in caplog.text and t.illegal_reports == 1
    assert t.open[(SIM, "1")].life.status is OrderStatus.PartiallyFilled
    t.on_report(SIM, _fill("1", 2, "1", "0"), 5)
    assert (SIM, "1") not in t.open
    names = host.strategy.names()
    assert names == [
        "on_order_execution",
        "on_new_order_ack",
        "on_new_order_reject",
        "on_order_execution",
    ]


def test_cancels_are_in_flight_until_answered():
    _, t = _tracker()
    t.sent_new(SIM, "1", 9001, Decimal(2), Side.Buy, Decimal(100))
    t.sent_new(SIM, "2", 9001, Decimal(2), Side.Buy, Decimal(100))
    before = t.cancel_mark()
    t.sent_cancel(SIM, "1")
    t.sent_cancel(SIM, "2")
    t.sent_cancel_all(SIM, 0)
    assert t.cancels_in_flight(before) == 3
    answered: list[int] = []
    t.on_cancel_answered = lambda: answered.append(t.cancels_in_flight(before))
    t.on_report(SIM, m.OrderCancelled(cl_id="1", unsolicited=False, engine_ts=1, cancel_code=1), 2)
    t.on_report(SIM, m.CancelOrderReject(cl_id="2", code=1003, reason="too late"), 3)
    t.on_report(SIM, m.CancelAllAck(instrument_id=0), 4)
    assert answered == [2, 1, 0]
    # An order that fills to the end answers the cancel on its way for it.
    t.sent_cancel(SIM, "2")
    t.on_report(SIM, _fill("2", 7, "2", "0"), 5)
    assert t.cancels_in_flight(before) == 0


def test_adopted_order_takes_the_gateways_figures():
    host = Host()
    t = OrderTracker(host)
    wire = m.OrderWire(
        instrument_id=9001,
        cl_id="77",
        exch_id="X77",
        side=Side.Sell,
        price="101.0",
        qty="3",
        leaves_qty="2",
        filled_qty="1",
        status=OrderStatus.PartiallyFilled,
    )
    # Its report came before the adoption answer: held, then delivered after on_orders_info.
    t.on_report(SIM, _fill("77", 1, "1", "1"), 2)
    assert not host.strategy.calls
    t._on_open_orders(SIM, m.OrdersInfo(orders=[wire]))
    assert host.strategy.names() == ["on_orders_info", "on_order_execution"]
    assert host.strategy.of("on_order_execution")[0][-1] == 2  # received at 2, not now
    life = t.open[(SIM, "77")].life
    assert (life.status, life.leaves) == (OrderStatus.PartiallyFilled, Decimal(1))
    t.on_report(
        SIM,
        m.OrderCancelled(
            cl_id="77", unsolicited=True, engine_ts=1, cancel_code=CancelCode.ExchangeCancel
        ),
        3,
    )
    assert (SIM, "77") not in t.open and t.knows(SIM, "77") and 77 in t.used_ids
