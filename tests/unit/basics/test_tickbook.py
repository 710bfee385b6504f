"""The one price-level book in ticks and lots: every sequence of changes leaves it equal to a plain
reference (a dict per side), with the right best levels; for the pure-Python book and the compiled
one alike (tests/unit/core has the compiled book's own tests)."""

from __future__ import annotations

import importlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlthon.basics.tickbook import ADD, ASK, BID, DELETE, MODIFY, NO_ASK, NO_BID, PyTickBook


def _compiled() -> type | None:
    try:
        return importlib.import_module("mlthon._core.tickbook").TickBook  # type: ignore[no-any-return]
    except ImportError:
        return None


COMPILED = _compiled()
# Both classes, whichever one `TickBook` names in this process (MLTHON_PURE only picks that).
IMPLEMENTATIONS: list[type] = [PyTickBook] + ([COMPILED] if COMPILED is not None else [])


@pytest.fixture(
    params=[
        PyTickBook,
        pytest.param(
            COMPILED,
            marks=pytest.mark.skipif(COMPILED is None, reason="compiled core not built"),
        ),
    ],
    ids=["pure", "compiled"],
)
def book_cls(request):
    return request.param


def test_tickbook_empty_has_no_best_and_is_not_crossed(book_cls):
    book = book_cls()
    assert (book.bid, book.ask) == (NO_BID, NO_ASK)
    assert not book.crossed and len(book) == 0
    assert book.bid_lots() == 0 and book.ask_lots() == 0
    assert book.depth(BID) == [] and book.depth(ASK, 5) == []


def test_tickbook_set_returns_the_previous_lots_and_tracks_the_best(book_cls):
    book = book_cls()
    assert book.set(BID, 100, 5) == 0
    assert book.set(BID, 101, 2) == 0
    assert book.set(BID, 101, 3) == 2
    assert book.set(ASK, 103, 7) == 0
    assert (book.bid, book.ask, book.bid_lots(), book.ask_lots()) == (101, 103, 3, 7)
    assert book.set(BID, 101, 0) == 3  # the best goes: the next one below is found
    assert book.bid == 100
    assert book.set(BID, 99, 0) == 0  # removing what is not there changes nothing
    assert book.depth(BID) == [(100, 5)] and book.count(BID) == 1 and book.count(ASK) == 1
    with pytest.raises(ValueError, match="side"):
        book.set(3, 1, 1)


def test_tickbook_best_found_across_a_wide_gap(book_cls):
    book = book_cls()
    book.set(BID, 10, 1)
    book.set(BID, 100_000, 1)
    book.set(ASK, 200_000, 1)
    book.set(ASK, 900_000, 1)
    book.set(BID, 100_000, 0)
    book.set(ASK, 200_000, 0)
    assert (book.bid, book.ask) == (10, 900_000)


def test_tickbook_apply_takes_a_whole_message(book_cls):
    book = book_cls()
    book.apply([(ADD, BID, 50, 1), (ADD, ASK, 52, 2), (MODIFY, BID, 50, 4), (DELETE, ASK, 52, 0)])
    assert book.depth(BID) == [(50, 4)] and book.ask == NO_ASK
    book.clear()
    assert len(book) == 0 and book.bid == NO_BID


def test_tickbook_walks_each_side_best_first_past_gaps(book_cls):
    book = book_cls()
    for t in (100, 99, 97, 10):
        book.set(BID, t, 1)
    for t in (101, 103, 200_000):
        book.set(ASK, t, 1)
    walked, t = [], book.bid
    while t != NO_BID:
        walked.append(t)
        t = book.bid_below(t)
    assert walked == [100, 99, 97, 10]
    walked, t = [], book.ask
    while t != NO_ASK:
        walked.append(t)
        t = book.ask_above(t)
    assert walked == [101, 103, 200_000]
    # from a tick that holds no level, and past either end
    assert (book.bid_below(98), book.bid_below(10), book.bid_below(10**9)) == (97, NO_BID, 100)
    assert (book.ask_above(102), book.ask_above(200_000), book.ask_above(-5)) == (103, NO_ASK, 101)
    book.clear()
    assert (book.bid_below(100), book.ask_above(100)) == (NO_BID, NO_ASK)


_OPS = st.lists(
    st.tuples(st.sampled_from([BID, ASK]), st.integers(0, 60), st.integers(0, 5)), max_size=200
)


@settings(max_examples=300, deadline=None)
@given(ops=_OPS)
def test_tickbook_any_changes_match_a_plain_reference(ops):
    for cls in IMPLEMENTATIONS:
        book = cls()
        ref: dict[int, dict[int, int]] = {BID: {}, ASK: {}}
        for side, tick, lots in ops:
            prev = ref[side].get(tick, 0)
            if lots:
                ref[side][tick] = lots
            else:
                ref[side].pop(tick, None)
            assert book.set(side, tick, lots) == prev
            assert book.bid == max(ref[BID], default=NO_BID)
            assert book.ask == min(ref[ASK], default=NO_ASK)
        assert book.depth(BID) == sorted(ref[BID].items(), reverse=True)
        assert book.depth(ASK) == sorted(ref[ASK].items())
        assert book.depth(BID, 3) == sorted(ref[BID].items(), reverse=True)[:3]
        for tick in range(61):
            assert book.lots(BID, tick) == ref[BID].get(tick, 0)
            assert book.lots(ASK, tick) == ref[ASK].get(tick, 0)
        assert book.crossed == (bool(ref[BID]) and bool(ref[ASK]) and book.bid >= book.ask)
        for tick in range(-1, 63):
            below = [t for t in ref[BID] if t < tick]
            above = [t for t in ref[ASK] if t > tick]
            assert book.bid_below(tick) == max(below, default=NO_BID)
            assert book.ask_above(tick) == min(above, default=NO_ASK)
