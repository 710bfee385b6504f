"""MeteredBus counts and times; TimedReactor times callbacks; PositionTracker follows fills."""

from __future__ import annotations

from decimal import Decimal

from mlthon.basics.mlt_enum import (
    TIF,
    CancelCode,
    Exchange,
    ExecInstructions,
    FeedHandlerStatus,
    GtwRejectCode,
    OrderType,
    Side,
)
from mlthon.infra.bus import messages as m
from mlthon.infra.ops.metering import LATENCY_BUCKETS_MS, LatencyHistogram, MeteredBus, TimedReactor
from mlthon.infra.ops.positions import PositionTracker


def test_metered_bus_counts_by_category_and_measures_lag(sim):
    mb = MeteredBus(sim.bus, sim.sched.clock)
    got = []
    mb.subscribe("t/md/#", lambda t, msg: got.append(msg))
    now = sim.sched.now_ns()
    mb.publish("t/md/Sim/1", m.TradeUpdate(ex=1, iid=1, ts=now - 2_000_000, tr=[]))
    mb.publish(
        "t/md/Sim/1",
        m.FeedStatus(ex=1, iid=1, status=FeedHandlerStatus.BookInvalid, detail="gap"),
    )
    mb.publish("t/gtw/Sim/rpt/s", m.NewOrderReject(cl_id="1", code=GtwRejectCode.Unset))
    sim.run_for(0)
    assert len(got) == 2
    c = mb.counters
    assert c["messages_out"] == 3 and c["messages_in"] == 2
    assert c["events"] == 2 and c["resyncs"] == 2 and c["rejects"] == 1
    lag, worst = mb.take_lag()
    assert lag == 2.0 and worst == 2.0
    assert mb.take_lag()[1] == 0.0
    assert "bus:TradeUpdate" in mb.latency.to_wire()


def test_latency_histogram_buckets():
    h = LatencyHistogram()
    h.observe("cb", 0.02)
    h.observe("cb", 10_000)
    wire = h.to_wire()["cb"]
    assert len(wire["counts"]) == len(LATENCY_BUCKETS_MS) + 1
    assert wire["counts"][1] == 1 and wire["counts"][-1] == 1
    assert wire["sum_ms"] == 10_000.02


def test_timed_reactor_times_each_callback_by_name(sim):
    r = TimedReactor(sim.sched, name="t")

    def on_tick() -> int:
        return 1

    assert r.invoke(on_tick) == 1
    assert r.latency.to_wire()["cb:on_tick"]["counts"][0] == 1


def _exec(cl_id, side, price, qty, leaves="0", fee="0"):
    return m.OrderExecution(
        cl_id=cl_id,
        exec_id=f"e{cl_id}{price}",
        instrument_id=9001,
        side=side,
        price=price,
        fill_qty=qty,
        leaves_qty=leaves,
        exec_ts=1,
        fee=fee,
    )


def test_position_tracker_follows_orders_positions_and_pnl(sim):
    tr = PositionTracker(sim.bus, sim.topics, "s")
    tr.start()
    topic = sim.topics.gtw_rpt(Exchange.Sim, "s")
    for cl in ("1", "2", "3"):
        sim.bus.publish(
            topic,
            m.NewOrderAck(
                cl_id=cl,
                exch_id="x" + cl,
                instrument_id=9001,
                side=Side.Buy,
                price="100",
                qty="2",
                leaves_qty="2",
                ord_type=OrderType.Limit,
                tif=TIF.GTC,
                exec_instr=ExecInstructions.Unset,
            ),
        )
    sim.bus.publish(topic, _exec("1", Side.Buy, "100", "2", fee="0.1"))
    sim.bus.publish(topic, _exec("2", Side.Sell, "110", "1", leaves="1"))
    sim.bus.publish(
        topic,
        m.OrderCancelled(cl_id="3", unsolicited=False, engine_ts=1, cancel_code=CancelCode.Unset),
    )
    sim.run_for(0)
    wire = tr.to_wire()
    pos = wire["positions"]["Sim:9001"]
    assert pos["qty"] == "1" and pos["realized"] == "10" and pos["unrealized"] == "10"
    assert wire["open_orders"] == 1
    assert Decimal(wire["pnl"]) == Decimal("19.9")
