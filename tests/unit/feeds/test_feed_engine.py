"""The feed engine's integrity state machine on hand-made events."""

from __future__ import annotations

import logging
from decimal import Decimal

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
    assert sorted(image.ch) == sorted([(ADD, BID, "10.0", "2"), (ADD, ASK, "11.0", "1")])
    out = h.feed(4, _diff("AAA", 106, 107, 105, asks=[("11.0", "0"), ("12.0", "3")]))
    assert out[0].ch == [(DELETE, ASK, "11.0", "0"), (ADD, ASK, "12.0", "3")]
    assert h.mirror.violations == []
    assert h.engine.is_live(1)
    assert not h.engine.is_live(2)


def test_engine_snapshot_before_its_diff_waits_for_it():
    h = Harness()
    assert h.feed(1, _rest("AAA", 100)) == []
    out = h.feed(2, _diff("AAA", 99, 101, 98, bids=[("10.5", "1")]))
    assert _statuses(out)[-1] == (1, FeedHandlerStatus.SnapshotEnd)
    assert h.engine.book(1).best_bid_dec()[0] == 10.5


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
        (MODIFY, BID, "10.0", "3")
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
    assert "negative" in rec.why


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
    assert sorted(out[0].ch) == sorted([(DELETE, BID, "9.0", "0"), (MODIFY, BID, "10.0", "2")])
    out = h.feed(3, _diff("AAA", 10, 10, -1, asks=[("12.0", "1")], rule=SEQ_NEXT))
    assert out[0].ch == [(ADD, ASK, "12.0", "1")]
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
    assert out[0].tr == [(2, "10.0", "1", 5, "t1")]


def test_engine_order_level_book_add_replace_remove():
    h = Harness()
    snap = OrderSnapshot("AAA", 0, [(1, BID, "10", "1"), (2, ASK, "11", "2")])
    out = h.feed(1, snap)
    assert isinstance(out[1], LevelUpdate)
    assert sorted(out[1].ch) == [(ADD, BID, 1, "10", "1"), (ADD, ASK, 2, "11", "2")]
    out = h.feed(2, OrderUpdate("AAA", 0, 3, BID, "10", "4", False))
    assert out[0].ch == [(ADD, BID, 3, "10", "4")]
    out = h.feed(3, OrderUpdate("AAA", 0, 1, BID, "9.5", "1", False))
    assert out[0].ch == [(MODIFY, BID, 1, "9.5", "1")]
    out = h.feed(4, OrderUpdate("AAA", 0, 3, BID, "0", "0", True))
    assert out[0].ch == [(DELETE, BID, 3, "10", "0")]
    assert h.feed(5, OrderUpdate("AAA", 0, 99, BID, "0", "0", True)) == []
    assert h.engine.stats.absent_deletes == 1
    book = h.engine.book(1)
    assert book.queue_at(BID, book.best_bid()[0]) == [1]
    assert h.mirror.violations == []


@pytest.mark.parametrize("grace", [0, 3])
def test_engine_order_level_crossing_tolerated_within_grace(grace):
    h = Harness(l3_cross_grace=grace)
    h.feed(1, OrderSnapshot("AAA", 0, [(1, BID, "10", "1"), (2, ASK, "11", "2")]))
    out = h.feed(2, OrderUpdate("AAA", 0, 3, BID, "12", "1", False))
    crossed_invalid = _statuses(out) == [(1, FeedHandlerStatus.BookInvalid)]
    assert crossed_invalid is (grace == 0)


def test_engine_futures_snapshot_bridges_to_diff_whose_pu_is_its_id():
    h = Harness()
    h.feed(1, _diff("AAA", 101, 110, 100, bids=[("10.0", "4")]))
    out = h.feed(2, _rest("AAA", 100))
    assert _statuses(out)[-1] == (1, FeedHandlerStatus.SnapshotEnd)
    assert h.engine.book(1).best_bid_dec() == (Decimal("10.0"), Decimal("4"))


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
    assert out[0].ch == [(MODIFY, ASK, "11.0", "5")]
