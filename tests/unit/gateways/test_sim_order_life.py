"""The simulated exchange's order life cycle (issue 15, item 7): ids never repeat across restarts
without a journal (and stay the same from one run of a backtest to the next), one strategy's
requests keep their order under a random market-data latency, and the matching engine moves
orders only through the one state machine (``basics/order_state.py``)."""

from __future__ import annotations

import pytest

from mlthon.basics.mlt_enum import Side
from mlthon.basics.order_state import IllegalTransition, OrderLifecycle
from mlthon.gateways.sim.config import SimGatewayConfig
from mlthon.gateways.sim.gateway import SimGateway
from mlthon.gateways.sim.latency import LatencyConfig, UniformDelay
from mlthon.infra.bus.inproc import InProcBus
from mlthon.infra.bus.messages import (
    CancelOrder,
    CancelOrderAck,
    CancelOrderReject,
    NewOrderAck,
    OrderExecution,
)
from mlthon.infra.bus.topics import Topics
from mlthon.infra.clock import SimClock, SimScheduler
from tests.unit.gateways.helpers import BALANCES, LIN, SPOT, book, engine, get, new, trade
from tests.unit.gateways.test_sim_gateway import MS, T0, Rig


def _run_once(start_ns: int) -> tuple[str, str]:
    """A gateway without a journal started at ``start_ns``: one order, one fill; its ids."""
    sched = SimScheduler(SimClock(start_ns))
    bus = InProcBus(sched)
    topics = Topics("t")
    config = SimGatewayConfig(balances=BALANCES)
    gw = SimGateway(bus, sched, topics, config, [LIN, SPOT])
    got: list = []
    bus.subscribe(topics.gtw_rpt(config.exchange, "s1"), lambda _t, m: got.append(m))
    gw.start()
    sched.run_until(start_ns)
    bus.publish(topics.md(config.exchange, 1), book(1, [("99.0", "1.0")], [("100.0", "1.0")]))
    bus.publish(topics.gtw_req(config.exchange, "s1"), new("a", Side.Buy, "100.0", "0.100"))
    sched.run_until(start_ns + MS)
    (ack,) = [m for m in got if isinstance(m, NewOrderAck)]
    (fill,) = [m for m in got if isinstance(m, OrderExecution)]
    return ack.exch_id, fill.exec_id


def test_sim_restarted_without_journal_never_reuses_execution_or_order_ids():
    first = _run_once(T0)
    restarted = _run_once(T0 + 60_000 * MS)  # the same gateway, a minute later
    assert first[0] != restarted[0] and first[1] != restarted[1]
    assert first[1].endswith("-x1") and restarted[1].endswith("-x1")


def test_sim_ids_of_a_backtest_are_the_same_on_every_run():
    assert _run_once(T0) == _run_once(T0)  # simulated start time: deterministic ids


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_sim_cancel_right_after_its_order_runs_after_it_under_random_market_data_latency(seed):
    lat = LatencyConfig(market_data=UniformDelay(0, 10 * MS), seed=seed)
    rig = Rig(latency=lat)
    rig.md(book(1, [("99.0", "1.000")], [("101.0", "1.000")]), T0 + MS)
    for i in range(20):
        rig.at(T0 + (2 + i) * MS)
        rig.req(new(f"o{i}", Side.Buy, "98.0", "0.100"))
        rig.req(CancelOrder(strat="s1", cl_id=f"o{i}", instrument_id=1))
    rig.at(T0 + 100 * MS)
    assert not rig.msgs(CancelOrderReject)
    assert len(rig.msgs(CancelOrderAck)) == 20
    assert rig.gw.engine.open_orders() == []
    kinds = [type(m).__name__ for m in rig.msgs() if type(m).__name__ != "OrderCancelled"]
    assert kinds == ["NewOrderAck", "CancelOrderAck"] * 20


def test_sim_orders_move_through_the_one_order_state_machine():
    eng, _ = engine()
    eng.on_market_data(book(1, [("99.0", "1.000")], [("100.1", "1.000")]), 1)
    eng.new_order(new("a", Side.Buy, "99.0", "0.500"), 2)
    o = get(eng, "a")
    assert isinstance(o, OrderLifecycle)
    eng.on_market_data(trade(1, Side.Sell, "99.0", "1.200"), 3)  # 1.000 ahead, 0.200 to us
    assert (o.status.name, o.filled, o.leaves) == ("PartiallyFilled", 200, 300)
    eng.cancel_order(CancelOrder(strat="s1", cl_id="a", instrument_id=1), 4)
    assert o.status.name == "Cancelled"
    with pytest.raises(IllegalTransition):
        o.fill(1)  # a cancelled order cannot fill: the same rule as the env's
