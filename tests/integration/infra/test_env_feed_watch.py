"""A frozen feed is reported, and again when it speaks.

A feed process sends ``FeedHeartbeat{ex, ts, limit_ms}`` while it lives (over a real mosquitto
here). When the env hears neither market data nor heartbeat of a feed for longer than its limit
(SIGSTOP on the feed used to go unnoticed: the strategy kept quoting on a frozen book), it marks
that exchange's books invalid and calls ``on_feed_handler_status(ex, Stale, ...)`` within about
the limit and a quarter; when data or heartbeats flow again, ``Resumed``, and each book asks the
feed for a snapshot and is valid again at its ``SnapshotEnd``. Without a feed process (a
backtest) the env's ``feed_silence_s`` applies, in simulated time.
"""

from __future__ import annotations

import asyncio
import contextlib
import re

from mlthon.api import MDSub
from mlthon.basics import Exchange, FeedHandlerStatus
from mlthon.infra.bus import messages as m
from mlthon.infra.bus.inproc import InProcBus
from mlthon.infra.bus.topics import Topics
from mlthon.infra.clock import SimClock, SimScheduler
from mlthon.infra.control import ControlService
from mlthon.infra.env.strat_env import StratEnv
from mlthon.infra.reactor import Reactor
from tests import md
from tests.conftest import wait_until
from tests.fakes.recorder import Recorder
from tests.fakes.scripted_gateway import ScriptedGateway
from tests.harness import mqtt_system, strategy_config

SIM = Exchange.Sim
EX = SIM.value
S = 1_000_000_000


def _snapshot(ts: int = 1) -> list[m.Msg]:
    return [
        m.FeedStatus(ex=EX, iid=9001, status=FeedHandlerStatus.SnapshotStart),
        md.book(ex=EX, iid=9001, ts=ts, ch=[(0, 1, "100.0", "1"), (0, 2, "100.2", "1")]),
        m.FeedStatus(ex=EX, iid=9001, status=FeedHandlerStatus.SnapshotEnd),
    ]


def _statuses(strat: Recorder, status: FeedHandlerStatus) -> list[str]:
    return [a[2] for a in strat.of("on_feed_handler_status") if a[1] is status]


async def test_feed_without_heartbeat_or_data_is_reported_stale_then_resumed(mosquitto, topic_root):
    async with mqtt_system(mosquitto.port, topic_root) as s:
        await s.until("on_strat_params_update")
        env = s.env
        assert env is not None
        env.subscribe(SIM, 9001, MDSub.PriceLevelBook)
        await s.strat_bus.flush()
        requests: list[m.SnapshotRequest] = []
        s.sys_bus.subscribe(s.topics.feed_req(SIM), lambda _t, x: requests.append(x), qos=1)
        for msg in _snapshot():
            s.feed(msg)
        book = env.get_book(SIM, 9001)
        assert book is not None
        await wait_until(lambda: book.valid, what="the first snapshot")
        beats = 0
        alive = asyncio.Event()
        alive.set()

        async def feed_process() -> None:
            # Beats every 50 ms, limit 250 ms, while not stopped (SIGSTOP).
            nonlocal beats
            loop = asyncio.get_running_loop()
            while True:
                await alive.wait()
                s.sys_bus.publish(
                    s.topics.feed_heartbeat(SIM),
                    m.FeedHeartbeat(ex=EX, ts=int(loop.time() * S), limit_ms=250),
                )
                beats += 1
                await asyncio.sleep(0.05)

        beat = asyncio.create_task(feed_process())
        try:
            await wait_until(lambda: beats >= 20, what="a second of heartbeats")
            assert not _statuses(s.strat, FeedHandlerStatus.Stale)  # beats alone keep it alive
            # SIGSTOP: the feed says nothing any more.
            alive.clear()
            await wait_until(
                lambda: _statuses(s.strat, FeedHandlerStatus.Stale), 30, "the stale report"
            )
            (detail,) = _statuses(s.strat, FeedHandlerStatus.Stale)
            assert detail.startswith("Sim feed silent for ") and detail.endswith("(limit 0.25s)")
            assert not book.valid and book.best_bid() is not None  # last levels, not valid
            asked = len(requests)
            # SIGCONT: beats again; the strategy is told, and the book asks for a snapshot.
            alive.set()
            await wait_until(
                lambda: _statuses(s.strat, FeedHandlerStatus.Resumed), 30, "the resumed report"
            )
            await wait_until(lambda: len(requests) > asked, what="a snapshot request")
            assert requests[-1].iid == 9001 and not book.valid
            for msg in _snapshot(ts=2):
                s.feed(msg)
            await wait_until(lambda: book.valid, what="valid at the snapshot's end")
            assert len(_statuses(s.strat, FeedHandlerStatus.Stale)) == 1
        finally:
            beat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beat


def test_feed_silence_limit_applies_in_simulated_time_without_heartbeats():
    t0 = 1_700_000_000 * S
    sched = SimScheduler(SimClock(t0))
    bus = InProcBus(sched)
    topics = Topics("bt")
    ControlService(bus, sched, topics, [strategy_config("rec", use=[9001])]).start()
    ScriptedGateway(bus, topics).start()
    strat = Recorder()
    seen_at: dict[FeedHandlerStatus, int] = {}

    def on_status(ex: Exchange, status: FeedHandlerStatus, detail: str) -> None:
        seen_at.setdefault(status, sched.now_ns())

    strat.hooks["on_feed_handler_status"] = on_status
    strat.hooks["on_start"] = lambda _p: strat.env.subscribe(SIM, 9001, MDSub.BBO)
    env = StratEnv(strat, bus, Reactor(sched), topics, feed_silence_s=4.0)
    requests: list[m.SnapshotRequest] = []
    bus.subscribe(topics.feed_req(SIM), lambda _t, x: requests.append(x))
    sched.run_until(t0)
    assert "on_start" in strat.names()

    def feed_at(ts: int, msg: m.Msg) -> None:
        sched.run_until(ts)
        bus.publish(topics.md(SIM, 9001), msg)
        sched.run_soon()

    for i in range(10):  # a message every 0.5 s: alive
        feed_at(t0 + i * S // 2, md.book(ex=EX, iid=9001, ts=t0 + i * S // 2, ch=[]))
    last = t0 + 9 * S // 2
    sched.run_until(last + 3 * S)
    assert not seen_at
    # A hole in the recording: reported between the limit and the limit and a quarter.
    sched.run_until(last + 20 * S)
    stale_at = seen_at[FeedHandlerStatus.Stale]
    assert last + 4 * S < stale_at <= last + 5 * S
    detail = strat.of("on_feed_handler_status")[0][2]
    assert re.fullmatch(r"Sim feed silent for (\d+\.\d)s \(limit 4s\)", detail), detail
    assert 4.0 < float(detail.split()[4][:-1]) <= 5.0
    book = env.get_book(SIM, 9001)
    assert book is not None and not book.valid
    asked = len(requests)
    back = last + 20 * S
    feed_at(back, md.book(ex=EX, iid=9001, ts=back, ch=[]))
    sched.run_until(back + S)
    assert back < seen_at[FeedHandlerStatus.Resumed] <= back + S // 2
    assert len(requests) == asked + 1
