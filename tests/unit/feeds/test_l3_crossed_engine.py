"""An order-level (L3) book that crosses (an auction, a pre-open) is reported and kept.

A venue that sends every order (CME through Databento MBO) shows orders that cross while it is in
auction; the book is the venue's own, so the feed engine keeps it live, says ``BookCrossed`` once,
goes on applying and emitting the updates and says ``Resumed`` when it uncrosses. A price-level
book that crosses has lost an update and is still invalidated.
"""

from __future__ import annotations

from typing import Any

from mlthon.basics.instrument import Instrument
from mlthon.basics.mlt_enum import Exchange, FeedHandlerStatus, InstrumentKind
from mlthon.basics.tickbook import ADD, ASK, BID, DELETE
from mlthon.feeds.engine import FeedEngine
from mlthon.feeds.events import SEQ_PREV, DepthDiff, DepthSnapshot, OrderSnapshot, OrderUpdate
from mlthon.feeds.grid import Grid
from mlthon.feeds.mirror import BookMirror
from mlthon.infra.bus.messages import FeedStatus, LevelUpdate, Msg

EX = Exchange.Cme
AAA = Instrument(
    instrument_id=1,
    name="AAA",
    exchange=EX,
    base="B",
    quote="Q",
    kind=InstrumentKind.Linear,
    tick_size="0.25",
    lot_size="1",
)
GRID = Grid(AAA)
CROSSED = FeedHandlerStatus.BookCrossed
RESUMED = FeedHandlerStatus.Resumed


def T(price: str) -> int:
    return GRID.tick_of(price)


class Feed:
    def __init__(self, **kw: Any) -> None:
        self.msgs: list[Msg] = []
        self.engine = FeedEngine([AAA], self.msgs.append, **kw)
        self.mirror = BookMirror()

    def __call__(self, ts: int, ev: Any) -> list[Msg]:
        n = len(self.msgs)
        self.engine.on_event(ts, EX, ev, "test", ts)
        new = self.msgs[n:]
        for m in new:
            self.mirror.apply(m)
        return new


def _statuses(msgs: list[Msg]) -> list[FeedHandlerStatus]:
    return [m.status for m in msgs if isinstance(m, FeedStatus)]


def _kinds(msgs: list[Msg]) -> list[Any]:
    return [m.status if isinstance(m, FeedStatus) else type(m) for m in msgs]


def _add(oid: int, side: int, price: str, size: str, last: bool | None = True) -> OrderUpdate:
    return OrderUpdate("AAA", 0, oid, side, price, size, False, last)


def _cancel(oid: int, side: int, last: bool | None = True) -> OrderUpdate:
    return OrderUpdate("AAA", 0, oid, side, "0", "0", True, last)


def _preopen(**kw: Any) -> Feed:
    feed = Feed(**kw)
    feed(1, OrderSnapshot("AAA", 0, [(1, BID, "100", "2"), (2, ASK, "101", "3")]))
    return feed


def test_l3_book_crossing_at_event_end_reported_once_kept_and_resumed():
    feed = _preopen()
    # A pre-open bid above the best ask: the book is crossed after the venue's event.
    out = feed(2, _add(3, BID, "102", "5"))
    assert _kinds(out) == [LevelUpdate, CROSSED]
    assert out[0].ch == [(ADD, BID, 3, T("102"), 5)]
    detail = out[1].detail
    assert "AAA" in detail and "crossed" in detail and "102" in detail and "101" in detail
    eng = feed.engine
    assert eng.is_live(1)
    book = eng.price_book(EX, 1)
    assert book is not None and book.crossed and (book.bid, book.ask) == (T("102"), T("101"))
    assert eng.stats.crossed_kept == 1 and eng.stats.crossed == 0
    # Still crossed: the updates go on, the status is not repeated.
    out = feed(3, _add(4, ASK, "99.5", "1"))
    assert _kinds(out) == [LevelUpdate]
    out = feed(4, _cancel(4, ASK))
    assert _kinds(out) == [LevelUpdate]
    # The open: the crossing orders go (the auction matched them); the book uncrosses.
    out = feed(5, _cancel(2, ASK, last=False))
    assert _kinds(out) == [LevelUpdate]
    out = feed(5, _cancel(3, BID))
    assert _kinds(out) == [LevelUpdate, RESUMED]
    assert "no longer crossed" in out[1].detail
    assert not book.crossed and eng.is_live(1)
    assert eng.stats.crossed_kept == 1
    # Crossing again later is reported again.
    out = feed(6, _add(5, ASK, "99", "1"))
    assert _statuses(out) == [CROSSED]
    assert eng.stats.crossed_kept == 2
    assert feed.mirror.violations == []


def test_l3_book_crossed_inside_a_venue_event_not_reported():
    feed = _preopen()
    # A match sent as several records: the taker's order first, the maker's removal last.
    assert _kinds(feed(2, _add(3, BID, "101.5", "3", last=False))) == [LevelUpdate]
    out = feed(2, _cancel(2, ASK))
    assert _kinds(out) == [LevelUpdate]
    assert feed.engine.stats.crossed_kept == 0


def test_l3_book_of_a_venue_without_events_reported_after_the_grace_and_kept():
    feed = _preopen(l3_cross_grace=2)
    assert _statuses(feed(2, _add(3, BID, "102", "1", last=None))) == []
    assert _statuses(feed(3, _add(4, BID, "102", "1", last=None))) == []
    out = feed(4, _add(5, BID, "102", "1", last=None))
    assert _kinds(out) == [LevelUpdate, CROSSED]
    assert feed.engine.is_live(1)
    for oid in (3, 4, 5):
        out = feed(5, _cancel(oid, BID, last=None))
    assert _kinds(out) == [LevelUpdate, RESUMED]


def test_l3_snapshot_taken_crossed_goes_live_and_is_reported_after_its_image():
    feed = Feed()
    out = feed(1, OrderSnapshot("AAA", 0, [(1, BID, "102", "2"), (2, ASK, "101", "3")]))
    assert _statuses(out) == [
        FeedHandlerStatus.SnapshotStart,
        FeedHandlerStatus.SnapshotEnd,
        CROSSED,
    ]
    assert feed.engine.is_live(1)
    # The image of the book as a late subscriber gets it says so again.
    n = len(feed.msgs)
    feed.engine.emit_book_images(2)
    out = feed.msgs[n:]
    assert _statuses(out) == [
        FeedHandlerStatus.SnapshotStart,
        FeedHandlerStatus.SnapshotEnd,
        CROSSED,
    ]
    out = feed(3, _cancel(1, BID))
    assert _kinds(out) == [LevelUpdate, RESUMED]
    assert out[0].ch == [(DELETE, BID, 1, T("102"), 0)]


def test_l2_book_that_crosses_still_invalidated():
    feed = Feed()
    feed(1, DepthDiff("AAA", 0, 101, 101, 100, SEQ_PREV, [], []))
    feed(1, DepthSnapshot("AAA", 0, 100, SEQ_PREV, False, [("100", "1")], [("101", "1")]))
    assert feed.engine.is_live(1)
    out = feed(2, DepthDiff("AAA", 0, 102, 102, 101, SEQ_PREV, [("102", "1")], []))
    assert _statuses(out) == [FeedHandlerStatus.BookInvalid]
    assert not feed.engine.is_live(1) and feed.engine.stats.crossed == 1
