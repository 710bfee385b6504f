"""The order-level (L3) book: resting orders keyed by level id, in integer ticks and lots.

Pure code, no I/O, shared by the feed engine, the strategy env and the feed's mirror. The
price-level view of an L3 book (the total lots per price) is a
:class:`~mlthon.basics.tickbook.TickBook` that this book keeps up to date: its own, or one handed
in (the feed engine passes the instrument's one book, so that readers of that book see the L3
aggregate as they see an L2 feed's levels).

Sides and actions are those of :mod:`mlthon.basics.tickbook` (``BID`` 1, ``ASK`` 2; ``ADD`` 0,
``MODIFY`` 1, ``DELETE`` 2), the values of the bus messages.
"""

from __future__ import annotations

from mlthon.basics.tickbook import ADD, ASK, BID, DELETE, MODIFY, TickBook

__all__ = ["ADD", "ASK", "BID", "DELETE", "MODIFY", "OrderLevelBook"]

Order = tuple[int, int, int]  # (side, tick, lots)


def _check_side(side: int) -> None:
    if side != BID and side != ASK:
        raise ValueError(f"side must be {BID} (bid) or {ASK} (ask), got {side!r}")


class OrderLevelBook:
    """Order-level (L3) book of one instrument, keyed by level (order) id.

    Each id rests at one tick on one side, in a FIFO queue per tick: a new id joins the back; a
    price change moves it to the back of its new price's queue; a size change keeps its place.
    :attr:`book` holds the total lots per price.

    Args:
        book: the price-level book to keep as the aggregate (cleared first); None: a new one.

    Example::

        l3 = OrderLevelBook()
        l3.add(BID, 7, 600001, 3)        # order 7: 3 lots at tick 600001
        l3.book.bid, l3.book.bid_lots()  # -> (600001, 3)
    """

    __slots__ = ("_orders", "_queues", "book")

    def __init__(self, book: TickBook | None = None) -> None:
        self.book = book if book is not None else TickBook()
        self.book.clear()
        self._orders: dict[int, Order] = {}
        self._queues: dict[tuple[int, int], dict[int, None]] = {}

    # --- writes ----------------------------------------------------------------------------------
    def add(self, side: int, level_id: int, tick: int, lots: int) -> None:
        """Add level ``level_id`` at the back of ``tick``'s queue on ``side``.

        Raises:
            ValueError: the id exists already, the side is bad or ``lots`` is not positive.
        """
        _check_side(side)
        if lots <= 0:
            raise ValueError(f"level {level_id}: size must be positive, got {lots} lots")
        if level_id in self._orders:
            raise ValueError(f"level {level_id} already exists")
        self._insert(side, level_id, tick, lots)

    def modify(self, level_id: int, lots: int, tick: int | None = None) -> None:
        """Change a level's size (keeps its queue place) and/or price (moves it to the back).

        Raises:
            KeyError: unknown ``level_id``.
            ValueError: ``lots`` is not positive (use :meth:`delete`).
        """
        cur = self._orders.get(level_id)
        if cur is None:
            raise KeyError(f"no level {level_id}")
        if lots <= 0:
            raise ValueError(f"level {level_id}: size must be positive, got {lots} lots")
        side, old_t, old_l = cur
        if tick is not None and tick != old_t:
            self._remove(level_id)
            self._insert(side, level_id, tick, lots)
            return
        book = self.book
        book.set(side, old_t, book.lots(side, old_t) + lots - old_l)
        self._orders[level_id] = (side, old_t, lots)

    def delete(self, level_id: int) -> Order | None:
        """Remove a level if present; returns its ``(side, tick, lots)``, or None if unknown."""
        if level_id not in self._orders:
            return None
        return self._remove(level_id)

    def clear(self) -> None:
        """Remove every level (and clear the aggregate book)."""
        self._orders.clear()
        self._queues.clear()
        self.book.clear()

    def _insert(self, side: int, level_id: int, tick: int, lots: int) -> None:
        self._orders[level_id] = (side, tick, lots)
        key = (side, tick)
        q = self._queues.get(key)
        if q is None:
            self._queues[key] = {level_id: None}
        else:
            q[level_id] = None
        book = self.book
        book.set(side, tick, book.lots(side, tick) + lots)

    def _remove(self, level_id: int) -> Order:
        side, tick, lots = self._orders.pop(level_id)
        key = (side, tick)
        q = self._queues[key]
        del q[level_id]
        if not q:
            del self._queues[key]
        book = self.book
        book.set(side, tick, book.lots(side, tick) - lots)
        return side, tick, lots

    # --- reads -----------------------------------------------------------------------------------
    def get(self, level_id: int) -> Order | None:
        """``(side, tick, lots)`` of a level, or None if it is unknown."""
        return self._orders.get(level_id)

    def orders(self) -> list[tuple[int, int, int, int]]:
        """Every level as ``(level_id, side, tick, lots)``, in insertion order."""
        return [(lid, s, t, n) for lid, (s, t, n) in self._orders.items()]

    def queue_at(self, side: int, tick: int) -> list[int]:
        """The level ids resting at ``tick`` on ``side``, first in line first."""
        _check_side(side)
        return list(self._queues.get((side, tick), ()))

    def lots_at(self, side: int, tick: int) -> int:
        """Total lots at ``tick`` on ``side`` (0 if no level rests there)."""
        return self.book.lots(side, tick)

    @property
    def crossed(self) -> bool:
        """True if the best bid is at or above the best ask."""
        return self.book.crossed

    def __contains__(self, level_id: object) -> bool:
        return level_id in self._orders

    def __len__(self) -> int:
        return len(self._orders)

    def __repr__(self) -> str:
        return f"OrderLevelBook({self.book!r}, orders={len(self)})"
