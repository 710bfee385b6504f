"""A broker restart: the strategy logs in again and every market-data message is handled once.

On losing the broker the env used to drop its market-data subscription's record without ending
it, and the login after the reconnect subscribed again: two live handlers per instrument, every
message handled twice ("feed sequence 312 then 312"), each seen as out of order, each asking for
a snapshot, itself handled twice: an endless BookInvalid / snapshot storm. The env now keeps its
subscriptions (the bus restores them on reconnect), so there is exactly one per topic however
often it reconnects, and trading resumes by itself.
"""

from __future__ import annotations

from mlthon.api import MDSub
from mlthon.basics import Exchange, FeedHandlerStatus, Price, Qty, Side
from mlthon.infra.bus import messages as m
from tests import md
from tests.harness import System, mqtt_system

SIM = Exchange.Sim
EX = SIM.value


def _levels(s: System) -> int:
    return len(s.strat.of("on_modify_price_level"))


def _invalid(s: System) -> int:
    return sum(
        1 for a in s.strat.of("on_feed_handler_status") if a[1] is FeedHandlerStatus.BookInvalid
    )


async def _stream(s: System, seqs: range) -> None:
    """Book changes numbered ``seqs``, then a trade after them (on the same topic, so it arrives
    last)."""
    for seq in seqs:
        s.feed(md.book(ex=EX, iid=9001, ts=seq, seq=seq, ch=[(1, 1, "100.0", str(seq))]))
    trades = len(s.strat.of("on_public_trade"))
    s.feed(md.trades(ex=EX, iid=9001, ts=seqs[-1], tr=[(1, "100.2", "1", 1, f"t{seqs[-1]}")]))
    await s.until("on_public_trade", trades + 1, timeout=10)


async def test_relogin_after_broker_restart_handles_each_md_message_once(broker, topic_root):
    async with mqtt_system(broker.port, topic_root) as s:
        await s.until("on_strat_params_update")
        env = s.env
        assert env is not None
        env.subscribe(SIM, 9001, MDSub.PriceLevelBook)
        env.subscribe(SIM, 9001, MDSub.PublicTrades)
        await s.strat_bus.flush()
        s.feed(m.FeedStatus(ex=EX, iid=9001, status=FeedHandlerStatus.SnapshotStart, seq=1))
        s.feed(md.book(ex=EX, iid=9001, ts=1, seq=2, ch=[(0, 1, "100.0", "1")]))
        s.feed(m.FeedStatus(ex=EX, iid=9001, status=FeedHandlerStatus.SnapshotEnd, seq=3))
        await _stream(s, range(4, 14))
        assert _levels(s) == 10 and _invalid(s) == 0
        for _ in range(2):  # two broker restarts
            broker.stop()
            connects = len(s.strat.of("on_framework_connected"))
            await s.until("on_framework_disconnected", connects, timeout=10)
            broker.start()
            await s.until("on_framework_connected", connects + 1, timeout=15)
            await s.sys_bus.wait_connected(15)
            await s.until("on_strat_params_update", connects + 1, timeout=10)
        # The feed goes on numbering where it was (nothing was published meanwhile).
        before = _levels(s)
        await _stream(s, range(14, 34))
        assert _levels(s) - before == 20  # each message once
        assert _invalid(s) == 0 and env.md_gaps == 0
        book = env.get_book(SIM, 9001)
        assert book is not None and book.valid and book.best_bid() == (Price("100.0"), Qty("33"))
        # Trading resumes without a hand: the gateway answers again.
        env.send_new_order(None, SIM, 9001, Side.Buy, "100.0", "0.001")
        await s.until("on_new_order_ack", timeout=10)
        assert len(s.strat.of("on_start")) == 1
