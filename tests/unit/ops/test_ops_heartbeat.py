"""Heartbeat: retained status on changes and periodically, rates, down on stop, wills."""

from __future__ import annotations

import pytest

from mlthon.basics.mlt_enum import Exchange, FeedHandlerStatus, GtwStatus
from mlthon.infra.bus import messages as m
from mlthon.infra.ops.heartbeat import (
    FEED_LOST,
    GATEWAY_LOST,
    Heartbeat,
    Stats,
    component_will,
    feed_will,
    gateway_will,
    mlthon_version,
)


def test_heartbeat_start_publishes_up_retained_then_every_interval(sim):
    counters = {"events": 0}
    hb = Heartbeat(
        sim.bus,
        sim.sched,
        sim.topics,
        name="BinanceUsdm",
        kind="feed",
        interval_s=1.0,
        stats=lambda: Stats(counters=dict(counters), lag_ms=1.5),
    )
    hb.start()
    sim.run_for(0)
    first = sim.of(m.ComponentStatus)
    assert len(first) == 1 and first[0].state == "up" and first[0].version == mlthon_version()
    assert sim.bus._retained["t/status/feed/BinanceUsdm"] is first[0]
    counters["events"] = 50
    sim.run_for(1.0)
    beats = sim.of(m.ComponentStatus)
    assert len(beats) == 2
    assert beats[1].rates == {"events": 50.0}
    assert beats[1].extra["counters"] == {"events": 50}
    assert beats[1].lag_ms == 1.5 and beats[1].heartbeat_s == 1.0


def test_heartbeat_state_change_publishes_at_once_and_stop_publishes_down(sim):
    hb = Heartbeat(sim.bus, sim.sched, sim.topics, name="s1", kind="strategy", interval_s=10)
    hb.start()
    hb.set_state("degraded", "stopped")
    hb.set_state("degraded", "stopped")  # no change, nothing published
    hb.error("boom")
    hb.stop()
    sim.run_for(30)  # no heartbeat after stop
    states = [(s.state, s.detail, s.last_error) for s in sim.of(m.ComponentStatus)]
    assert states == [
        ("up", "", ""),
        ("degraded", "stopped", ""),
        ("degraded", "stopped", "boom"),
        ("down", "stopped", "boom"),
    ]


def test_heartbeat_bad_arguments_raise():
    with pytest.raises(ValueError, match="component name"):
        Heartbeat(None, None, None, name="a/b", kind="feed")  # type: ignore[arg-type]


def test_heartbeat_unknown_state_raises(sim):
    hb = Heartbeat(sim.bus, sim.sched, sim.topics, name="x", kind="feed")
    with pytest.raises(ValueError, match="state"):
        hb.set_state("sleepy")


def test_wills_name_the_lost_process(sim):
    topic, msg = component_will(sim.topics, "strategy", "s1")
    assert topic == "t/status/strategy/s1" and msg.state == "stale"
    topic, gmsg = gateway_will(sim.topics, Exchange.Sim)
    assert topic == "t/gtw/Sim/status"
    assert gmsg.status is GtwStatus.Connecting and gmsg.detail == GATEWAY_LOST
    topic, fmsg = feed_will(sim.topics, Exchange.BinanceUsdm)
    assert topic == "t/feed/BinanceUsdm/status"
    assert fmsg.status is FeedHandlerStatus.Disconnected and fmsg.detail == FEED_LOST


def test_heartbeat_ignores_state_changes_after_stop(sim):
    hb = Heartbeat(sim.bus, sim.sched, sim.topics, name="s1", kind="feed", interval_s=10)
    hb.start()
    hb.stop()
    hb.set_state("degraded", "late echo of a venue status")
    sim.run_for(0)
    assert [s.state for s in sim.of(m.ComponentStatus)] == ["up", "down"]
