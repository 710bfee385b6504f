"""The sim's view of the market's book: the venue's levels minus what our orders took there,
walked best first, on its own book and on a shared one, against a sorted reference model."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from mlthon.basics.tickbook import ASK, BID, TickBook
from mlthon.gateways.sim.market import MarketState
from tests.unit.gateways.helpers import LIN

ops = st.lists(
    st.tuples(
        st.sampled_from(["venue", "take", "clear"]),
        st.sampled_from([BID, ASK]),
        st.integers(90, 110),
        st.integers(0, 5),
    ),
    max_size=300,
)


@settings(max_examples=300, deadline=None)
@given(seq=ops, shared=st.booleans())
def test_sim_view_is_the_venue_book_minus_what_was_taken(seq, shared):
    book = TickBook() if shared else None
    mkt = MarketState(LIN, book)
    assert mkt.own_book is (not shared)
    venue: dict[int, dict[int, int]] = {BID: {}, ASK: {}}
    taken: dict[tuple[int, int], int] = {}
    for op, side, tick, lots in seq:
        if op == "venue":  # the venue changes a level: its size is the venue's again
            if shared:
                mkt.book.set(side, tick, lots)  # the feed applied it before the sim hears of it
            else:
                mkt.book.apply([(0, side, tick, lots)])
            mkt.taken.pop((side, tick), None)
            mkt.hidden = False
            if lots:
                venue[side][tick] = lots
            else:
                venue[side].pop(tick, None)
            taken.pop((side, tick), None)
        elif op == "take":
            have = venue[side].get(tick, 0) - taken.get((side, tick), 0)
            if have > 0 and lots:
                x = min(have, lots)
                mkt.take(side, tick, x)
                taken[(side, tick)] = taken.get((side, tick), 0) + x
        else:
            mkt.clear_book()
            venue = {BID: {}, ASK: {}}
            taken.clear()
            if shared:
                mkt.book.clear()  # the feed cleared it too; the sim hides it until news
        for s in (BID, ASK):
            model = {
                t: n - taken.get((s, t), 0)
                for t, n in venue[s].items()
                if n - taken.get((s, t), 0) > 0
            }
            ordered = sorted(model.items(), reverse=s == BID)
            assert list(mkt.walk(s)) == ordered
            assert mkt.best(s) == (ordered[0][0] if ordered else None)
            assert list(mkt.walk(s, 100)) == [
                (t, n) for t, n in ordered if (t >= 100 if s == BID else t <= 100)
            ]
            for t in range(90, 111):
                assert mkt.visible(s, t) == model.get(t, 0)
        assert mkt.book.depth(BID) == sorted(venue[BID].items(), reverse=True)


def test_sim_view_of_a_shared_book_is_empty_from_a_clearing_status_to_the_next_message():
    book = TickBook()
    book.set(BID, 100, 3)
    mkt = MarketState(LIN, book)
    assert mkt.best_bid() == 100
    book.set(BID, 101, 2)  # the feed applied its next image already ...
    mkt.clear_book()  # ... before the sim hears its SnapshotStart
    assert mkt.best_bid() is None and list(mkt.walk(BID)) == [] and mkt.mid2() is None
    assert book.bid == 101  # never written by the sim
    mkt.hidden = False  # the image's BookUpdate arrives
    assert mkt.best_bid() == 101
