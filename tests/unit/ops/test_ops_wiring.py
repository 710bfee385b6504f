"""ProcessOps and its helpers: venue statuses drive the heartbeat; kill sets the trigger."""

from __future__ import annotations

import asyncio

from mlthon.basics.mlt_enum import Exchange, FeedHandlerStatus, GtwStatus
from mlthon.infra.bus import messages as m
from mlthon.infra.ops.heartbeat import feed_will
from mlthon.infra.ops.shutdown import shutdown_topic
from mlthon.infra.ops.wiring import ProcessOps, follow_venue_status, heartbeat_interval


def test_gateway_heartbeat_follows_its_status_and_ignores_wills(sim):
    ops = ProcessOps(sim.bus, sim.sched, sim.topics, kind="gateway", name="Sim", interval_s=5)
    ops.start("degraded", "starting")
    follow_venue_status(ops, sim.bus, sim.topics, "gateway", Exchange.Sim)
    topic = sim.topics.gtw_status(Exchange.Sim)
    sim.bus.publish(topic, m.GatewayStatus(exchange=Exchange.Sim, status=GtwStatus.ReadyToTrade))
    sim.run_for(0)
    assert ops.heartbeat.state == "up"
    sim.bus.publish(
        topic, m.GatewayStatus(exchange=Exchange.Sim, status=GtwStatus.Maintenance, detail="m")
    )
    sim.run_for(0)
    assert (ops.heartbeat.state, ops.heartbeat.detail) == ("degraded", "Maintenance: m")


def test_feed_heartbeat_follows_feed_status(sim):
    ops = ProcessOps(sim.bus, sim.sched, sim.topics, kind="feed", name="Sim", interval_s=5)
    ops.start()
    follow_venue_status(ops, sim.bus, sim.topics, "feed", Exchange.Sim)
    sim.bus.publish(*feed_will(sim.topics, Exchange.Sim))  # an old will: ignored
    sim.run_for(0)
    assert ops.heartbeat.state == "up"
    topic = sim.topics.feed_status(Exchange.Sim)
    sim.bus.publish(
        topic, m.FeedStatus(ex=Exchange.Sim.value, status=FeedHandlerStatus.SnapshotStart)
    )
    sim.run_for(0)
    assert ops.heartbeat.state == "degraded"


def test_process_ops_kill_sets_the_stop_event_and_close_says_down(sim):
    stop = asyncio.Event()
    ops = ProcessOps(sim.bus, sim.sched, sim.topics, kind="feed", name="X", stop=stop)
    ops.start()
    sim.bus.publish(shutdown_topic(sim.topics), m.Shutdown(target="feed/X", reason="maint"))
    sim.run_for(0)
    assert stop.is_set() and ops.heartbeat.detail == "stopping: maint"
    ops.close()
    sim.run_for(0)
    assert sim.of(m.ComponentStatus)[-1].state == "down"


def test_heartbeat_interval_from_environment(monkeypatch):
    monkeypatch.setenv("MLTHON_HEARTBEAT_S", "0.25")
    assert heartbeat_interval() == 0.25
    monkeypatch.setenv("MLTHON_HEARTBEAT_S", "soon")
    assert heartbeat_interval(3.0) == 3.0
    monkeypatch.delenv("MLTHON_HEARTBEAT_S")
    assert heartbeat_interval() == 5.0
