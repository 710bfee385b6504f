"""Order books: a price-level (L2) book, an order-level (L3) book and a BBO-change detector.

Pure code, no I/O, shared by the feed handlers, the strategy env and the simulated exchange.

Both books take exact :class:`~mlthon.basics.values.Price` / :class:`~mlthon.basics.values.Qty` at
their public methods and return them from their reads. Inside they keep plain ``Decimal`` keys in
dicts (O(1) add / modify / delete) and find the best level with a lazily pruned heap per side, which
is several times faster on the per-event path than a sorted container. ``*_dec`` methods are the
same operations on bare Decimals for the hot path of the feed engine; they skip validation.

Sides are the integers ``Side.Buy.value`` (bid, 1) and ``Side.Sell.value`` (ask, 2); actions are
the ``ADD`` (0) / ``MODIFY`` (1) / ``DELETE`` (2) constants of the bus messages.
"""

from __future__ import annotations

import heapq
from collections.abc import Container
from decimal import Decimal
from typing import TypeVar

from mlthon.basics.mlt_enum import Side
from mlthon.basics.values import Price, Qty

BID = Side.Buy.value
ASK = Side.Sell.value
ADD = 0
MODIFY = 1
DELETE = 2
NO_CHANGE = -1

Level = tuple[Price, Qty]
DecLevel = tuple[Decimal, Decimal]

_ZERO = Decimal(0)
_K = TypeVar("_K", int, Decimal)


def _check_side(side: int) -> None:
    if side != BID and side != ASK:
        raise ValueError(f"side must be {BID} (bid) or {ASK} (ask), got {side!r}")


def lazy_best(heap: list[_K], live: Container[_K], is_bid: bool) -> _K | None:
    """The best live key of a lazily pruned heap (keys negated for bids so that the top is
    the best); stale entries met on the way are popped. Shared by the books here and the
    simulated exchange's tick book."""
    while heap:
        top = heap[0]
        key = -top if is_bid else top
        if key in live:
            return key
        heapq.heappop(heap)
    return None


class _SideLevels:
    """One side of a book: price -> quantity, plus a lazy heap for the best price.

    The heap holds every price ever added (negated for bids so that the heap top is the best);
    entries whose price has since left the dict are popped when they reach the top, and the heap is
    rebuilt when stale entries outnumber live ones.
    """

    __slots__ = ("heap", "is_bid", "levels")

    def __init__(self, is_bid: bool) -> None:
        self.is_bid = is_bid
        self.levels: dict[Decimal, Decimal] = {}
        self.heap: list[Decimal] = []

    def push(self, price: Decimal) -> None:
        heap = self.heap
        heapq.heappush(heap, -price if self.is_bid else price)
        if len(heap) > 2 * len(self.levels) + 64:
            self.rebuild()

    def rebuild(self) -> None:
        self.heap = [-p for p in self.levels] if self.is_bid else list(self.levels)
        heapq.heapify(self.heap)

    def best(self) -> Decimal | None:
        return lazy_best(self.heap, self.levels, self.is_bid)

    def top(self, n: int) -> list[Decimal]:
        if self.is_bid:
            return heapq.nlargest(n, self.levels)
        return heapq.nsmallest(n, self.levels)

    def clear(self) -> None:
        self.levels.clear()
        self.heap.clear()

    def compact(self) -> None:
        """Rebuild the heap if stale entries outnumber live ones (after inline pushes)."""
        if len(self.heap) > 2 * len(self.levels) + 64:
            self.rebuild()


class PriceLevelBook:
    """Price-level (L2) book of one instrument: exact price -> aggregated quantity, per side.

    Example::

        book = PriceLevelBook()
        book.apply(BID, Price("100.1"), Qty("2"))   # -> ADD
        book.apply(BID, Price("100.1"), Qty("0"))   # -> DELETE
    """

    __slots__ = ("_asks", "_bids")

    def __init__(self) -> None:
        self._bids = _SideLevels(True)
        self._asks = _SideLevels(False)

    def _side(self, side: int) -> _SideLevels:
        if side == BID:
            return self._bids
        if side == ASK:
            return self._asks
        raise ValueError(f"side must be {BID} (bid) or {ASK} (ask), got {side!r}")

    # --- writes ----------------------------------------------------------------------------------
    def apply(self, side: int, price: Price, qty: Qty) -> int:
        """Set the absolute size at ``price`` on ``side``; a zero size removes the level.

        Returns:
            ``ADD`` if the level is new, ``MODIFY`` if its size changed, ``DELETE`` if it was
            removed, or ``NO_CHANGE`` (-1) for a no-op (deleting an absent level, same size again).

        Raises:
            ValueError: bad side or negative quantity.
        """
        q = qty.value
        if q < _ZERO:
            raise ValueError(f"negative quantity {qty} at {price}")
        return self.apply_dec(side, price.value, q)

    def apply_dec(self, side: int, price: Decimal, qty: Decimal) -> int:
        """:meth:`apply` on bare Decimals, without the negative-size check (hot path)."""
        s = self._bids if side == BID else self._asks if side == ASK else self._side(side)
        levels = s.levels
        if qty:
            old = levels.get(price)
            if old is None:
                levels[price] = qty
                s.push(price)
                return ADD
            if old == qty:
                return NO_CHANGE
            levels[price] = qty
            return MODIFY
        if price in levels:
            del levels[price]
            return DELETE
        return NO_CHANGE

    def add(self, side: int, price: Price, qty: Qty) -> None:
        """Add a new level.

        Raises:
            ValueError: the level already exists, the side is bad or ``qty`` is not positive.
        """
        s = self._side(side)
        if qty.value <= _ZERO:
            raise ValueError(f"cannot add a level of size {qty} at {price}")
        if price.value in s.levels:
            raise ValueError(f"level {price} already exists on side {side}")
        s.levels[price.value] = qty.value
        s.push(price.value)

    def modify(self, side: int, price: Price, qty: Qty) -> None:
        """Change the size of an existing level.

        Raises:
            KeyError: no level at ``price`` on ``side``.
            ValueError: bad side or ``qty`` is not positive (use :meth:`delete`).
        """
        s = self._side(side)
        if qty.value <= _ZERO:
            raise ValueError(f"cannot modify level {price} to size {qty}; delete it instead")
        if price.value not in s.levels:
            raise KeyError(f"no level {price} on side {side}")
        s.levels[price.value] = qty.value

    def delete(self, side: int, price: Price) -> None:
        """Remove a level.

        Raises:
            KeyError: no level at ``price`` on ``side``.
            ValueError: bad side.
        """
        s = self._side(side)
        try:
            del s.levels[price.value]
        except KeyError:
            raise KeyError(f"no level {price} on side {side}") from None

    def clear(self) -> None:
        """Remove every level of both sides."""
        self._bids.clear()
        self._asks.clear()

    # --- reads -----------------------------------------------------------------------------------
    def best_bid_dec(self) -> DecLevel | None:
        """The best bid as ``(price, qty)`` Decimals, or None if there is no bid (hot path)."""
        p = self._bids.best()
        return None if p is None else (p, self._bids.levels[p])

    def best_ask_dec(self) -> DecLevel | None:
        """The best ask as ``(price, qty)`` Decimals, or None if there is no ask (hot path)."""
        p = self._asks.best()
        return None if p is None else (p, self._asks.levels[p])

    def best_bid(self) -> Level | None:
        """The highest bid ``(price, qty)``, or None."""
        b = self.best_bid_dec()
        return None if b is None else (Price(b[0]), Qty(b[1]))

    def best_ask(self) -> Level | None:
        """The lowest ask ``(price, qty)``, or None."""
        a = self.best_ask_dec()
        return None if a is None else (Price(a[0]), Qty(a[1]))

    def top_dec(self, n: int) -> tuple[list[DecLevel], list[DecLevel]]:
        """:meth:`top` as Decimals."""
        bl = self._bids.levels
        al = self._asks.levels
        return (
            [(p, bl[p]) for p in self._bids.top(n)],
            [(p, al[p]) for p in self._asks.top(n)],
        )

    def top(self, n: int) -> tuple[list[Level], list[Level]]:
        """The best ``n`` levels of each side: ``(bids best first, asks best first)``."""
        bids, asks = self.top_dec(n)
        return (
            [(Price(p), Qty(q)) for p, q in bids],
            [(Price(p), Qty(q)) for p, q in asks],
        )

    def levels_dec(self, side: int) -> dict[Decimal, Decimal]:
        """A copy of one side as ``{price: qty}`` Decimals (unordered)."""
        return dict(self._side(side).levels)

    def hot_side(self, side: int) -> _SideLevels:
        """One side's internals, for hot loops that inline :meth:`apply_dec`.

        The contract: ``levels`` is ``{price: qty}``; a price added to ``levels`` must also be
        pushed on ``heap`` (negated when ``is_bid``); removing a price needs nothing more; call
        :meth:`compact` once after the loop.
        """
        return self._side(side)

    def compact(self) -> None:
        """Trim both heaps after a hot loop that pushed on them directly (see :meth:`hot_side`)."""
        self._bids.compact()
        self._asks.compact()

    def live_levels(self, side: int) -> dict[Decimal, Decimal]:
        """The live ``{price: qty}`` dict of one side, for hot paths.

        Read it freely, and replace the quantity of a price that is already there (a modify);
        adding or removing prices must go through :meth:`apply` / :meth:`add` / :meth:`delete`,
        which keep the best-price heap in step.
        """
        return self._side(side).levels

    def qty_at(self, side: int, price: Price) -> Qty | None:
        """The size at ``price`` on ``side``, or None if there is no such level."""
        q = self._side(side).levels.get(price.value)
        return None if q is None else Qty(q)

    def has_level_dec(self, side: int, price: Decimal) -> bool:
        """True if ``side`` holds a level at ``price`` (hot path)."""
        return price in (self._bids if side == BID else self._asks).levels

    def depth(self, side: int) -> int:
        """Number of levels on ``side``."""
        return len(self._side(side).levels)

    def is_crossed(self) -> bool:
        """True if the best bid is at or above the best ask."""
        b = self._bids.best()
        if b is None:
            return False
        a = self._asks.best()
        return a is not None and b >= a

    def __len__(self) -> int:
        return len(self._bids.levels) + len(self._asks.levels)

    def __repr__(self) -> str:
        return f"PriceLevelBook(bid={self.best_bid()}, ask={self.best_ask()}, levels={len(self)})"


class OrderLevelBook:
    """Order-level (L3) book of one instrument, keyed by level (order) id.

    Each id rests at one price on one side, in a FIFO queue per price: a new id joins the back; a
    price change moves it to the back of its new price's queue; a size change keeps its place. The
    aggregated reads (:meth:`best_bid`, :meth:`top`, :meth:`qty_at`) sum the sizes per price.
    """

    __slots__ = ("_asks", "_bids", "_orders", "_queues")

    def __init__(self) -> None:
        self._orders: dict[int, tuple[int, Decimal, Decimal]] = {}
        self._bids = _SideLevels(True)  # price -> total size
        self._asks = _SideLevels(False)
        self._queues: dict[int, dict[Decimal, dict[int, None]]] = {BID: {}, ASK: {}}

    def _side(self, side: int) -> _SideLevels:
        if side == BID:
            return self._bids
        if side == ASK:
            return self._asks
        raise ValueError(f"side must be {BID} (bid) or {ASK} (ask), got {side!r}")

    def _insert(self, side: int, level_id: int, price: Decimal, qty: Decimal) -> None:
        s = self._side(side)
        self._orders[level_id] = (side, price, qty)
        queues = self._queues[side]
        q = queues.get(price)
        if q is None:
            queues[price] = {level_id: None}
            s.levels[price] = qty
            s.push(price)
        else:
            q[level_id] = None
            s.levels[price] += qty

    def _remove(self, level_id: int) -> tuple[int, Decimal, Decimal]:
        side, price, qty = self._orders.pop(level_id)
        s = self._bids if side == BID else self._asks
        queues = self._queues[side]
        q = queues[price]
        del q[level_id]
        if q:
            s.levels[price] -= qty
        else:
            del queues[price]
            del s.levels[price]
        return side, price, qty

    # --- writes ----------------------------------------------------------------------------------
    def add(self, side: int, level_id: int, price: Price, qty: Qty) -> None:
        """Add level ``level_id`` at the back of ``price``'s queue on ``side``.

        Raises:
            ValueError: the id exists already, the side is bad or ``qty`` is not positive.
        """
        _check_side(side)
        if qty.value <= _ZERO:
            raise ValueError(f"level {level_id}: size must be positive, got {qty}")
        if level_id in self._orders:
            raise ValueError(f"level {level_id} already exists")
        self._insert(side, level_id, price.value, qty.value)

    def modify(self, level_id: int, new_qty: Qty, new_price: Price | None = None) -> None:
        """Change a level's size (keeps its queue place) and/or price (moves it to the back).

        Raises:
            KeyError: unknown ``level_id``.
            ValueError: ``new_qty`` is not positive (use :meth:`delete`).
        """
        if level_id not in self._orders:
            raise KeyError(f"no level {level_id}")
        q = new_qty.value
        if q <= _ZERO:
            raise ValueError(f"level {level_id}: size must be positive, got {new_qty}")
        self.modify_dec(level_id, q, None if new_price is None else new_price.value)

    def delete(self, level_id: int) -> None:
        """Remove a level.

        Raises:
            KeyError: unknown ``level_id``.
        """
        if level_id not in self._orders:
            raise KeyError(f"no level {level_id}")
        self._remove(level_id)

    def add_dec(self, side: int, level_id: int, price: Decimal, qty: Decimal) -> None:
        """:meth:`add` on Decimals without validation (hot path; the id must be new)."""
        self._insert(side, level_id, price, qty)

    def modify_dec(self, level_id: int, qty: Decimal, price: Decimal | None = None) -> None:
        """:meth:`modify` on Decimals without validation (hot path; the id must exist)."""
        side, old_p, old_q = self._orders[level_id]
        if price is not None and price != old_p:
            self._remove(level_id)
            self._insert(side, level_id, price, qty)
            return
        s = self._bids if side == BID else self._asks
        s.levels[old_p] += qty - old_q
        self._orders[level_id] = (side, old_p, qty)

    def delete_dec(self, level_id: int) -> tuple[int, Decimal, Decimal] | None:
        """Remove a level if present; return its ``(side, price, qty)`` or None (hot path)."""
        if level_id not in self._orders:
            return None
        return self._remove(level_id)

    def orders_dec(self) -> list[tuple[int, int, Decimal, Decimal]]:
        """Every level as ``(level_id, side, price, qty)``, in insertion order."""
        return [(lid, s, p, q) for lid, (s, p, q) in self._orders.items()]

    def clear(self) -> None:
        """Remove every level."""
        self._orders.clear()
        self._bids.clear()
        self._asks.clear()
        self._queues = {BID: {}, ASK: {}}

    # --- reads -----------------------------------------------------------------------------------
    def get(self, level_id: int) -> tuple[int, Price, Qty] | None:
        """``(side, price, qty)`` of a level, or None if it is unknown."""
        cur = self._orders.get(level_id)
        if cur is None:
            return None
        return cur[0], Price(cur[1]), Qty(cur[2])

    def get_dec(self, level_id: int) -> tuple[int, Decimal, Decimal] | None:
        """:meth:`get` as Decimals (hot path)."""
        return self._orders.get(level_id)

    def __contains__(self, level_id: object) -> bool:
        return level_id in self._orders

    def __len__(self) -> int:
        return len(self._orders)

    def best_bid(self) -> Level | None:
        """The highest bid price and the total size there, or None."""
        p = self._bids.best()
        return None if p is None else (Price(p), Qty(self._bids.levels[p]))

    def best_ask(self) -> Level | None:
        """The lowest ask price and the total size there, or None."""
        p = self._asks.best()
        return None if p is None else (Price(p), Qty(self._asks.levels[p]))

    def best_bid_dec(self) -> DecLevel | None:
        """The best bid as Decimals (hot path)."""
        p = self._bids.best()
        return None if p is None else (p, self._bids.levels[p])

    def best_ask_dec(self) -> DecLevel | None:
        """The best ask as Decimals (hot path)."""
        p = self._asks.best()
        return None if p is None else (p, self._asks.levels[p])

    def top(self, n: int) -> tuple[list[Level], list[Level]]:
        """The best ``n`` prices of each side with their total sizes, best first."""
        bl = self._bids.levels
        al = self._asks.levels
        return (
            [(Price(p), Qty(bl[p])) for p in self._bids.top(n)],
            [(Price(p), Qty(al[p])) for p in self._asks.top(n)],
        )

    def qty_at(self, side: int, price: Price) -> Qty | None:
        """Total size at ``price`` on ``side``, or None if no level rests there."""
        q = self._side(side).levels.get(price.value)
        return None if q is None else Qty(q)

    def queue_at(self, side: int, price: Price) -> list[int]:
        """The level ids resting at ``price`` on ``side``, first in line first."""
        _check_side(side)
        return list(self._queues[side].get(price.value, ()))

    def depth(self, side: int) -> int:
        """Number of distinct prices on ``side``."""
        return len(self._side(side).levels)

    def is_crossed(self) -> bool:
        """True if the best bid is at or above the best ask."""
        b = self._bids.best()
        if b is None:
            return False
        a = self._asks.best()
        return a is not None and b >= a

    def __repr__(self) -> str:
        return f"OrderLevelBook(bid={self.best_bid()}, ask={self.best_ask()}, levels={len(self)})"


class BboTracker:
    """Detects changes of the best bid and best ask (price or size) of a book.

    Call :meth:`update` after each batch of book changes; it says which side's best level changed
    since the previous call. Works with :class:`PriceLevelBook` and :class:`OrderLevelBook`.
    """

    __slots__ = ("ask", "bid")

    def __init__(self) -> None:
        self.bid: DecLevel | None = None
        self.ask: DecLevel | None = None

    def update(self, book: PriceLevelBook | OrderLevelBook) -> tuple[bool, bool]:
        """Return ``(bid_changed, ask_changed)`` and remember the current best levels."""
        b = book.best_bid_dec()
        a = book.best_ask_dec()
        bid_changed = b != self.bid
        ask_changed = a != self.ask
        self.bid = b
        self.ask = a
        return bid_changed, ask_changed

    def reset(self) -> None:
        """Forget the remembered levels (after a book was cleared)."""
        self.bid = None
        self.ask = None
