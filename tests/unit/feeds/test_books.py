"""Property tests of the books against a reference model (dict + sorted())."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlthon.basics.book import (
    ADD,
    ASK,
    BID,
    DELETE,
    MODIFY,
    NO_CHANGE,
    BboTracker,
    OrderLevelBook,
    PriceLevelBook,
)
from mlthon.basics.values import Price, Qty

prices = st.integers(min_value=1, max_value=40).map(lambda i: Decimal(i) / 4)
qtys = st.integers(min_value=0, max_value=5).map(lambda i: Decimal(i) / 2)
sides = st.sampled_from([BID, ASK])
l2_ops = st.lists(st.tuples(sides, prices, qtys), max_size=200)


def _ref_top(ref: dict[int, dict[Decimal, Decimal]], n: int):
    bids = sorted(ref[BID].items(), key=lambda kv: -kv[0])[:n]
    asks = sorted(ref[ASK].items())[:n]
    return bids, asks


@settings(max_examples=200, deadline=None)
@given(l2_ops)
def test_price_level_book_random_ops_matches_reference(ops):
    book = PriceLevelBook()
    ref: dict[int, dict[Decimal, Decimal]] = {BID: {}, ASK: {}}
    for side, p, q in ops:
        levels = ref[side]
        if q == 0:
            expected = DELETE if p in levels else NO_CHANGE
            levels.pop(p, None)
        elif p not in levels:
            expected = ADD
            levels[p] = q
        elif levels[p] == q:
            expected = NO_CHANGE
        else:
            expected = MODIFY
            levels[p] = q
        assert book.apply(side, Price(p), Qty(q)) == expected
        bids, asks = _ref_top(ref, 5)
        got_b, got_a = book.top(5)
        assert [(x.value, y.value) for x, y in got_b] == bids
        assert [(x.value, y.value) for x, y in got_a] == asks
        assert book.best_bid_dec() == (bids[0] if bids else None)
        assert book.best_ask_dec() == (asks[0] if asks else None)
        assert len(book) == len(ref[BID]) + len(ref[ASK])
        assert book.depth(BID) == len(ref[BID])
        assert book.is_crossed() == bool(bids and asks and bids[0][0] >= asks[0][0])
        qa = book.qty_at(side, Price(p))
        assert (qa.value if qa is not None else None) == levels.get(p)


def test_price_level_book_add_modify_delete_strict():
    book = PriceLevelBook()
    book.add(BID, Price("10"), Qty("1"))
    with pytest.raises(ValueError, match="already exists"):
        book.add(BID, Price("10"), Qty("2"))
    book.modify(BID, Price("10"), Qty("3"))
    assert book.best_bid() == (Price("10"), Qty("3"))
    with pytest.raises(KeyError):
        book.modify(ASK, Price("10"), Qty("3"))
    book.delete(BID, Price("10"))
    assert book.best_bid() is None
    with pytest.raises(KeyError):
        book.delete(BID, Price("10"))
    with pytest.raises(ValueError, match="negative"):
        book.apply(BID, Price("10"), Qty("-1"))
    with pytest.raises(ValueError, match="side"):
        book.apply(3, Price("10"), Qty("1"))


def test_price_level_book_heap_churn_stays_bounded():
    book = PriceLevelBook()
    for i in range(10_000):
        book.apply_dec(BID, Decimal(i % 7 + 100), Decimal(1))
        book.apply_dec(BID, Decimal(i % 7 + 100), Decimal(0))
    assert book.best_bid() is None
    assert len(book._bids.heap) < 200


# --- order-level book --------------------------------------------------------------------------
l3_ops = st.lists(
    st.tuples(
        st.sampled_from(["add", "modify", "delete"]),
        st.integers(min_value=1, max_value=15),
        sides,
        prices,
        st.integers(min_value=1, max_value=5).map(Decimal),
        st.booleans(),
    ),
    max_size=150,
)


@settings(max_examples=200, deadline=None)
@given(l3_ops)
def test_order_level_book_random_ops_matches_reference(ops):
    book = OrderLevelBook()
    # reference: id -> (side, price, qty, priority); queue order by priority counter
    ref: dict[int, tuple[int, Decimal, Decimal, int]] = {}
    counter = 0
    for op, lid, side, p, q, move in ops:
        counter += 1
        if op == "add":
            if lid in ref:
                with pytest.raises(ValueError):
                    book.add(side, lid, Price(p), Qty(q))
                continue
            book.add(side, lid, Price(p), Qty(q))
            ref[lid] = (side, p, q, counter)
        elif op == "modify":
            if lid not in ref:
                with pytest.raises(KeyError):
                    book.modify(lid, Qty(q))
                continue
            s, old_p, _, prio = ref[lid]
            new_p = p if move else None
            book.modify(lid, Qty(q), None if new_p is None else Price(new_p))
            if new_p is not None and new_p != old_p:
                ref[lid] = (s, new_p, q, counter)
            else:
                ref[lid] = (s, old_p, q, prio)
        else:
            if lid not in ref:
                with pytest.raises(KeyError):
                    book.delete(lid)
                continue
            book.delete(lid)
            del ref[lid]
        agg: dict[int, dict[Decimal, Decimal]] = {BID: {}, ASK: {}}
        for s, pp, qq, _ in ref.values():
            agg[s][pp] = agg[s].get(pp, Decimal(0)) + qq
        bids, asks = _ref_top(agg, 5)
        got_b, got_a = book.top(5)
        assert [(x.value, y.value) for x, y in got_b] == bids
        assert [(x.value, y.value) for x, y in got_a] == asks
        assert len(book) == len(ref)
        for s in (BID, ASK):
            for pp in agg[s]:
                expected_q = sorted(
                    (prio, i) for i, (ss, px, _, prio) in ref.items() if ss == s and px == pp
                )
                assert book.queue_at(s, Price(pp)) == [i for _, i in expected_q]
        got = book.get(lid)
        if lid in ref:
            assert got is not None
            assert (got[0], got[1].value, got[2].value) == ref[lid][:3]
        else:
            assert got is None


def test_order_level_book_price_change_moves_to_back_size_change_keeps_place():
    book = OrderLevelBook()
    book.add(BID, 1, Price("10"), Qty("1"))
    book.add(BID, 2, Price("10"), Qty("1"))
    book.add(BID, 3, Price("9"), Qty("1"))
    book.modify(1, Qty("5"))
    assert book.queue_at(BID, Price("10")) == [1, 2]
    assert book.qty_at(BID, Price("10")) == Qty("6")
    book.modify(3, Qty("1"), Price("10"))
    book.modify(1, Qty("5"), Price("9"))
    book.modify(1, Qty("5"), Price("10"))
    assert book.queue_at(BID, Price("10")) == [2, 3, 1]
    assert book.qty_at(BID, Price("9")) is None
    assert book.best_bid() == (Price("10"), Qty("7"))


# --- BBO detector ------------------------------------------------------------------------------
@settings(max_examples=200, deadline=None)
@given(l2_ops)
def test_bbo_tracker_fires_exactly_when_best_level_changes(ops):
    book = PriceLevelBook()
    tracker = BboTracker()
    ref: dict[int, dict[Decimal, Decimal]] = {BID: {}, ASK: {}}
    prev_b = prev_a = None
    for side, p, q in ops:
        book.apply(side, Price(p), Qty(q))
        if q == 0:
            ref[side].pop(p, None)
        else:
            ref[side][p] = q
        bids, asks = _ref_top(ref, 1)
        cur_b = bids[0] if bids else None
        cur_a = asks[0] if asks else None
        assert tracker.update(book) == (cur_b != prev_b, cur_a != prev_a)
        prev_b, prev_a = cur_b, cur_a
