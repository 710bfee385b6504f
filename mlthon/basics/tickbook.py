"""The one price-level book: an instrument's levels in integer ticks and lots.

A price is ``tick * tick_size`` and a size ``lots * lot_size`` of the instrument's grid; decoders
turn venue text into ticks and lots once, and every consumer (the feed engine, the simulated
exchange, the strategy's env) reads the same :class:`TickBook`. ``Price`` / ``Qty`` objects are
made only where a strategy sees a value.

Sides are ``BID`` (1) and ``ASK`` (2), as ``Side.Buy`` / ``Side.Sell``. An empty side's best is
:data:`NO_BID` / :data:`NO_ASK`, so comparisons need no ``None`` checks (``bid < ask`` holds for
an empty book).

Finding the best level again after the best is removed walks toward worse ticks from it, level by
level, as far as the worst level ever seen on that side (crypto books are dense near the top, so
that is a step or two); past :data:`_SCAN_MAX` empty ticks it asks the dict for its best instead.

:class:`PyTickBook` is the pure-Python implementation. ``TickBook``, the name every consumer
imports, is the compiled one (``mlthon/_core/tickbook.pyx``: same interface, same results) when it
is built and not switched off with ``MLTHON_PURE=1``, else :class:`PyTickBook`; ``mlthon._core``
logs which once. Consumers use only the public interface below (``bid`` and ``ask`` are read-only
in the compiled book, and the compiled class cannot be subclassed).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from mlthon import _core

BID = 1
ASK = 2
ADD = 0
MODIFY = 1
DELETE = 2
NO_BID = -(2**62)
NO_ASK = 2**62
_SCAN_MAX = 64

Change = tuple[int, int, int, int]  # (action, side, tick, lots)


class PyTickBook:
    """One instrument's price-level book: tick -> lots per side, and the best tick of each.

    Attributes:
        bid: the best bid tick (:data:`NO_BID` when there is no bid).
        ask: the best ask tick (:data:`NO_ASK` when there is no ask).

    Example::

        book = TickBook()
        book.set(BID, 600001, 25)      # -> 0 (the level was empty)
        book.set(BID, 600001, 0)       # -> 25 (removed)
    """

    __slots__ = ("_asks", "_bids", "_high_ask", "_low_bid", "ask", "bid")

    def __init__(self) -> None:
        self._bids: dict[int, int] = {}
        self._asks: dict[int, int] = {}
        self.bid = NO_BID
        self.ask = NO_ASK
        self._low_bid = NO_ASK  # the lowest bid tick ever set since the last clear
        self._high_ask = NO_BID  # the highest ask tick ever set since the last clear

    # --- changes -------------------------------------------------------------------------------

    def set_bid(self, tick: int, lots: int) -> int:
        """Set the bid level at ``tick`` to ``lots`` (0 removes it); returns its previous lots."""
        levels = self._bids
        if lots:
            prev = levels.get(tick, 0)
            levels[tick] = lots
            if tick > self.bid:
                self.bid = tick
            if tick < self._low_bid:
                self._low_bid = tick
            return prev
        prev = levels.pop(tick, 0)
        if prev and tick == self.bid:
            self.bid = self._next_bid(tick)
        return prev

    def set_ask(self, tick: int, lots: int) -> int:
        """Set the ask level at ``tick`` to ``lots`` (0 removes it); returns its previous lots."""
        levels = self._asks
        if lots:
            prev = levels.get(tick, 0)
            levels[tick] = lots
            if tick < self.ask:
                self.ask = tick
            if tick > self._high_ask:
                self._high_ask = tick
            return prev
        prev = levels.pop(tick, 0)
        if prev and tick == self.ask:
            self.ask = self._next_ask(tick)
        return prev

    def set(self, side: int, tick: int, lots: int) -> int:
        """Set one level of ``side`` (``BID`` or ``ASK``); returns its previous lots."""
        if side == BID:
            return self.set_bid(tick, lots)
        if side == ASK:
            return self.set_ask(tick, lots)
        raise ValueError(f"side must be {BID} (bid) or {ASK} (ask), got {side!r}")

    def apply(self, changes: Iterable[Change]) -> None:
        """Apply a venue message's changes, ``(action, side, tick, lots)`` each (``DELETE``, or
        ``lots`` 0, removes the level)."""
        set_bid = self.set_bid
        set_ask = self.set_ask
        for action, side, tick, lots in changes:
            if side == BID:
                set_bid(tick, 0 if action == DELETE else lots)
            elif side == ASK:
                set_ask(tick, 0 if action == DELETE else lots)
            else:
                raise ValueError(f"side must be {BID} (bid) or {ASK} (ask), got {side!r}")

    def clear(self) -> None:
        """Remove every level."""
        self._bids.clear()
        self._asks.clear()
        self.bid = NO_BID
        self.ask = NO_ASK
        self._low_bid = NO_ASK
        self._high_ask = NO_BID

    def _next_bid(self, below: int) -> int:
        levels = self._bids
        if not levels:
            self._low_bid = NO_ASK
            return NO_BID
        low = self._low_bid
        t = below - 1
        steps = 0
        while t >= low and steps < _SCAN_MAX:
            if t in levels:
                return t
            t -= 1
            steps += 1
        return max(levels)

    def _next_ask(self, above: int) -> int:
        levels = self._asks
        if not levels:
            self._high_ask = NO_BID
            return NO_ASK
        high = self._high_ask
        t = above + 1
        steps = 0
        while t <= high and steps < _SCAN_MAX:
            if t in levels:
                return t
            t += 1
            steps += 1
        return min(levels)

    # --- reads ---------------------------------------------------------------------------------

    def bid_below(self, tick: int) -> int:
        """The best bid tick strictly below ``tick`` (:data:`NO_BID` when there is none): walks a
        book from its best level toward worse ones, ``bid_below(bid_below(book.bid))``..."""
        levels = self._bids
        low = self._low_bid
        t = tick - 1
        steps = 0
        while t >= low and steps < _SCAN_MAX:
            if t in levels:
                return t
            t -= 1
            steps += 1
        if t < low:
            return NO_BID
        return max((k for k in levels if k < tick), default=NO_BID)

    def ask_above(self, tick: int) -> int:
        """The best ask tick strictly above ``tick`` (:data:`NO_ASK` when there is none)."""
        levels = self._asks
        high = self._high_ask
        t = tick + 1
        steps = 0
        while t <= high and steps < _SCAN_MAX:
            if t in levels:
                return t
            t += 1
            steps += 1
        if t > high:
            return NO_ASK
        return min((k for k in levels if k > tick), default=NO_ASK)

    def lots(self, side: int, tick: int) -> int:
        """The lots at ``tick`` on ``side`` (0 when there is no level)."""
        return (self._bids if side == BID else self._asks).get(tick, 0)

    def bid_lots(self) -> int:
        """The lots of the best bid (0 when there is none)."""
        return self._bids.get(self.bid, 0)

    def ask_lots(self) -> int:
        """The lots of the best ask (0 when there is none)."""
        return self._asks.get(self.ask, 0)

    def count(self, side: int) -> int:
        """How many levels ``side`` has."""
        return len(self._bids if side == BID else self._asks)

    def depth(self, side: int, n: int | None = None) -> list[tuple[int, int]]:
        """The first ``n`` levels of ``side`` (all when None), best first, as (tick, lots)."""
        if side == BID:
            ticks = sorted(self._bids, reverse=True)
            levels = self._bids
        else:
            ticks = sorted(self._asks)
            levels = self._asks
        if n is not None:
            ticks = ticks[:n]
        return [(t, levels[t]) for t in ticks]

    @property
    def crossed(self) -> bool:
        """True when the best bid is at or above the best ask (both sides present)."""
        return self.bid >= self.ask

    def __len__(self) -> int:
        return len(self._bids) + len(self._asks)

    def __repr__(self) -> str:
        return (
            f"TickBook(bid={self.bid if self._bids else None}, "
            f"ask={self.ask if self._asks else None}, levels={len(self)})"
        )


if TYPE_CHECKING:
    TickBook = PyTickBook
else:
    TickBook = _core.pick("tickbook", "TickBook", PyTickBook)
