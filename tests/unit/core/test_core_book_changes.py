"""The simulated exchange's pass over a book message's changes: the compiled
``changes_in_ranges`` gives the pure twin's results (flags and hits, in order) on any changes and
ranges, empty ones included."""

from __future__ import annotations

import importlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlthon.basics.tickbook import ASK, BID
from mlthon.gateways.sim.book_changes import py_changes_in_ranges

try:
    core_levels = importlib.import_module("mlthon._core.levels")
except ImportError:
    pytest.skip("compiled core not built", allow_module_level=True)

TICK = st.integers(min_value=0, max_value=2**62)
CHANGE = st.tuples(st.integers(0, 2), st.sampled_from([BID, ASK]), TICK, st.integers(0, 10**9))


@settings(max_examples=300, deadline=None)
@given(st.lists(CHANGE, max_size=60), TICK, TICK, TICK, TICK)
def test_compiled_and_pure_pick_the_same_changes(ch, a, b, c, d) -> None:
    args = (list(ch), a, b, c, d)
    assert core_levels.changes_in_ranges(*args) == py_changes_in_ranges(*args)


def test_hits_in_order_and_an_empty_side_has_none() -> None:
    ch = [(0, BID, 10, 1), (1, ASK, 20, 2), (2, BID, 12, 0), (0, ASK, 30, 1)]
    for fn in (core_levels.changes_in_ranges, py_changes_in_ranges):
        assert fn(ch, 10, 12, 1, 0) == (True, True, [(0, BID, 10, 1), (2, BID, 12, 0)])
        assert fn([], 0, 100, 0, 100) == (False, False, [])
