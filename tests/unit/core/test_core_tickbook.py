"""The compiled TickBook gives the pure book's results for any sequence of calls.

The compiled book keeps a window of ticks per side in a C array and the levels outside it in a
dict, and moves the window as the best moves; these tests drive it with narrow windows (64 and
128 ticks, so that moves, far levels and empty windows happen all the time) and the default one,
over wide and drifting tick ranges, and compare every answer with :class:`PyTickBook`'s.
"""

from __future__ import annotations

import copy
import importlib
import pickle
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlthon.basics import tickbook
from mlthon.basics.tickbook import ADD, ASK, BID, DELETE, MODIFY, NO_ASK, NO_BID, PyTickBook

try:
    core = importlib.import_module("mlthon._core.tickbook")
except ImportError:  # pragma: no cover - a machine without a C compiler
    pytest.skip("compiled core not built", allow_module_level=True)

WIDTHS = [64, 128, None]


def _new(width: int | None):
    return core.TickBook() if width is None else core._with_width(width)


def _same(pure: PyTickBook, comp, probe: range) -> None:
    assert (comp.bid, comp.ask) == (pure.bid, pure.ask)
    assert comp.depth(BID) == pure.depth(BID)
    assert comp.depth(ASK) == pure.depth(ASK)
    for n in (0, 1, 3, -1, -4):
        assert comp.depth(BID, n) == pure.depth(BID, n)
        assert comp.depth(ASK, n) == pure.depth(ASK, n)
    assert (comp.count(BID), comp.count(ASK), len(comp)) == (
        pure.count(BID),
        pure.count(ASK),
        len(pure),
    )
    assert (comp.bid_lots(), comp.ask_lots()) == (pure.bid_lots(), pure.ask_lots())
    assert comp.crossed == pure.crossed
    assert repr(comp) == repr(pure)
    for t in probe:
        assert comp.lots(BID, t) == pure.lots(BID, t)
        assert comp.lots(ASK, t) == pure.lots(ASK, t)
        assert comp.bid_below(t) == pure.bid_below(t)
        assert comp.ask_above(t) == pure.ask_above(t)
    # each side walked best first, level by level, through the window and the far levels
    for side, start, step, end in (
        (BID, comp.bid, comp.bid_below, NO_BID),
        (ASK, comp.ask, comp.ask_above, NO_ASK),
    ):
        walked, t = [], start
        while t != end:
            walked.append(t)
            t = step(t)
        assert walked == [t for t, _ in pure.depth(side)]


def test_core_constants_equal_the_pure_modules():
    for name in ("BID", "ASK", "ADD", "MODIFY", "DELETE", "NO_BID", "NO_ASK"):
        assert getattr(core, name) == getattr(tickbook, name), name


_SIDE = st.sampled_from([BID, ASK])
_LOTS = st.one_of(st.just(0), st.integers(1, 9), st.integers(1, 2**62))
# ticks: a cluster that drifts by whole windows, plus far outliers on either side
_TICK = st.one_of(
    st.integers(990, 1_130),
    st.integers(-5_000, 20_000),
    st.integers(-(2**62) + 1, 2**62 - 1),
)


@settings(max_examples=400, deadline=None)
@given(
    ops=st.lists(st.tuples(st.booleans(), _SIDE, _TICK, _LOTS), min_size=40, max_size=300),
    width=st.sampled_from(WIDTHS),
)
def test_core_tickbook_any_sets_answer_as_the_pure_book(ops, width):
    pure, comp = PyTickBook(), _new(width)
    for at_best, side, tick, lots in ops:
        if at_best:  # change the best level (mostly remove it): the next best must be found
            best = pure.bid if side == BID else pure.ask
            tick = tick if best in (NO_BID, NO_ASK) else best
            lots = lots if lots % 4 == 1 else 0
        assert comp.set(side, tick, lots) == pure.set(side, tick, lots)
        assert (comp.bid, comp.ask) == (pure.bid, pure.ask)
    _same(pure, comp, range(980, 1_140))


@settings(max_examples=150, deadline=None)
@given(
    msgs=st.lists(
        st.lists(
            st.tuples(st.sampled_from([ADD, MODIFY, DELETE]), _SIDE, _TICK, st.integers(0, 9)),
            max_size=30,
        ),
        max_size=30,
    ),
    width=st.sampled_from(WIDTHS),
    clear_at=st.integers(0, 40),
)
def test_core_tickbook_messages_and_clears_answer_as_the_pure_book(msgs, width, clear_at):
    pure, comp = PyTickBook(), _new(width)
    for i, ch in enumerate(msgs):
        if i == clear_at:
            pure.clear()
            comp.clear()
        # the same changes as tuples, and as lists (any 4-item sequence is a change)
        pure.apply(ch)
        comp.apply([list(c) for c in ch] if i % 2 else ch)
        assert (comp.bid, comp.ask) == (pure.bid, pure.ask)
    _same(pure, comp, range(980, 1_140))


@pytest.mark.parametrize("width", WIDTHS)
def test_core_tickbook_drifting_market_answers_as_the_pure_book(width):
    # a market that trends by many windows, with deep levels and far outliers on both sides
    rng = random.Random(17)
    pure, comp = PyTickBook(), _new(width)
    mid = 100_000
    for step in range(30_000):
        if rng.random() < 0.05:
            mid += rng.randint(-30, 30)
        side = rng.choice((BID, ASK))
        sign = -1 if side == BID else 1
        r = rng.random()
        if r < 0.02:
            tick = mid + sign * rng.randint(1_000, 1_000_000)
        elif r < 0.3:
            tick = pure.bid if side == BID else pure.ask
            if tick in (NO_BID, NO_ASK):
                tick = mid
        else:
            tick = mid + sign * int(abs(rng.gauss(0, 60)))
        lots = 0 if rng.random() < 0.45 else rng.randint(1, 50)
        assert comp.set(side, tick, lots) == pure.set(side, tick, lots), step
        assert (comp.bid, comp.ask) == (pure.bid, pure.ask), step
        if step % 1_000 == 0:
            _same(pure, comp, range(mid - 200, mid + 200))
    _same(pure, comp, range(mid - 200, mid + 200))


@pytest.mark.parametrize("width", WIDTHS)
def test_core_tickbook_walks_between_the_ends_of_the_tick_range(width):
    # each side's window at one end of the range and a far level at the other: tick differences
    # overflow 64 bits if taken before comparing (a walk from the far level crashed once)
    lo, hi = NO_BID + 1, NO_ASK - 1
    pure, comp = PyTickBook(), _new(width)
    for book in (pure, comp):
        book.set(ASK, hi, 1)
        book.set(ASK, lo, 2)
        book.set(BID, lo, 3)
        book.set(BID, hi, 4)
    _same(pure, comp, range(-3, 3))
    for t in (-(2**63), 2**63 - 1, 0, lo, hi, lo - 1, hi + 1):
        assert comp.bid_below(t) == pure.bid_below(t), t
        assert comp.ask_above(t) == pure.ask_above(t), t
    for side in (BID, ASK):
        for tick in (hi, lo):  # the window goes to the far end as the best goes
            comp.set(side, tick, 0)
            pure.set(side, tick, 0)
            _same(pure, comp, range(-3, 3))


def test_core_tickbook_side_and_range_errors():
    comp = core.TickBook()
    with pytest.raises(ValueError, match="side must be 1 \\(bid\\) or 2 \\(ask\\), got 3"):
        comp.set(3, 100, 1)
    with pytest.raises(ValueError, match="side"):
        comp.apply([(ADD, BID, 100, 1), (ADD, 0, 100, 1)])
    assert comp.depth(BID) == [(100, 1)]  # the changes before the bad one stay, as in the pure
    with pytest.raises(OverflowError):
        comp.set(BID, NO_BID, 1)
    with pytest.raises(OverflowError):
        comp.set(ASK, NO_ASK, 1)
    with pytest.raises(OverflowError):
        comp.set(BID, 2**63, 1)
    assert comp.depth(BID) == [(100, 1)] and comp.ask == NO_ASK
    with pytest.raises(ValueError, match="power of two"):
        core._with_width(100)


@pytest.mark.parametrize("cls", [PyTickBook, core.TickBook], ids=["pure", "compiled"])
def test_core_tickbook_copies_and_pickles_keep_every_level(cls):
    book = cls()
    book.apply([(ADD, BID, 100, 3), (ADD, BID, 10, 1), (ADD, ASK, 101, 2), (ADD, ASK, 90_000, 5)])
    for other in (pickle.loads(pickle.dumps(book)), copy.deepcopy(book)):
        assert type(other) is cls
        assert other.depth(BID) == [(100, 3), (10, 1)]
        assert other.depth(ASK) == [(101, 2), (90_000, 5)]
        assert (other.bid, other.ask) == (100, 101)
        other.set(BID, 100, 0)
        assert book.bid == 100  # independent of the original


def test_core_tickbook_best_is_read_only_and_the_class_final():
    comp = core.TickBook()
    with pytest.raises(AttributeError):
        comp.bid = 5  # type: ignore[misc]
    with pytest.raises(TypeError):
        type("Sub", (core.TickBook,), {})
