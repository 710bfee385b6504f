"""Market-data messages for tests, written with prices and sizes as text.

Since wire version 2 the bus carries integer ticks and lots of the instrument; these builders take
the text a venue would send (``"100.0"``, ``"1.5"``) and convert it with the instrument's grid
(:class:`~mlthon.feeds.grid.Grid`, the feed's own conversion), so a test reads as before and sends
what a feed would. Instruments come from the bundled list unless one is given.
"""

from __future__ import annotations

from decimal import Decimal
from functools import cache

from mlthon.basics.instrument import Instrument
from mlthon.basics.tickbook import ASK, BID, TickBook
from mlthon.feeds.grid import Grid
from mlthon.infra.bus import messages as m
from mlthon.infra.instruments import load_instruments


@cache
def _bundled() -> dict[int, Instrument]:
    return {i.instrument_id: i for i in load_instruments()}


def grid(iid: int, inst: Instrument | None = None) -> Grid:
    """The grid of instrument ``iid`` (the bundled one unless ``inst`` is given)."""
    return _grid(inst if inst is not None else _bundled()[iid])


@cache
def _grid(inst: Instrument) -> Grid:
    return Grid(inst)


def ticks(iid: int, price: str, inst: Instrument | None = None) -> int:
    """``price`` in ticks of instrument ``iid``."""
    return grid(iid, inst).tick_of(price)


def lots(iid: int, qty: str, inst: Instrument | None = None) -> int:
    """``qty`` in lots of instrument ``iid``."""
    return grid(iid, inst).lots_of(qty)


def book(
    *,
    ex: int,
    iid: int,
    ts: int,
    ch: list[tuple[int, int, str, str]],
    seq: int = 0,
    ets: int = 0,
    inst: Instrument | None = None,
) -> m.BookUpdate:
    """A ``BookUpdate`` whose changes are ``(action, side, price text, size text)``."""
    g = grid(iid, inst)
    return m.BookUpdate(
        ex=ex,
        iid=iid,
        ts=ts,
        seq=seq,
        ets=ets,
        ch=[(a, s, g.tick_of(p), g.lots_of(q)) for a, s, p, q in ch],
    )


def trades(
    *,
    ex: int,
    iid: int,
    ts: int,
    tr: list[tuple[int, str, str, int, str]],
    seq: int = 0,
    inst: Instrument | None = None,
) -> m.TradeUpdate:
    """A ``TradeUpdate`` whose trades are ``(taker side, price text, size text, exec ns, id)``."""
    g = grid(iid, inst)
    return m.TradeUpdate(
        ex=ex,
        iid=iid,
        ts=ts,
        seq=seq,
        tr=[(s, g.tick_of(p), g.lots_of(q), e, tid) for s, p, q, e, tid in tr],
    )


def levels(
    *,
    ex: int,
    iid: int,
    ts: int,
    ch: list[tuple[int, int, int, str, str]],
    seq: int = 0,
    inst: Instrument | None = None,
) -> m.LevelUpdate:
    """A ``LevelUpdate`` whose changes are ``(action, side, level id, price, size)`` texts."""
    g = grid(iid, inst)
    return m.LevelUpdate(
        ex=ex,
        iid=iid,
        ts=ts,
        seq=seq,
        ch=[(a, s, lid, g.tick_of(p), g.lots_of(q)) for a, s, lid, p, q in ch],
    )


# --- books in Decimal, for comparisons with references built from the venue's text ----------------
def decimal_levels(book: TickBook, inst: Instrument, side: int) -> dict[Decimal, Decimal]:
    """One side of ``book`` as ``{price: size}`` Decimals of ``inst``'s grid."""
    tick, lot = inst.tick_size, inst.lot_size
    return {t * tick: n * lot for t, n in book.depth(side)}


def decimal_top(
    book: TickBook, inst: Instrument, n: int
) -> tuple[list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]]:
    """The best ``n`` levels of each side as ``(price, size)`` Decimals, best first."""
    tick, lot = inst.tick_size, inst.lot_size
    return (
        [(t * tick, k * lot) for t, k in book.depth(BID, n)],
        [(t * tick, k * lot) for t, k in book.depth(ASK, n)],
    )


def decimal_best(book: TickBook, inst: Instrument, side: int) -> tuple[Decimal, Decimal] | None:
    """The best level of one side as ``(price, size)`` Decimals, or None."""
    top = decimal_top(book, inst, 1)[0 if side == BID else 1]
    return top[0] if top else None
