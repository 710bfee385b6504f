"""Which changes of a book message the simulated exchange must look at.

A depth message changes dozens of levels; our orders rest at a few prices. The matching core
needs to know whether each side was touched at all (to check for crossing) and which changes
fall where our orders rest (to move their queues), with no Python step for a change that misses
them. :func:`changes_in_ranges` answers both in one pass over the changes; it is compiled
(``mlthon/_core/levels.pyx``) when the core is built, and :func:`py_changes_in_ranges` is its
pure-Python twin with identical results.
"""

from __future__ import annotations

from typing import Any

from mlthon import _core
from mlthon.basics.tickbook import BID


def py_changes_in_ranges(
    ch: list[Any],
    bid_ticks: list[int],
    ask_ticks: list[int],
    resting_bids: dict[int, Any],
    resting_asks: dict[int, Any],
) -> tuple[bool, bool, list[Any]]:
    """``(touched_bid, touched_ask, hits)``: whether any change ``(action, side, tick, lots)``
    was on each side, and, in order, the changes at a price holding orders of ours: within the
    span of the side's resting prices (``bid_ticks`` / ``ask_ticks``, sorted; an empty one spans
    nothing) and a non-empty entry of ``resting_bids`` / ``resting_asks``."""
    lo_b, hi_b = (bid_ticks[0], bid_ticks[-1]) if bid_ticks else (1, 0)
    lo_a, hi_a = (ask_ticks[0], ask_ticks[-1]) if ask_ticks else (1, 0)
    touched_bid = touched_ask = False
    hits = []
    for c in ch:
        t = c[2]
        if c[1] == BID:
            touched_bid = True
            if lo_b <= t <= hi_b and resting_bids.get(t):
                hits.append(c)
        else:
            touched_ask = True
            if lo_a <= t <= hi_a and resting_asks.get(t):
                hits.append(c)
    return touched_bid, touched_ask, hits


changes_in_ranges = _core.pick("levels", "changes_in_ranges", py_changes_in_ranges)
