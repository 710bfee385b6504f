"""The env's own copy of a book (a strategy process fed over the bus, no feed engine beside it).

A venue message is applied whole before its level callbacks run, so a strategy that reads the book
from a level callback never sees half a message (which may be crossed), the same as in a backtest
where the env reads the feed engine's book. A message the env cannot apply makes the book invalid,
tells the strategy, and asks the feed for a snapshot; the snapshot makes it valid again.
"""

from __future__ import annotations

from mlthon.api import MDSub
from mlthon.basics import Exchange, FeedHandlerStatus
from mlthon.basics.values import Price, Qty
from mlthon.infra.bus import messages as m
from tests import md
from tests.conftest import wait_until
from tests.harness import inproc_system

SIM = Exchange.Sim


def _snapshot(s, bids: list[tuple[str, str]], asks: list[tuple[str, str]]) -> None:
    s.feed(m.FeedStatus(ex=SIM.value, iid=9001, status=FeedHandlerStatus.SnapshotStart))
    ch = [(0, 1, p, q) for p, q in bids] + [(0, 2, p, q) for p, q in asks]
    s.feed(md.book(ex=SIM.value, iid=9001, ts=10, ch=ch))
    s.feed(m.FeedStatus(ex=SIM.value, iid=9001, status=FeedHandlerStatus.SnapshotEnd))


async def test_level_callbacks_read_the_whole_message_applied():
    async with inproc_system() as s:
        await s.until("on_strat_params_update")
        env = s.env
        assert env is not None
        reads: list[tuple[object, object]] = []

        def read(*_args: object) -> None:
            book = env.get_book(SIM, 9001)
            assert book is not None
            reads.append((book.best_bid(), book.best_ask()))

        for name in ("on_add_price_level", "on_delete_price_level", "on_add_level"):
            s.strat.hooks[name] = read
        env.subscribe(SIM, 9001, MDSub.PriceLevelBook)
        env.subscribe(SIM, 9001, MDSub.LevelBook)
        _snapshot(s, [("100.0", "1")], [("100.2", "2")])
        await s.until("on_feed_handler_status")
        reads.clear()
        # Applied one level at a time, the first level would cross the book (bid 100.3 over the
        # ask at 100.2); applied whole, it never is.
        s.feed(
            md.book(
                ex=SIM.value,
                iid=9001,
                ts=11,
                ch=[(0, 1, "100.3", "1"), (2, 2, "100.2", "0"), (0, 2, "100.4", "2")],
            )
        )
        await s.until("on_delete_price_level")
        await wait_until(lambda: len(reads) == 5, what="five level callbacks")
        final = ((Price("100.3"), Qty("1")), (Price("100.4"), Qty("2")))
        assert reads == [final] * 5


async def test_a_message_the_env_cannot_apply_invalidates_the_book_until_a_snapshot():
    async with inproc_system() as s:
        await s.until("on_strat_params_update")
        env = s.env
        assert env is not None
        requests: list[m.SnapshotRequest] = []
        s.sys_bus.subscribe(s.topics.feed_req(SIM), lambda _t, x: requests.append(x), qos=1)
        env.subscribe(SIM, 9001, MDSub.BBO)
        await wait_until(lambda: requests, what="the subscriber's snapshot request")
        _snapshot(s, [("100.0", "1")], [("100.2", "2")])
        await s.until("on_best_ask_level_update")
        book = env.get_book(SIM, 9001)
        assert book is not None and book.valid
        # A tick that is no price (the codec checks only that it is an int).
        s.feed(m.BookUpdate(ex=SIM.value, iid=9001, ts=11, ch=[(0, 1, -1001, 1000)]))
        await wait_until(lambda: len(requests) == 2, what="a snapshot request")
        assert requests[-1] == m.SnapshotRequest(ex=SIM.value, iid=9001, strat="rec")
        assert not book.valid
        ((_, _status, detail),) = [
            a for a in s.strat.of("on_feed_handler_status") if a[1] is FeedHandlerStatus.BookInvalid
        ]
        assert "bad book message" in detail and "9001" in detail
        # The feed answers with a snapshot: valid again, with the new book.
        _snapshot(s, [("100.1", "3")], [("100.2", "2")])
        await wait_until(lambda: book.valid, what="valid again")
        assert book.best_bid() == (Price("100.1"), Qty("3"))


async def test_a_new_grid_from_the_control_service_is_the_one_the_callbacks_use():
    import attrs

    from mlthon.infra.bus.codec import instrument_to_wire

    async with inproc_system() as s:
        await s.until("on_strat_params_update")
        env = s.env
        assert env is not None
        env.subscribe(SIM, 9001, MDSub.PriceLevelBook)
        _snapshot(s, [("100.0", "1")], [("100.2", "2")])
        await s.until("on_add_price_level", 2)
        # The control service tells a finer tick (0.01 instead of 0.10): ticks mean other prices.
        finer = attrs.evolve(env.get_instrument(SIM, 9001), tick_size="0.01")
        instruments = [
            instrument_to_wire(finer if i.instrument_id == 9001 else i)
            for i in env.get_instruments()
        ]
        s.sys_bus.publish(s.topics.strat_ctl("rec"), m.Instruments(instruments=instruments), qos=1)
        await wait_until(lambda: env.get_instrument(SIM, 9001).tick_size == finer.tick_size)
        s.feed(m.BookUpdate(ex=SIM.value, iid=9001, ts=12, ch=[(0, 1, 10001, 1000)]))
        await s.until("on_add_price_level", 3)
        assert s.strat.of("on_add_price_level")[-1][3] == Price("100.01")
