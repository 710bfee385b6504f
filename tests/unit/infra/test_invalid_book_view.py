"""A book that is invalid shows no levels (``env.get_book``), never the stale ones.

From ``BookInvalid`` (or the env finding the book wrong itself) until the next snapshot the view
is empty; a book being rebuilt from a snapshot and a book whose feed is merely silent (``Stale``)
keep showing their levels, as documented.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from mlthon.api import MDSub
from mlthon.basics import Exchange, FeedHandlerStatus
from mlthon.basics.tickbook import ASK, BID
from mlthon.infra.bus import messages as m
from mlthon.infra.env.book_view import EnvBook
from mlthon.infra.env.feed_watch import FeedMark
from mlthon.infra.instruments import load_instruments
from tests import md
from tests.conftest import wait_until
from tests.harness import inproc_system

SIM = Exchange.Sim
EX = SIM.value
IID = 9001
INST = next(i for i in load_instruments() if i.instrument_id == IID)


def _status(status: FeedHandlerStatus, ts: int) -> m.FeedStatus:
    return m.FeedStatus(ex=EX, iid=IID, status=status, detail="test", ts=ts)


def _seen(book: Any) -> tuple[Any, ...]:
    bb, ba = book.best_bid(), book.best_ask()
    bids, asks = book.top(5)
    return (
        None if bb is None else str(bb[0]),
        None if ba is None else str(ba[0]),
        [str(p) for p, _ in bids],
        [str(p) for p, _ in asks],
    )


def test_invalid_book_view_states_show_levels_only_when_usable():
    mark = FeedMark(SIM, 0)
    book = EnvBook(INST, mark)
    book.book.set_bid(md.ticks(IID, "100.0"), 1)
    book.book.set_ask(md.ticks(IID, "100.2"), 1)
    full = ("100.00", "100.20", ["100.00"], ["100.20"])  # Sim 9001: tick 0.10
    empty = (None, None, [], [])
    book.valid = True
    assert _seen(book) == full
    book.valid = False  # found wrong (BookInvalid, a gap): nothing shown
    assert _seen(book) == empty
    mark.stale = True  # a silent feed keeps its last levels (valid False)
    assert _seen(book) == full
    mark.stale = False
    book.building = True  # a snapshot being rebuilt shows what it holds so far
    assert _seen(book) == full


async def _valid_l2_book(s: Any) -> Any:
    await s.until("on_strat_params_update")
    env = s.env
    env.subscribe(SIM, IID, MDSub.PriceLevelBook)
    s.feed(_status(FeedHandlerStatus.SnapshotStart, 1))
    s.feed(md.book(ex=EX, iid=IID, ts=1, ch=[(0, BID, "100.0", "1"), (0, ASK, "100.2", "2")]))
    s.feed(_status(FeedHandlerStatus.SnapshotEnd, 1))
    book = env.get_book(SIM, IID)
    await wait_until(lambda: book.valid, what="the snapshot")
    assert _seen(book) == ("100.00", "100.20", ["100.00"], ["100.20"])
    return book


def _statuses(s: Any, status: FeedHandlerStatus) -> list[Any]:
    return [a for a in s.strat.of("on_feed_handler_status") if a[1] is status]


async def test_invalid_book_after_book_invalid_shows_no_levels_until_the_next_snapshot():
    async with inproc_system() as s:
        book = await _valid_l2_book(s)
        s.feed(_status(FeedHandlerStatus.BookInvalid, 2))
        await wait_until(lambda: _statuses(s, FeedHandlerStatus.BookInvalid), what="BookInvalid")
        assert not book.valid
        assert _seen(book) == (None, None, [], [])
        # The next snapshot: its levels only, none of the old ones.
        s.feed(_status(FeedHandlerStatus.SnapshotStart, 3))
        s.feed(md.book(ex=EX, iid=IID, ts=3, ch=[(0, BID, "99.0", "1"), (0, ASK, "99.3", "1")]))
        s.feed(_status(FeedHandlerStatus.SnapshotEnd, 3))
        await wait_until(lambda: book.valid, what="the next snapshot")
        assert _seen(book) == ("99.00", "99.30", ["99.00"], ["99.30"])


async def test_invalid_order_level_book_after_book_invalid_shows_no_levels():
    async with inproc_system() as s:
        await s.until("on_strat_params_update")
        env = s.env
        env.subscribe(SIM, IID, MDSub.OrderBook)
        s.feed(_status(FeedHandlerStatus.SnapshotStart, 1))
        s.feed(
            md.levels(
                ex=EX, iid=IID, ts=1, ch=[(0, BID, 7, "100.0", "1"), (0, ASK, 8, "100.2", "2")]
            )
        )
        s.feed(_status(FeedHandlerStatus.SnapshotEnd, 1))
        book = env.get_book(SIM, IID)
        await wait_until(lambda: book.valid, what="the snapshot")
        assert _seen(book) == ("100.00", "100.20", ["100.00"], ["100.20"])
        s.feed(_status(FeedHandlerStatus.BookInvalid, 2))
        await wait_until(lambda: _statuses(s, FeedHandlerStatus.BookInvalid), what="BookInvalid")
        assert (book.valid, *_seen(book)) == (False, None, None, [], [])
        # A crossed order-level book (an auction) is the venue's: valid, shown crossed.
        s.feed(_status(FeedHandlerStatus.SnapshotStart, 3))
        s.feed(
            md.levels(
                ex=EX, iid=IID, ts=3, ch=[(0, BID, 9, "100.3", "1"), (0, ASK, 10, "100.2", "1")]
            )
        )
        s.feed(_status(FeedHandlerStatus.SnapshotEnd, 3))
        s.feed(_status(FeedHandlerStatus.BookCrossed, 3))
        await wait_until(lambda: _statuses(s, FeedHandlerStatus.BookCrossed), what="BookCrossed")
        assert book.valid
        assert _seen(book) == ("100.30", "100.20", ["100.30"], ["100.20"])
        bid, ask = book.best_bid(), book.best_ask()
        assert bid is not None and ask is not None
        assert bid[0].value > ask[0].value == Decimal("100.2")
