"""AccountingChecker: positions equal the sum of fills, against the strategy's and the gateway's
views; a difference is an ERROR and a priority-0 Telegram alert."""

from __future__ import annotations

import logging
from decimal import Decimal as D

from mlthon.basics.mlt_enum import Exchange, Side
from mlthon.gateways.sim.accounting import Leg
from mlthon.gateways.sim.config import SimGatewayConfig
from mlthon.gateways.sim.gateway import SimGateway
from mlthon.infra.accounting_check import AccountingChecker
from mlthon.infra.bus.inproc import InProcBus
from mlthon.infra.bus.messages import FetchPosition, OrderExecution, TelegramPublish
from mlthon.infra.bus.topics import Topics
from mlthon.infra.clock import SimClock, SimScheduler
from tests.unit.gateways.helpers import BALANCES, LIN, book, new

MS = 1_000_000
T0 = 1_000 * MS
SIM = Exchange.Sim


class Rig:
    def __init__(self, **kw) -> None:
        self.sched = SimScheduler(SimClock(T0))
        self.bus = InProcBus(self.sched)
        self.topics = Topics("t")
        self.gw = SimGateway(
            self.bus, self.sched, self.topics, SimGatewayConfig(balances=BALANCES), [LIN]
        )
        self.view: dict = {}
        self.check = AccountingChecker(
            self.bus, self.sched, self.topics, "s1", strategy_view=lambda: self.view, **kw
        )
        self.alerts: list[TelegramPublish] = []
        self.bus.subscribe(self.topics.telegram("s1"), lambda _t, m: self.alerts.append(m))
        self.gw.start()
        self.check.start()
        self.run()
        self.bus.publish(
            self.topics.md(SIM, 1), book(1, bids=[("99.9", "5")], asks=[("100.1", "5")])
        )
        self.run()

    def run(self, dt: int = 0) -> None:
        self.sched.run_until(self.sched.now_ns() + dt)

    def order(self, cl_id: str, side: Side, qty: str) -> None:
        price = "100.1" if side is Side.Buy else "99.9"
        self.bus.publish(self.topics.gtw_req(SIM, "s1"), new(cl_id, side, price, qty))
        self.run()


def test_checks_pass_when_every_view_agrees():
    rig = Rig()
    rig.view[(SIM, 1)] = D("0.300")
    rig.order("a", Side.Buy, "0.300")
    rig.view[(SIM, 1)] = D("0.100")
    rig.order("b", Side.Sell, "0.200")
    rig.check.check_gateway()
    rig.run()
    assert rig.check.fills == 2 and rig.check.checks == 3
    assert rig.check.mismatches == [] and rig.alerts == []
    assert rig.check.fees[(SIM, "USDT")] > 0


def test_gateway_drift_is_an_error_and_a_priority_0_alert(caplog):
    rig = Rig(period_s=1.0)
    rig.view[(SIM, 1)] = D("0.300")
    rig.order("a", Side.Buy, "0.300")
    rig.gw.engine.account("s1").position(LIN, Leg.Net).qty = D("0.250")  # the books went bad
    with caplog.at_level(logging.ERROR):
        rig.run(1_000 * MS)  # the periodic check asks the gateway
    [mm] = rig.check.mismatches
    assert (mm.source, mm.expected, mm.actual) == ("gateway", D("0.300"), D("0.250"))
    assert "ACCOUNTING MISMATCH" in caplog.text
    assert rig.alerts[0].priority == 0 and "gateway says 0.250" in rig.alerts[0].text


def test_strategy_view_drift_is_caught_after_the_fill():
    rig = Rig()
    rig.order("a", Side.Buy, "0.300")  # the strategy forgot to book it
    assert rig.check.mismatches[0].source == "strategy"
    assert len(rig.alerts) == 1


def test_repeated_execution_is_counted_once():
    rig = Rig()
    fill = OrderExecution(
        cl_id="z", exec_id="x-9", instrument_id=1, side=Side.Buy, price="100", fill_qty="1",
        leaves_qty="0", exec_ts=1, fee="0.1", fee_coin="USDT", maker=False,
    )  # fmt: skip
    rig.view[(SIM, 1)] = D("1")
    for _ in range(2):
        rig.bus.publish(rig.topics.gtw_rpt(SIM, "s1"), fill)
        rig.run()
    assert rig.check.fills == 1 and rig.check.expected((SIM, 1)) == D("1")
    assert rig.check.mismatches == []


def test_opening_position_is_taken_from_the_first_answer():
    rig = Rig()
    rig.gw.engine.account("s1").position(LIN, Leg.Net).qty = D("2")
    rig.bus.publish(rig.topics.gtw_req(SIM, "s1"), FetchPosition(strat="s1", instrument_id=1))
    rig.run()
    rig.view[(SIM, 1)] = D("2.100")
    rig.order("a", Side.Buy, "0.100")
    rig.check.check_gateway()
    rig.run()
    assert rig.check.expected((SIM, 1)) == D("2.100")
    assert rig.check.mismatches == []
    rig.check.close()
