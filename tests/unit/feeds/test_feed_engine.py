"""The feed engine's integrity state machine on hand-made events."""

from __future__ import annotations

import logging

import pytest

from mlthon.basics.book import ADD, ASK, BID, DELETE, MODIFY
from mlthon.basics.instrument import Instrument
from mlthon.basics.mlt_enum import Exchange, FeedHandlerStatus, InstrumentKind
from mlthon.feeds.engine import FeedEngine
from mlthon.feeds.events import (
    SEQ_NEXT,
    SEQ_NONE,
    SEQ_PREV,
    DepthDiff,
    DepthSnapshot,
    Disconnect,
    OrderSnapshot,
    OrderUpdate,
    Trades,
)
from mlthon.feeds.grid import Grid
from mlthon.feeds.mirror import BookMirror
from mlthon.infra.bus.messages import BookUpdate, FeedStatus, LevelUpdate, TradeUpdate

EX = Exchange.BinanceUsdm


def _inst(iid: int, name: str, ex: Exchange = EX) -> Instrument:
    return Instrument(
        instrument_id=iid,
        name=name,
        exchange=ex,
        base="B",
        quote="Q",
        kind=InstrumentKind.Linear,
        tick_size="0.1",
        lot_size="0.001",
    )


A = _inst(1, "AAA")
B = _inst(2, "BBB")
_GRID = Grid(A)  # A and B: tick 0.1, lot 0.001


def T(price: str) -> int:
    """A price text in ticks (as the engine sends it)."""
    return _GRID.tick_of(price)


def L(qty: str) -> int:
    """A size text in lots."""
    return _GRID.lots_of(qty)


class Harness:
    def __init__(self, **kw):
        self.msgs = []
        self.needed = []
        self.engine = FeedEngine(
            [A, B], self.msgs.append, on_snapshot_needed=self.needed.append, **kw
        )
        self.mirror = BookMirror()

    def feed(self, ts, ev, ex=EX):
        n = len(self.msgs)
        self.engine.on_event(ts, ex, ev, "test", ts)
        new = self.msgs[n:]
        for m in new:
            self.mirror.apply(m)
        return new


def _rest(sym, last_id, bids=(("10.0", "1"),), asks=(("11.0", "1"),), rule=SEQ_PREV):
    return DepthSnapshot(sym, 0, last_id, rule, False, list(bids), list(asks))


def _diff(sym, first, last, prev, bids=(), asks=(), rule=SEQ_PREV):
    return DepthDiff(sym, 0, first, last, prev, rule, list(bids), list(asks))


def _statuses(msgs):
    return [(m.iid, m.status) for m in msgs if isinstance(m, FeedStatus)]


def test_engine_rest_snapshot_bridges_buffered_diffs_then_publishes_image():
    h = Harness()
    assert h.feed(1, _diff("AAA", 90, 95, 89, bids=[("9.0", "5")])) == []  # stale, u < L
    assert h.feed(2, _diff("AAA", 96, 105, 95, bids=[("10.0", "2")])) == []
    out = h.feed(3, _rest("AAA", 100))
    assert _statuses(out) == [
        (1, FeedHandlerStatus.SnapshotStart),
        (1, FeedHandlerStatus.SnapshotEnd),
    ]
    image = out[1]
    assert isinstance(image, BookUpdate)
    assert image.ch == [(ADD, BID, T("10.0"), L("2")), (ADD, ASK, T("11.0"), L("1"))]
    out = h.feed(4, _diff("AAA", 106, 107, 105, asks=[("11.0", "0"), ("12.0", "3")]))
    assert out[0].ch == [(DELETE, ASK, T("11.0"), 0), (ADD, ASK, T("12.0"), L("3"))]
    assert h.mirror.violations == []
    assert h.engine.is_live(1)
    assert not h.engine.is_live(2)


def test_engine_snapshot_before_its_diff_waits_for_it():
    h = Harness()
    assert h.feed(1, _rest("AAA", 100)) == []
    out = h.feed(2, _diff("AAA", 99, 101, 98, bids=[("10.5", "1")]))
    assert _statuses(out)[-1] == (1, FeedHandlerStatus.SnapshotEnd)
    assert h.engine.book(1).bid == T("10.5") == 105


def test_engine_snapshot_older_than_buffer_asks_for_new_one():
    h = Harness()
    h.feed(1, _diff("AAA", 200, 210, 199))
    assert h.feed(2, _rest("AAA", 100)) == []
    assert h.needed == [A]
    assert h.engine.stats.gaps == 1


def test_engine_pu_gap_invalidates_only_that_instrument_then_resyncs(caplog):
    h = Harness()
    h.feed(1, _diff("AAA", 96, 105, 95))
    h.feed(1, _rest("AAA", 100))
    h.feed(2, _diff("BBB", 1, 5, 0))
    h.feed(2, _rest("BBB", 3))
    with caplog.at_level(logging.WARNING, logger="mlthon.feeds.engine"):
        out = h.feed(3, _diff("AAA", 120, 130, 119, bids=[("10.0", "7")]))
    assert _statuses(out) == [(1, FeedHandlerStatus.BookInvalid)]
    assert "AAA" in out[0].detail
    assert "gap" in out[0].detail
    assert "AAA" in caplog.text
    assert "gap" in caplog.text
    assert h.needed == [A]
    # the other instrument carries on
    out = h.feed(4, _diff("BBB", 6, 6, 5, asks=[("11.0", "2")]))
    assert out[0].iid == 2
    # nothing for AAA until a verified snapshot
    assert h.feed(5, _diff("AAA", 131, 140, 130, bids=[("9.0", "1")])) == []
    out = h.feed(6, _rest("AAA", 135))
    assert _statuses(out) == [
        (1, FeedHandlerStatus.SnapshotStart),
        (1, FeedHandlerStatus.SnapshotEnd),
    ]
    assert h.mirror.violations == []


def test_engine_spot_rule_uses_first_id_continuity():
    h = Harness()
    h.feed(1, _diff("AAA", 101, 103, -1, rule=SEQ_NEXT))
    out = h.feed(2, _rest("AAA", 100, rule=SEQ_NEXT))
    assert _statuses(out)[-1] == (1, FeedHandlerStatus.SnapshotEnd)
    assert h.feed(3, _diff("AAA", 104, 104, -1, bids=[("10.0", "3")], rule=SEQ_NEXT))[0].ch == [
        (MODIFY, BID, 100, 3000)
    ]
    out = h.feed(4, _diff("AAA", 106, 106, -1, rule=SEQ_NEXT))
    assert _statuses(out) == [(1, FeedHandlerStatus.BookInvalid)]


def test_engine_crossed_book_invalidates():
    h = Harness()
    h.feed(1, _diff("AAA", 96, 105, 95))
    h.feed(1, _rest("AAA", 100))
    out = h.feed(2, _diff("AAA", 106, 107, 105, bids=[("11.5", "1")]))
    assert _statuses(out) == [(1, FeedHandlerStatus.BookInvalid)]
    assert "crossed" in out[0].detail
    assert not any(isinstance(m, BookUpdate) for m in out)
    assert h.engine.stats.crossed == 1
    assert h.mirror.violations == []


def test_engine_negative_size_is_bad_data_and_invalidates():
    h = Harness()
    h.feed(1, _diff("AAA", 96, 105, 95))
    h.feed(1, _rest("AAA", 100))
    out = h.feed(2, _diff("AAA", 106, 107, 105, bids=[("9.0", "-1")]))
    assert _statuses(out) == [(1, FeedHandlerStatus.BookInvalid)]
    assert h.engine.stats.bad == 1
    rec = h.engine.stats.bad_records[0]
    assert rec.source == "test"
    assert rec.line == 2
    assert "size '-1' must be >= 0" in rec.why
    assert len(h.engine.book(1)) == 0  # invalid: cleared, waiting for a snapshot


def test_engine_unknown_symbol_counted_once_and_skipped():
    h = Harness()
    assert h.feed(1, Trades("ZZZ", [(1, "1", "1", 1, "x")])) == []
    assert h.feed(2, Trades("ZZZ", [(1, "1", "1", 2, "y")])) == []
    assert h.engine.stats.unknown_symbols == {"BinanceUsdm:ZZZ"}
    assert h.engine.stats.bad == 1


def test_engine_silence_invalidates_live_book():
    h = Harness(silence_timeout_ns=1_000)
    h.feed(10, _diff("AAA", 96, 105, 95))
    h.feed(10, _rest("AAA", 100))
    h.engine.check_silence(500)
    assert h.engine.is_live(1)
    h.engine.check_silence(2_000)
    assert not h.engine.is_live(1)
    assert h.msgs[-1].status is FeedHandlerStatus.BookInvalid
    assert "silent" in h.msgs[-1].detail


def test_engine_silent_connection_invalidates_a_book_synced_after_its_last_frame():
    """The snapshot (REST) came after the connection's last frame, so the book's own clock
    looks fresh; a silent connection still leaves it stale."""
    h = Harness(silence_timeout_ns=1_000)
    h.feed(10, _diff("AAA", 96, 105, 95))  # the last frame
    h.feed(900, _rest("AAA", 100))  # synchronised late, from the snapshot
    assert h.engine.is_live(1)
    h.engine.connection_silent(1_011, 0.4)  # 1,001 ns after the frame, 111 after the sync
    assert not h.engine.is_live(1)
    assert h.msgs[-1].status is FeedHandlerStatus.BookInvalid
    assert h.msgs[-1].detail.endswith("feed silent: no frame for 0.4s")
    assert h.engine.stats.silent == 1


def test_engine_disconnect_clears_every_book_of_the_venue():
    h = Harness()
    h.feed(1, _diff("AAA", 96, 105, 95))
    h.feed(1, _rest("AAA", 100))
    out = h.feed(2, Disconnect("socket closed"))
    assert _statuses(out) == [(0, FeedHandlerStatus.Disconnected)]
    assert len(h.engine.book(1)) == 0
    assert not h.engine.is_live(1)


def test_engine_in_stream_snapshot_on_live_book_publishes_difference():
    h = Harness()
    snap = DepthSnapshot(
        "AAA", 0, 5, SEQ_NEXT, True, [("10.0", "1"), ("9.0", "1")], [("11.0", "1")]
    )
    h.feed(1, snap)
    snap2 = DepthSnapshot("AAA", 0, 9, SEQ_NEXT, True, [("10.0", "2")], [("11.0", "1")])
    out = h.feed(2, snap2)
    assert len(out) == 1
    # the levels that went, best first, then the snapshot's changes in its order
    assert out[0].ch == [(DELETE, BID, T("9.0"), 0), (MODIFY, BID, T("10.0"), L("2"))]
    out = h.feed(3, _diff("AAA", 10, 10, -1, asks=[("12.0", "1")], rule=SEQ_NEXT))
    assert out[0].ch == [(ADD, ASK, T("12.0"), L("1"))]
    assert h.mirror.violations == []


def test_engine_unsequenced_diffs_before_snapshot_are_dropped():
    h = Harness()
    assert h.feed(1, _diff("AAA", -1, -1, -1, bids=[("1.0", "1")], rule=SEQ_NONE)) == []
    assert h.engine.stats.dropped_unsynced == 1


def test_engine_trades_pass_through_with_dense_seq():
    h = Harness()
    out = h.feed(1, Trades("AAA", [(2, "10.0", "1", 5, "t1")]))
    out += h.feed(2, Trades("AAA", [(1, "10.1", "2", 6, "t2")]))
    assert [type(m) for m in out] == [TradeUpdate, TradeUpdate]
    assert [m.seq for m in out] == [1, 2]
    assert out[0].tr == [(2, 100, 1000, 5, "t1")]


def test_engine_order_level_book_add_replace_remove():
    h = Harness()
    snap = OrderSnapshot("AAA", 0, [(1, BID, "10", "1"), (2, ASK, "11", "2")])
    out = h.feed(1, snap)
    assert isinstance(out[1], LevelUpdate)
    assert out[1].ch == [(ADD, BID, 1, 100, 1000), (ADD, ASK, 2, 110, 2000)]
    out = h.feed(2, OrderUpdate("AAA", 0, 3, BID, "10", "4", False))
    assert out[0].ch == [(ADD, BID, 3, 100, 4000)]
    out = h.feed(3, OrderUpdate("AAA", 0, 1, BID, "9.5", "1", False))
    assert out[0].ch == [(MODIFY, BID, 1, 95, 1000)]
    out = h.feed(4, OrderUpdate("AAA", 0, 3, BID, "0", "0", True))
    assert out[0].ch == [(DELETE, BID, 3, 100, 0)]
    assert h.feed(5, OrderUpdate("AAA", 0, 99, BID, "0", "0", True)) == []
    assert h.engine.stats.absent_deletes == 1
    book = h.engine.book(1)
    assert book.queue_at(BID, book.book.bid) == [1]
    # the order-level book's totals per price are the instrument's one price book
    assert book.book is h.engine.price_book(EX, 1)
    assert book.book.depth(BID) == [(95, 1000)]
    assert h.mirror.violations == []


@pytest.mark.parametrize("grace", [0, 3])
def test_engine_order_level_crossing_reported_after_grace_and_kept(grace):
    # a venue that marks no events: a crossing is reported once it outlasts the grace, and the
    # book stays live (an auction or pre-open crosses; it is not a lost update)
    h = Harness(l3_cross_grace=grace)
    h.feed(1, OrderSnapshot("AAA", 0, [(1, BID, "10", "1"), (2, ASK, "11", "2")]))
    out = h.feed(2, OrderUpdate("AAA", 0, 3, BID, "12", "1", False))
    expected = [(1, FeedHandlerStatus.BookCrossed)] if grace == 0 else []
    assert _statuses(out) == expected
    assert FeedHandlerStatus.BookInvalid not in [s for _, s in _statuses(out)]


def test_engine_futures_snapshot_bridges_to_diff_whose_pu_is_its_id():
    h = Harness()
    h.feed(1, _diff("AAA", 101, 110, 100, bids=[("10.0", "4")]))
    out = h.feed(2, _rest("AAA", 100))
    assert _statuses(out)[-1] == (1, FeedHandlerStatus.SnapshotEnd)
    book = h.engine.book(1)
    assert (book.bid, book.bid_lots()) == (T("10.0"), L("4"))


@pytest.mark.parametrize("qty", ["1", "7"], ids=["matching", "mismatch"])
def test_engine_later_rest_snapshot_ahead_of_book_checked_when_its_diff_arrives(qty):
    h = Harness()
    h.feed(1, _diff("AAA", 96, 105, 95))
    h.feed(1, _rest("AAA", 100))
    # A check snapshot at id 108, before the diff [106, 110] that holds it arrives.
    assert h.feed(2, _rest("AAA", 108, asks=(("11.0", qty),))) == []
    out = h.feed(3, _diff("AAA", 106, 110, 105, bids=[("10.0", "2")]))
    if qty == "1":
        assert [type(m) for m in out] == [BookUpdate]
        assert h.engine.stats.verified_snapshots == 1
    else:
        assert _statuses(out) == [
            (1, FeedHandlerStatus.BookInvalid),
            (1, FeedHandlerStatus.SnapshotStart),
            (1, FeedHandlerStatus.SnapshotEnd),
        ]
        assert sum(isinstance(m, BookUpdate) for m in out) == 1  # the image only
        assert h.engine.stats.mismatches == 1
    assert h.mirror.violations == []
    out = h.feed(4, _diff("AAA", 111, 111, 110, asks=[("11.0", "5")]))
    assert out[0].ch == [(MODIFY, ASK, T("11.0"), L("5"))]


# --- venue text to ticks and lots --------------------------------------------------------------
def _live(h: Harness) -> None:
    h.feed(1, _diff("AAA", 96, 105, 95))
    h.feed(1, _rest("AAA", 100))


def test_engine_level_off_the_tick_grid_is_counted_reported_and_left_out(caplog):
    h = Harness()
    _live(h)
    with caplog.at_level(logging.WARNING, logger="mlthon.feeds.engine"):
        out = h.feed(2, _diff("AAA", 106, 107, 105, bids=[("9.95", "1"), ("9.9", "2")]))
    assert out[0].ch == [(ADD, BID, 99, 2000)]  # 9.95 never became ticks
    stats = h.engine.stats
    assert (stats.off_grid_prices, stats.off_grid_sizes, stats.bad) == (1, 0, 1)
    assert "9.95 is not a multiple of the tick 0.1" in caplog.text
    assert h.engine.is_live(1) and h.mirror.violations == []
    # each occurrence is counted (an off-grid text is never cached)
    h.feed(3, _diff("AAA", 108, 108, 107, bids=[("9.95", "3")]))
    assert stats.off_grid_prices == 2
    # a trade off the grid is left out too
    assert h.feed(4, Trades("AAA", [(1, "10.05", "1", 4, "t1")])) == []
    assert stats.off_grid_prices == 3


def test_engine_size_off_the_lot_grid_is_rounded_down_counted_and_reported(caplog):
    h = Harness()
    _live(h)
    with caplog.at_level(logging.WARNING, logger="mlthon.feeds.engine"):
        out = h.feed(2, _diff("AAA", 106, 107, 105, bids=[("9.9", "0.0025")]))
    assert out[0].ch == [(ADD, BID, 99, 2)]  # 0.0025 -> 2 lots of 0.001
    assert (h.engine.stats.off_grid_sizes, h.engine.stats.bad) == (1, 0)
    assert "size 0.0025 is not a multiple of the lot 0.001; rounded down" in caplog.text
    # never to zero: a level less than a lot deep is there, one lot deep
    out = h.feed(3, _diff("AAA", 108, 108, 107, bids=[("9.8", "0.0004")]))
    assert out[0].ch == [(ADD, BID, 98, 1)]
    assert h.engine.stats.off_grid_sizes == 2


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("1e999999", "'1e999999' is out of range"),
        ("NaN", "'NaN' is not finite"),
        ("Infinity", "'Infinity' is not finite"),
        ("1e30", "'1e30' is out of range"),
        ("-5", "'-5' must be > 0"),
        ("0", "'0' must be > 0"),
        ("9" * 60, "60 characters long"),
    ],
)
def test_engine_price_that_is_not_sane_never_becomes_ticks(text, why):
    h = Harness()
    _live(h)
    before = list(h.msgs)
    out = h.feed(2, _diff("AAA", 106, 107, 105, bids=[(text, "1")]))
    assert _statuses(out) == [(1, FeedHandlerStatus.BookInvalid)]
    assert not any(isinstance(m, BookUpdate) for m in h.msgs[len(before) :])
    assert why in h.engine.stats.bad_records[-1].why
    assert len(h.engine.book(1)) == 0


@pytest.mark.parametrize(("price", "qty"), [("1e999999", "1"), ("10.0", "NaN"), ("10.0", "-1")])
def test_engine_trade_that_is_not_sane_is_left_out_and_reported(price, qty):
    h = Harness()
    out = h.feed(1, Trades("AAA", [(1, price, qty, 1, "bad"), (2, "10.0", "0.5", 1, "good")]))
    assert [m.tr for m in out] == [[(2, 100, 500, 1, "good")]]
    assert h.engine.stats.bad == 1 and "trade bad left out" in h.engine.stats.bad_records[0].why


def test_engine_counts_buffered_diffs_it_drops_for_a_snapshot():
    # Before issue 17 the diffs a snapshot made useless were dropped without being counted:
    # dropped_unsynced stayed 0 on every replay.
    h = Harness()
    h.feed(1, _diff("AAA", 80, 89, 79))  # older than the snapshot
    h.feed(1, _diff("AAA", 90, 95, 89))  # older too
    h.feed(1, _diff("AAA", 96, 105, 95))  # holds the snapshot's id: used
    h.feed(2, _rest("AAA", 100))
    assert h.engine.is_live(1)
    assert h.engine.stats.dropped_unsynced == 2
    h.feed(3, _diff("BBB", 1, 5, 0))  # buffered for a snapshot that never comes ...
    h.feed(4, Disconnect("gone"))  # ... and dropped with the connection
    assert h.engine.stats.dropped_unsynced == 3
