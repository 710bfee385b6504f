"""Property tests of the order-level book and of the env's best-level detection against reference
models (dicts and sorted()), in integer ticks and lots."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlthon.api import MDSub, Strategy
from mlthon.basics.book import ASK, BID, OrderLevelBook
from mlthon.basics.instrument import Instrument
from mlthon.basics.mlt_enum import Exchange, InstrumentKind
from mlthon.basics.tickbook import TickBook
from mlthon.infra.env.md_callbacks import MdState, emit_bbo, implemented_groups

ticks = st.integers(min_value=1, max_value=40)
sides = st.sampled_from([BID, ASK])

l3_ops = st.lists(
    st.tuples(
        st.sampled_from(["add", "modify", "delete"]),
        st.integers(min_value=1, max_value=15),
        sides,
        ticks,
        st.integers(min_value=1, max_value=5),
        st.booleans(),
    ),
    max_size=150,
)


def _ref_top(ref: dict[int, dict[int, int]], n: int) -> tuple[list[Any], list[Any]]:
    bids = sorted(ref[BID].items(), key=lambda kv: -kv[0])[:n]
    asks = sorted(ref[ASK].items())[:n]
    return bids, asks


@settings(max_examples=200, deadline=None)
@given(l3_ops, st.booleans())
def test_order_level_book_random_ops_matches_reference(ops, given_book):
    agg_book = TickBook() if given_book else None
    if agg_book is not None:
        agg_book.set(BID, 99, 1)  # a book handed in is cleared first
    book = OrderLevelBook(agg_book)
    assert agg_book is None or book.book is agg_book
    # reference: id -> (side, tick, lots, priority); queue order by priority counter
    ref: dict[int, tuple[int, int, int, int]] = {}
    counter = 0
    for op, lid, side, t, n, move in ops:
        counter += 1
        if op == "add":
            if lid in ref:
                with pytest.raises(ValueError):
                    book.add(side, lid, t, n)
                continue
            book.add(side, lid, t, n)
            ref[lid] = (side, t, n, counter)
        elif op == "modify":
            if lid not in ref:
                with pytest.raises(KeyError):
                    book.modify(lid, n)
                continue
            s, old_t, _, prio = ref[lid]
            new_t = t if move else None
            book.modify(lid, n, new_t)
            if new_t is not None and new_t != old_t:
                ref[lid] = (s, new_t, n, counter)
            else:
                ref[lid] = (s, old_t, n, prio)
        else:
            got_del = book.delete(lid)
            if lid not in ref:
                assert got_del is None
                continue
            assert got_del == ref[lid][:3]
            del ref[lid]
        agg: dict[int, dict[int, int]] = {BID: {}, ASK: {}}
        for s, tt, nn, _ in ref.values():
            agg[s][tt] = agg[s].get(tt, 0) + nn
        bids, asks = _ref_top(agg, 5)
        assert (book.book.depth(BID, 5), book.book.depth(ASK, 5)) == (bids, asks)
        assert len(book) == len(ref)
        assert book.crossed == bool(bids and asks and bids[0][0] >= asks[0][0])
        for s in (BID, ASK):
            for tt in agg[s]:
                expected_q = sorted(
                    (prio, i) for i, (ss, tx, _, prio) in ref.items() if ss == s and tx == tt
                )
                assert book.queue_at(s, tt) == [i for _, i in expected_q]
                assert book.lots_at(s, tt) == agg[s][tt]
        assert book.get(lid) == (ref[lid][:3] if lid in ref else None)
        assert sorted(book.orders()) == sorted((i, s, tt, nn) for i, (s, tt, nn, _) in ref.items())


def test_order_level_book_price_change_moves_to_back_size_change_keeps_place():
    book = OrderLevelBook()
    book.add(BID, 1, 10, 1)
    book.add(BID, 2, 10, 1)
    book.add(BID, 3, 9, 1)
    book.modify(1, 5)
    assert book.queue_at(BID, 10) == [1, 2]
    assert book.lots_at(BID, 10) == 6
    book.modify(3, 1, 10)
    book.modify(1, 5, 9)
    book.modify(1, 5, 10)
    assert book.queue_at(BID, 10) == [2, 3, 1]
    assert book.lots_at(BID, 9) == 0
    assert (book.book.bid, book.book.bid_lots()) == (10, 7)
    with pytest.raises(ValueError, match="positive"):
        book.add(ASK, 9, 11, 0)
    with pytest.raises(ValueError, match="side"):
        book.add(3, 9, 11, 1)
    book.clear()
    assert len(book) == 0 and len(book.book) == 0


# --- best-level detection (the env's BBO callbacks) -----------------------------------------------
INST = Instrument(
    instrument_id=7,
    name="X",
    exchange=Exchange.Sim,
    base="X",
    quote="Y",
    kind=InstrumentKind.Linear,
    tick_size="0.5",
    lot_size="0.1",
)


class _Bbo(Strategy):
    def __init__(self) -> None:
        super().__init__("bbo")
        self.calls: list[tuple[str, Decimal, Decimal]] = []

    def on_best_bid_level_update(self, exchange, instrument_id, price, qty, recv_ts):
        self.calls.append(("bid", price.value, qty.value))

    def on_best_ask_level_update(self, exchange, instrument_id, price, qty, recv_ts):
        self.calls.append(("ask", price.value, qty.value))


class _Reactor:
    """The part of the reactor emit_bbo uses: a guarded call."""

    def invoke(self, fn: Any, *args: Any) -> None:
        fn(*args)


class _Env:
    def __init__(self, strategy: Strategy) -> None:
        self.strategy = strategy
        self.reactor = _Reactor()


class _Mark:
    seen = False


l2_ops = st.lists(st.tuples(sides, ticks, st.integers(0, 4)), max_size=200)


@settings(max_examples=200, deadline=None)
@given(l2_ops)
def test_bbo_callbacks_fire_exactly_when_a_best_level_changes(ops):
    strat = _Bbo()
    assert implemented_groups(strat) == {"bbo"}
    st_ = MdState(Exchange.Sim, INST, implemented_groups(strat), _Mark())  # type: ignore[arg-type]
    st_.subs.add(MDSub.BBO)
    st_.refresh()
    env = _Env(strat)
    ref: dict[int, dict[int, int]] = {BID: {}, ASK: {}}
    prev_b = prev_a = None
    for side, t, n in ops:
        st_.book.book.set(side, t, n)
        if n:
            ref[side][t] = n
        else:
            ref[side].pop(t, None)
        strat.calls.clear()
        emit_bbo(env, st_, 1)  # type: ignore[arg-type]
        bids, asks = _ref_top(ref, 1)
        cur_b = bids[0] if bids else None
        cur_a = asks[0] if asks else None
        want = []
        if cur_b != prev_b and cur_b is not None:
            want.append(("bid", cur_b[0] * INST.tick_size, cur_b[1] * INST.lot_size))
        if cur_a != prev_a and cur_a is not None:
            want.append(("ask", cur_a[0] * INST.tick_size, cur_a[1] * INST.lot_size))
        assert strat.calls == want
        prev_b, prev_a = cur_b, cur_a


# --- the book keeper of backtests over message objects ------------------------------------------
def test_book_keeper_keeps_one_book_per_instrument_from_the_messages():
    from mlthon.basics.mlt_enum import FeedHandlerStatus
    from mlthon.feeds.mirror import BookKeeper
    from mlthon.infra.bus.messages import BookUpdate, FeedStatus, LevelUpdate

    keeper = BookKeeper()
    a = keeper.book(Exchange.Sim, 1)
    assert keeper.book(Exchange.Sim, 1) is a  # the same object for the keeper's life
    keeper.apply(BookUpdate(ex=1, iid=1, ts=1, ch=[(0, BID, 100, 5), (0, ASK, 102, 7)]))
    keeper.apply(BookUpdate(ex=1, iid=1, ts=2, ch=[(1, BID, 100, 4), (2, ASK, 102, 0)]))
    assert (a.depth(BID), a.depth(ASK)) == ([(100, 4)], [])
    # order-level data: the book holds the totals per price
    keeper.apply(
        LevelUpdate(
            ex=1, iid=2, ts=1, ch=[(0, BID, 7, 50, 2), (0, BID, 8, 50, 3), (0, ASK, 9, 52, 1)]
        )
    )
    keeper.apply(LevelUpdate(ex=1, iid=2, ts=2, ch=[(2, BID, 7, 50, 0), (1, ASK, 9, 53, 4)]))
    b = keeper.book(Exchange.Sim, 2)
    assert (b.depth(BID), b.depth(ASK)) == ([(50, 3)], [(53, 4)])
    # the statuses after which a feed's book is empty clear it: one instrument, or the venue
    start = FeedStatus(ex=1, iid=2, status=FeedHandlerStatus.SnapshotStart)
    keeper.apply(start)
    assert len(b) == 0 and len(a) == 1
    keeper.apply(FeedStatus(ex=1, iid=0, status=FeedHandlerStatus.SnapshotEnd))  # clears nothing
    assert len(a) == 1
    keeper.apply(FeedStatus(ex=1, iid=0, status=FeedHandlerStatus.Disconnected))
    assert len(a) == 0 and keeper.book(Exchange.Sim, 1) is a
