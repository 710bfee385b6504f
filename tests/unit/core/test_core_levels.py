"""The compiled level loop gives the pure loop's results: the same index where it stops, the same
changes noted and the same book, for any levels, cached or not."""

from __future__ import annotations

import importlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlthon.basics.tickbook import ASK, BID, PyTickBook
from mlthon.feeds.levels import py_apply_pairs

try:
    core_levels = importlib.import_module("mlthon._core.levels")
    core_book = importlib.import_module("mlthon._core.tickbook")
except ImportError:  # pragma: no cover - a machine without a C compiler
    pytest.skip("compiled core not built", allow_module_level=True)

PRICES = [f"{100 + k / 10:.1f}" for k in range(40)]
SIZES = ["0", "0.001", "0.002", "0.010", "1.5"]
TICKS = {p: round(float(p) * 10) for p in PRICES}
LOTS = {s: round(float(s) * 1000) for s in SIZES}

pair = st.tuples(st.sampled_from([*PRICES, "999.95"]), st.sampled_from([*SIZES, "0.0005"]))


def _run(apply, book, side, pairs, out):
    """Apply everything, stepping over the uncached pairs as the engine's slow path would (here:
    left out), and list where each call stopped."""
    stops = []
    i = 0
    while True:
        i = apply(book, TICKS, LOTS, side, pairs, i, out)
        stops.append(i)
        if i >= len(pairs):
            return stops
        i += 1


@settings(max_examples=300, deadline=None)
@given(
    msgs=st.lists(
        st.tuples(st.sampled_from([BID, ASK]), st.lists(pair, max_size=30), st.booleans()),
        max_size=20,
    ),
    as_lists=st.booleans(),
)
def test_levels_compiled_and_pure_stop_note_and_book_alike(msgs, as_lists):
    pure, comp = PyTickBook(), core_book.TickBook()
    for side, pairs, noting in msgs:
        seq = [list(p) for p in pairs] if as_lists else list(pairs)
        out_p: list | None = [] if noting else None
        out_c: list | None = [] if noting else None
        assert _run(py_apply_pairs, pure, side, seq, out_p) == _run(
            core_levels.apply_pairs, comp, side, seq, out_c
        )
        assert out_p == out_c
        assert (pure.bid, pure.ask) == (comp.bid, comp.ask)
        assert pure.depth(BID) == comp.depth(BID)
        assert pure.depth(ASK) == comp.depth(ASK)


def test_levels_uncached_price_stops_at_its_index_with_the_levels_before_applied():
    book = core_book.TickBook()
    out: list = []
    pairs = [("100.0", "0.001"), ("100.1", "0.002"), ("555.5", "0.001"), ("100.2", "0.001")]
    assert core_levels.apply_pairs(book, TICKS, LOTS, BID, pairs, 0, out) == 2
    assert out == [(0, BID, 1000, 1), (0, BID, 1001, 2)]
    assert core_levels.apply_pairs(book, TICKS, LOTS, BID, pairs, 3, out) == 4
    assert book.bid == 1002
