"""Market data lost on the bus.

Over MQTT the feed publishes market data at QoS 0: a reconnect, a broker restart or a slow
consumer can lose a message, and a book missing one change is wrong until its next snapshot. The
feed numbers each instrument's messages; the env checks the numbers, and on a gap makes the book
invalid, tells the strategy and asks the feed for a snapshot. A count that starts again at 1 (a
restarted feed, which sends its own snapshot) and unnumbered messages are not gaps; on the
in-process bus, which loses nothing, the numbers are not checked at all.
"""

from __future__ import annotations

from mlthon.api import MDSub
from mlthon.basics import Exchange, FeedHandlerStatus
from mlthon.infra.bus import messages as m
from tests import md
from tests.conftest import wait_until
from tests.harness import inproc_system, mqtt_system

SIM = Exchange.Sim
EX = SIM.value


def _msgs() -> list[m.Msg]:
    return [
        m.FeedStatus(ex=EX, iid=9001, status=FeedHandlerStatus.SnapshotStart, seq=1),
        md.book(ex=EX, iid=9001, ts=1, seq=2, ch=[(0, 1, "100.0", "1"), (0, 2, "100.2", "1")]),
        m.FeedStatus(ex=EX, iid=9001, status=FeedHandlerStatus.SnapshotEnd, seq=3),
        md.book(ex=EX, iid=9001, ts=2, seq=4, ch=[(1, 1, "100.0", "2")]),
        md.trades(ex=EX, iid=9001, ts=3, seq=5, tr=[(1, "100.2", "1", 3, "t1")]),
    ]


def _invalid(s) -> list[str]:  # type: ignore[no-untyped-def]
    return [
        a[2] for a in s.strat.of("on_feed_handler_status") if a[1] is FeedHandlerStatus.BookInvalid
    ]


async def test_a_lost_message_invalidates_the_book_and_asks_for_a_snapshot(mosquitto, topic_root):
    async with mqtt_system(mosquitto.port, topic_root) as s:
        await s.until("on_strat_params_update")
        env = s.env
        assert env is not None
        requests: list[m.SnapshotRequest] = []
        probes: list[m.SnapshotRequest] = []

        def on_request(_t: str, x: m.SnapshotRequest) -> None:
            (probes if x.strat == "probe" else requests).append(x)

        s.sys_bus.subscribe(s.topics.feed_req(SIM), on_request, qos=1)
        # The subscription is in place at the broker once our own message on it comes back
        # (same connection: after the SUBSCRIBE), before the env (another connection) asks.
        s.sys_bus.publish(s.topics.feed_req(SIM), m.SnapshotRequest(ex=EX, iid=0, strat="probe"))
        await wait_until(lambda: probes, 30, "the subscription in place")
        env.subscribe(SIM, 9001, MDSub.PriceLevelBook)
        env.subscribe(SIM, 9001, MDSub.PublicTrades)
        await wait_until(lambda: requests, what="the subscriber's snapshot request")
        for msg in _msgs():
            s.feed(msg)
        await s.until("on_public_trade")
        book = env.get_book(SIM, 9001)
        assert book is not None and book.valid and env.md_gaps == 0
        # Message 6 is lost on the way: 7 arrives after 5.
        s.feed(md.book(ex=EX, iid=9001, ts=4, seq=7, ch=[(1, 2, "100.2", "4")]))
        await wait_until(lambda: _invalid(s), what="BookInvalid")
        assert not book.valid and env.md_gaps == 1
        (detail,) = _invalid(s)
        assert "1 market-data message(s) lost on the bus (feed sequence 5 then 7)" in detail
        await wait_until(lambda: len(requests) == 2, what="a snapshot request")
        assert requests[-1] == m.SnapshotRequest(ex=EX, iid=9001, strat="rec")
        # The feed's answer (unnumbered) makes the book valid again; numbering goes on from 7.
        s.feed(m.FeedStatus(ex=EX, iid=9001, status=FeedHandlerStatus.SnapshotStart))
        s.feed(md.book(ex=EX, iid=9001, ts=5, ch=[(0, 1, "100.1", "1"), (0, 2, "100.2", "4")]))
        s.feed(m.FeedStatus(ex=EX, iid=9001, status=FeedHandlerStatus.SnapshotEnd))
        s.feed(md.trades(ex=EX, iid=9001, ts=6, seq=8, tr=[(2, "100.1", "1", 6, "t2")]))
        await s.until("on_public_trade", 2)
        assert book.valid and env.md_gaps == 1
        # A restarted feed counts from 1 again: not a loss.
        for msg in _msgs():
            s.feed(msg)
        await s.until("on_public_trade", 3)
        assert book.valid and env.md_gaps == 1 and len(_invalid(s)) == 1


async def test_the_in_process_bus_does_not_check_the_numbers():
    async with inproc_system() as s:
        await s.until("on_strat_params_update")
        env = s.env
        assert env is not None
        env.subscribe(SIM, 9001, MDSub.PublicTrades)
        msgs = _msgs()
        msgs[3] = md.book(ex=EX, iid=9001, ts=2, seq=40, ch=[(1, 1, "100.0", "2")])
        for msg in msgs:
            s.feed(msg)
        await s.until("on_public_trade")
        book = env.get_book(SIM, 9001)
        assert book is not None and book.valid and env.md_gaps == 0 and not _invalid(s)
