"""A venue message's price levels into the instrument's book: the feed engine's hottest loop.

:func:`apply_pairs` applies ``(price text, size text)`` pairs to one side of a
:class:`~mlthon.basics.tickbook.TickBook` for as long as both texts are in the instrument's
caches (:class:`~mlthon.feeds.grid.Grid`'s ``ticks`` and ``lots``), noting each change as
``(action, side, tick, lots)``, and returns the index of the first pair that is not cached: the
engine converts, checks and reports that one on its slow path, then calls again from the next.
It is compiled (``mlthon/_core/levels.pyx``) when the core is built; :func:`py_apply_pairs` is the
pure-Python twin with identical results.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mlthon import _core
from mlthon.basics.tickbook import ADD, BID, DELETE, MODIFY, TickBook


def py_apply_pairs(
    book: TickBook,
    ticks: dict[str, int],
    lots: dict[str, int],
    side: int,
    pairs: Sequence[Any],
    start: int,
    out: list[tuple[int, int, int, int]] | None,
) -> int:
    """Apply ``pairs[start:]`` to ``side`` of ``book`` while both texts of a pair are cached;
    append each change to ``out`` (None: do not note them). Returns the index of the first pair
    with an uncached text, or ``len(pairs)`` when all were applied."""
    setter = book.set_bid if side == BID else book.set_ask
    tget = ticks.get
    lget = lots.get
    append = None if out is None else out.append
    end = len(pairs)
    for i in range(start, end):
        p, q = pairs[i]
        t = tget(p)
        if t is None:
            return i
        n = lget(q)
        if n is None:
            return i
        prev = setter(t, n)
        if n:
            if prev == n:
                continue
            act = MODIFY if prev else ADD
        elif prev:
            act = DELETE
        else:
            continue
        if append is not None:
            append((act, side, t, n))
    return end


apply_pairs = _core.pick("levels", "apply_pairs", py_apply_pairs)
