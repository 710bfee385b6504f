"""The strategy's view of one instrument's book: ``env.get_book(...)`` (a :class:`BookView`).

The levels are the instrument's one :class:`~mlthon.basics.tickbook.TickBook`, in integer ticks
and lots: in a backtest the feed engine's (or the book keeper's) book, shared and only read here;
over a bus to another process, the env's own, applied from each message. ``Price`` / ``Qty``
objects are made only here and in the callbacks, one per tick or lot value of the instrument
(:class:`~mlthon.basics.values.TickPrices`, :class:`~mlthon.basics.values.LotQtys`), each checked
when first made.

A book that is invalid shows no levels (``best_bid`` / ``best_ask`` None, ``top`` empty) from the
moment it is found invalid (``BookInvalid``: a gap, a bad message, a lost message on the bus) until
its next snapshot starts, whatever the env or a shared feed book still holds: the strategy never
reads levels that are known to be wrong. Two states that are not valid still show their levels: a
book being rebuilt from a snapshot (between ``SnapshotStart`` and ``SnapshotEnd``) and a book whose
feed is silent past its limit (``Stale``: the last levels, which may be old but are not known to
be wrong). An order-level book that is crossed (``BookCrossed``: an auction, a pre-open) is the
venue's and stays valid: its levels show crossed.
"""

from __future__ import annotations

from mlthon.basics.book import OrderLevelBook
from mlthon.basics.instrument import Instrument
from mlthon.basics.tickbook import ASK, BID, NO_ASK, NO_BID, TickBook
from mlthon.basics.values import LotQtys, Price, Qty, TickPrices
from mlthon.infra.env.feed_watch import FeedMark

Level = tuple[Price, Qty]


class EnvBook:
    """The env's book of one instrument, a read-only :class:`~mlthon.api.istrat_env.BookView`.

    Attributes:
        book: the levels (shared with an in-process feed when :attr:`shared`).
        levels: the order-level book when the instrument's feed sends order-level data (its
            totals per price are :attr:`book`, then always the env's own).
        prices / qtys: the instrument's ``Price`` per tick and ``Qty`` per lot count.
        valid: the book can be trusted (after a snapshot, before a gap, a bad message or a
            silence past the feed's limit).
        building: between ``SnapshotStart`` and ``SnapshotEnd`` (no BBO callbacks).
        shared: :attr:`book` is kept by an in-process feed, not by the env.
        feed: the liveness mark of the instrument's feed (its ``stale`` keeps the last levels
            shown while the feed is silent); None: no feed watch.

    The views (:meth:`best_bid`, :meth:`best_ask`, :meth:`top`) show no levels while
    :meth:`shows_levels` is False (see the module docstring).
    """

    __slots__ = ("book", "building", "feed", "levels", "prices", "qtys", "shared", "valid")

    def __init__(self, inst: Instrument, feed: FeedMark | None = None) -> None:
        self.feed = feed
        self.book = TickBook()
        self.levels: OrderLevelBook | None = None
        self.valid = False
        self.building = False
        self.shared = False
        self.prices = TickPrices(inst.tick_size)
        self.qtys = LotQtys(inst.lot_size)

    def regrid(self, inst: Instrument) -> bool:
        """The instrument's grid as the control service now says it is: new caches if it
        changed (True; whoever bound the old ones must bind these)."""
        changed = False
        if inst.tick_size != self.prices.step:
            self.prices = TickPrices(inst.tick_size)
            changed = True
        if inst.lot_size != self.qtys.step:
            self.qtys = LotQtys(inst.lot_size)
            changed = True
        return changed

    def share(self, book: TickBook) -> None:
        """Read ``book``, kept by an in-process feed, instead of an own copy."""
        self.book = book
        self.shared = True

    def own(self) -> None:
        """Keep an own copy from now on (order-level data, whose totals the env computes)."""
        if self.shared:
            self.book = TickBook()
            self.shared = False

    def clear(self) -> None:
        """Forget the levels (a shared book is the feed's to clear)."""
        if self.levels is not None:
            self.levels.clear()  # clears its totals, the env's own book
        elif not self.shared:
            self.book.clear()

    def shows_levels(self) -> bool:
        """False while the book is invalid: not valid, not being rebuilt from a snapshot, and
        its feed not merely silent (``Stale`` keeps the last levels)."""
        if self.valid or self.building:
            return True
        feed = self.feed
        return feed is not None and feed.stale

    # --- BookView -------------------------------------------------------------------------------
    def best_bid(self) -> Level | None:
        """Best bid price and quantity, or None if the side is empty or the book invalid."""
        if not self.valid and not self.shows_levels():
            return None
        b = self.book
        t = b.bid
        if t == NO_BID:
            return None
        return self.prices[t], self.qtys[b.bid_lots()]

    def best_ask(self) -> Level | None:
        """Best ask price and quantity, or None if the side is empty or the book invalid."""
        if not self.valid and not self.shows_levels():
            return None
        b = self.book
        t = b.ask
        if t == NO_ASK:
            return None
        return self.prices[t], self.qtys[b.ask_lots()]

    def top(self, n: int) -> tuple[list[Level], list[Level]]:
        """The best ``n`` levels of each side, best first: ``(bids, asks)``; both empty while
        the book is invalid."""
        if not self.valid and not self.shows_levels():
            return [], []
        b = self.book
        prices = self.prices
        qtys = self.qtys
        return (
            [(prices[t], qtys[k]) for t, k in b.depth(BID, n)],
            [(prices[t], qtys[k]) for t, k in b.depth(ASK, n)],
        )
