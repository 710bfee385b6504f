"""Which changes of a book message the simulated exchange must look at.

A depth message changes dozens of levels; our orders rest at a few prices. The matching core
needs to know whether each side was touched at all (to check for crossing) and which changes
fall where our orders rest (to move their queues). :func:`changes_in_ranges` answers both in one
pass over the changes; it is compiled (``mlthon/_core/levels.pyx``) when the core is built, and
:func:`py_changes_in_ranges` is its pure-Python twin with identical results.
"""

from __future__ import annotations

from typing import Any

from mlthon import _core
from mlthon.basics.tickbook import BID


def py_changes_in_ranges(
    ch: list[Any], lo_b: int, hi_b: int, lo_a: int, hi_a: int
) -> tuple[bool, bool, list[Any]]:
    """``(touched_bid, touched_ask, hits)``: whether any change ``(action, side, tick, lots)``
    was on each side, and, in order, the changes whose tick lies in its side's ``[lo, hi]`` (an
    empty side has ``lo > hi``)."""
    touched_bid = touched_ask = False
    hits = []
    for c in ch:
        t = c[2]
        if c[1] == BID:
            touched_bid = True
            if lo_b <= t <= hi_b:
                hits.append(c)
        else:
            touched_ask = True
            if lo_a <= t <= hi_a:
                hits.append(c)
    return touched_bid, touched_ask, hits


changes_in_ranges = _core.pick("levels", "changes_in_ranges", py_changes_in_ranges)
