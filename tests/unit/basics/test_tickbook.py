"""The one price-level book in ticks and lots: every sequence of changes leaves it equal to a plain
reference (a dict per side), with the right best levels."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlthon.basics.tickbook import ADD, ASK, BID, DELETE, MODIFY, NO_ASK, NO_BID, TickBook

IMPLEMENTATIONS = [TickBook]


@pytest.fixture(params=IMPLEMENTATIONS, ids=lambda c: c.__module__)
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
