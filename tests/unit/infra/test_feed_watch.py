"""The feed watch in simulated time: a backtest venue is timed from its first message."""

from __future__ import annotations

from mlthon.basics.mlt_enum import Exchange
from mlthon.infra.clock import NS_PER_S, SimScheduler
from mlthon.infra.env.feed_watch import FeedWatch


def test_feed_watch_default_limit_counts_from_the_first_message():
    sched = SimScheduler()
    sched.clock.advance_to(1_000 * NS_PER_S)
    said: list[tuple[str, Exchange, str]] = []
    watch = FeedWatch(
        sched,
        2.0,
        lambda ex, d: said.append(("stale", ex, d)),
        lambda ex, d: said.append(("resumed", ex, d)),
    )
    mark = watch.mark(Exchange.Deribit)
    watch.watch(Exchange.Deribit)
    t0 = sched.now_ns()
    sched.run_until(t0 + 30 * NS_PER_S)  # its data begin later than another venue's
    assert said == []
    mark.seen = True  # the first message
    sched.run_until(t0 + 31 * NS_PER_S)
    assert said == []
    sched.run_until(t0 + 35 * NS_PER_S)  # then silent for 4 s, past the 2 s limit
    assert [(k, ex) for k, ex, _ in said] == [("stale", Exchange.Deribit)]
    assert "limit 2s" in said[0][2]
    mark.seen = True
    sched.run_until(t0 + 36 * NS_PER_S)
    assert [k for k, _, _ in said] == ["stale", "resumed"]
    watch.close()


def test_feed_watch_heartbeat_feed_is_timed_from_the_watch():
    sched = SimScheduler()
    sched.clock.advance_to(1_000 * NS_PER_S)
    said: list[str] = []
    watch = FeedWatch(sched, None, lambda ex, d: said.append(d), lambda ex, d: None)
    watch.watch(Exchange.Sim)
    watch.heartbeat(Exchange.Sim, 1_000)  # a live feed: its limit from its heartbeat
    sched.run_until(sched.now_ns() + 3 * NS_PER_S)  # then frozen (SIGSTOP)
    assert len(said) == 1 and "silent" in said[0]
    watch.close()
