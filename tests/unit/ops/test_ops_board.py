"""StatusBoard: latest status per component, staleness, wills, transitions and errors."""

from __future__ import annotations

from mlthon.basics.mlt_enum import Exchange
from mlthon.infra.bus import messages as m
from mlthon.infra.clock import NS_PER_S
from mlthon.infra.ops.board import StatusBoard
from mlthon.infra.ops.heartbeat import Heartbeat, feed_will


def _board(sim, **kw):
    board = StatusBoard(sim.bus, sim.sched, sim.topics, check_interval_s=0.1, **kw)
    board.start()
    return board


def test_board_marks_silent_component_stale_after_timeout_then_recovers(sim):
    board = _board(sim)
    hb = Heartbeat(sim.bus, sim.sched, sim.topics, name="Sim", kind="gateway", interval_s=1.0)
    hb.start()
    sim.run_for(2.5)
    assert board.get("gateway", "Sim").state == "up"
    hb._running = False  # the process freezes: no more heartbeats, no clean stop
    hb._timer.cancel()
    sim.run_for(2.4)  # 2.9s since the last beat (at 2.0s)
    assert board.get("gateway", "Sim").state == "up"
    sim.run_for(0.2)  # over 3x the period since the last beat
    view = board.get("gateway", "Sim")
    assert view.state == "stale"
    last = board.transitions[-1]
    assert (last.old, last.new) == ("up", "stale") and "no heartbeat" in last.detail
    hb.beat()
    sim.run_for(0)
    assert board.get("gateway", "Sim").state == "up"
    assert [(t.old, t.new) for t in board.transitions] == [
        ("", "up"),
        ("up", "stale"),
        ("stale", "up"),
    ]


def test_board_stale_after_overrides_the_heartbeat_factor(sim):
    board = _board(sim, stale_after_s=0.5)
    hb = Heartbeat(sim.bus, sim.sched, sim.topics, name="c", kind="control", interval_s=10)
    hb.start()
    sim.run_for(0.7)
    assert board.get("control", "c").state == "stale"


def test_board_feed_will_marks_feed_stale_at_once_until_fresh_heartbeat(sim):
    board = _board(sim)
    hb = Heartbeat(sim.bus, sim.sched, sim.topics, name="BinanceUsdm", kind="feed", interval_s=5)
    hb.start()
    sim.run_for(0.1)
    topic, will = feed_will(sim.topics, Exchange.BinanceUsdm)
    sim.bus.publish(topic, will, retain=True)
    sim.run_for(0.1)
    view = board.get("feed", "BinanceUsdm")
    assert view.state == "stale" and "Disconnected" in view.venue
    assert board.transitions[-1].detail == "process lost (last will)"
    sim.run_for(0.1)
    hb.beat()  # the restarted process heartbeats
    sim.run_for(0)
    assert board.get("feed", "BinanceUsdm").state == "up"


def test_board_old_retained_status_is_stale_for_a_new_watcher(sim):
    old = m.ComponentStatus(
        name="f", kind="feed", state="up", ts=sim.sched.now_ns() - 60 * NS_PER_S, heartbeat_s=5
    )
    sim.bus.publish(sim.topics.component_status("feed", "f"), old, retain=True)
    board = _board(sim)
    sim.run_for(0)
    assert board.get("feed", "f").state == "stale"


def test_board_records_errors_and_snapshot_is_json_ready(sim):
    import json

    board = _board(sim)
    calls = []
    board.add_listener(lambda: calls.append(1))
    hb = Heartbeat(sim.bus, sim.sched, sim.topics, name="s1", kind="strategy", interval_s=5)
    hb.start()
    hb.error("on_tick: ZeroDivisionError: division by zero")
    sim.bus.publish(
        sim.topics.strat_status("s1"), m.StratStatus(strat="s1", state="running", callbacks=7)
    )
    sim.run_for(0)
    snap = json.loads(json.dumps(board.snapshot()))
    (comp,) = snap["components"]
    assert comp["strategy"]["callbacks"] == 7
    assert snap["errors"][0]["text"].startswith("on_tick")
    assert calls
