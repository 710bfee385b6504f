"""MeteredBus counts and times; TimedReactor times callbacks."""

from __future__ import annotations

from mlthon.basics.mlt_enum import (
    FeedHandlerStatus,
    GtwRejectCode,
)
from mlthon.infra.bus import messages as m
from mlthon.infra.ops.metering import LATENCY_BUCKETS_MS, LatencyHistogram, MeteredBus, TimedReactor


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
