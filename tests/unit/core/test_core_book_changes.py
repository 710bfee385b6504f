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


# tick -> our orders there (an empty list: a price our orders just left)
RESTING = st.dictionaries(TICK, st.lists(st.just(object()), max_size=2), max_size=8)


@settings(max_examples=300, deadline=None)
@given(st.lists(CHANGE, max_size=60), RESTING, RESTING)
def test_compiled_and_pure_pick_the_same_changes(ch, rb, ra) -> None:
    # some of the changes at resting prices, as in a run
    for k, (act, side, _t, lots) in enumerate(ch[: len(rb) + len(ra)]):
        ticks = list(rb if side == BID else ra)
        if ticks:
            ch[k] = (act, side, ticks[k % len(ticks)], lots)
    # the span of each side: its prices holding orders (an entry may be empty meanwhile)
    args = (list(ch), sorted(rb), sorted(ra), rb, ra)
    assert core_levels.changes_in_ranges(*args) == py_changes_in_ranges(*args)


def test_hits_in_order_at_resting_prices_only_and_an_empty_side_has_none() -> None:
    ch = [(0, BID, 10, 1), (1, ASK, 20, 2), (2, BID, 12, 0), (0, ASK, 30, 1), (1, BID, 11, 3)]
    rb = {10: ["o1"], 12: ["o2"], 11: []}  # 11: none left there
    for fn in (core_levels.changes_in_ranges, py_changes_in_ranges):
        hits = [(0, BID, 10, 1), (2, BID, 12, 0)]
        assert fn(ch, [10, 12], [], rb, {}) == (True, True, hits)
        assert fn(ch, [10, 11], [], rb, {}) == (True, True, [(0, BID, 10, 1)])  # 12 out of span
        assert fn([], [10, 12], [30], rb, {30: ["o3"]}) == (False, False, [])
        assert fn(ch, [], [30], {}, {30: ["o3"]}) == (True, True, [(0, ASK, 30, 1)])
