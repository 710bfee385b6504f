"""A venue message's price levels into the instrument's book: the feed engine's hottest loop.

:func:`apply_pairs` applies ``(price text, size text)`` pairs to one side of a
:class:`~mlthon.basics.tickbook.TickBook` for as long as both texts are in the instrument's
caches (:class:`~mlthon.feeds.grid.Grid`'s ``ticks`` and ``lots``), noting each change as
``(action, side, tick, lots)``, and returns the index of the first pair that is not cached: the
engine converts, checks and reports that one on its slow path, then calls again from the next.
It is compiled (``mlthon/_core/levels.pyx``) when the core is built; :func:`py_apply_pairs` is the
pure-Python twin with identical results.

Levels straight from the venue's JSON: with the compiled core, a parser may hand the engine a
side's levels as the raw bytes of their JSON array (``[["61800.30","0.014"],...]``) instead of
text pairs, once :func:`count_levels` has checked their shape (:data:`RAW_LEVELS` says whether to).
:func:`apply_raw` then parses each number straight to ticks and lots and applies it, with no
Python object per level, for as long as the level is plain decimal text on the grid, and returns
the index of the first level it leaves to the text path (:func:`text_levels` decodes the bytes
into text pairs for it). The pure-Python twins leave every level to the text path, which gives
the same results (the compiled parser takes only the levels whose result it knows to be the
text path's).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

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

#: A side's levels as text pairs, decoded from the raw bytes of their JSON array.
_TEXT_LEVELS = msgspec.json.Decoder(list[tuple[str, str]])


def text_levels(levels: list[tuple[str, str]] | bytes) -> list[tuple[str, str]]:
    """A side's levels as ``(price, size)`` text pairs, whether given so or as raw JSON bytes.

    Raises:
        msgspec.DecodeError / msgspec.ValidationError: bytes that are not such an array.
    """
    return _TEXT_LEVELS.decode(levels) if type(levels) is bytes else levels  # type: ignore[return-value]


def py_count_levels(raw: bytes) -> int:
    """The number of ``[price, size]`` string pairs in the JSON array ``raw``, or -1 when it is
    not exactly that."""
    try:
        return len(_TEXT_LEVELS.decode(raw))
    except msgspec.MsgspecError:
        return -1


def py_apply_raw(
    book: TickBook,
    raw: bytes,
    side: int,
    tick_places: int,
    tick_units: int,
    tick_limit: int,
    lot_places: int,
    lot_units: int,
    lot_limit: int,
    out: list[tuple[int, int, int, int]] | None,
) -> int:
    """The pure core leaves every level of raw JSON to the text path (index 0; -1 when there
    are none): the compiled :func:`apply_raw` takes the plain ones first, with the same result."""
    return 0 if py_count_levels(raw) else -1


count_levels = _core.pick("levels", "count_levels", py_count_levels)
apply_raw = _core.pick("levels", "apply_raw", py_apply_raw)
#: Whether parsers should hand levels over as raw JSON bytes (only the compiled core gains).
RAW_LEVELS: bool = _core.COMPILED
