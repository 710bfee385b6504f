"""Consumer-side copies of the feed's books, rebuilt from the bus messages alone.

* :class:`BookKeeper` keeps one :class:`~mlthon.basics.tickbook.TickBook` per instrument from
  ``BookUpdate`` / ``LevelUpdate`` / ``FeedStatus`` messages, as the feed engine keeps its own: a
  backtest over message objects (no feed engine in the process) applies each message once, here,
  and its simulated exchange and strategy env read these books instead of keeping copies.
* :class:`BookMirror` does what a strategy env (or a test) does with market data and checks that
  the stream keeps its promises: a book is only updated while valid or inside a snapshot, is never
  crossed when valid, each change's action matches the book, and the per-instrument ``seq`` has
  no holes. Violations are recorded in :attr:`BookMirror.violations` (and raise when
  ``strict``). The feed process answers snapshot requests from its mirror.

Prices and sizes are integer ticks and lots (wire version 2).
"""

from __future__ import annotations

from mlthon.basics.book import OrderLevelBook
from mlthon.basics.errors import FeedError
from mlthon.basics.mlt_enum import Exchange, FeedHandlerStatus
from mlthon.basics.tickbook import ADD, DELETE, MODIFY, TickBook
from mlthon.infra.bus.messages import BookUpdate, FeedStatus, LevelDelta, LevelUpdate, Msg

INVALID = 0
SNAPSHOT = 1
VALID = 2

NO_CHANGE = -1
# The statuses after which a feed's book is empty (the feed engine cleared it).
_CLEARING = (
    FeedHandlerStatus.SnapshotStart,
    FeedHandlerStatus.BookInvalid,
    FeedHandlerStatus.Disconnected,
)


def action_of(prev: int, lots: int) -> int:
    """The action that took a level from ``prev`` lots to ``lots``: ``ADD``, ``MODIFY``,
    ``DELETE``, or :data:`NO_CHANGE`."""
    if lots:
        if not prev:
            return ADD
        return MODIFY if prev != lots else NO_CHANGE
    return DELETE if prev else NO_CHANGE


def apply_level_changes(book: OrderLevelBook, ch: list[LevelDelta]) -> None:
    """Apply order-level changes as every reader does: an ``ADD`` of a known id replaces it, a
    ``MODIFY`` of an unknown one adds it, a ``DELETE`` of an unknown one is nothing."""
    for action, side, lid, t, n in ch:
        if action == DELETE or not n:
            book.delete(lid)
        elif action == ADD or lid not in book:
            book.delete(lid)
            book.add(side, lid, t, n)
        else:
            book.modify(lid, n, t)


class BookKeeper:
    """One book per (exchange, instrument), kept from the bus messages (see the module
    docstring). :meth:`book` gives the same object for the keeper's life."""

    def __init__(self) -> None:
        self._books: dict[tuple[int, int], TickBook] = {}
        self._l3: dict[tuple[int, int], OrderLevelBook] = {}

    def book(self, exchange: Exchange, instrument_id: int) -> TickBook:
        """The price-level book of an instrument (created empty on first use; for order-level
        data, the total lots per price)."""
        return self._book(exchange.value, instrument_id)

    def _book(self, ex: int, iid: int) -> TickBook:
        key = (ex, iid)
        b = self._books.get(key)
        if b is None:
            b = self._books[key] = TickBook()
        return b

    def apply(self, msg: Msg) -> None:
        """Apply one message (other kinds than book updates and statuses are ignored)."""
        t = type(msg)
        if t is BookUpdate:
            self._book(msg.ex, msg.iid).apply(msg.ch)  # type: ignore[attr-defined]
        elif t is LevelUpdate:
            key = (msg.ex, msg.iid)  # type: ignore[attr-defined]
            l3 = self._l3.get(key)
            if l3 is None:
                l3 = self._l3[key] = OrderLevelBook(self._book(*key))
            apply_level_changes(l3, msg.ch)  # type: ignore[attr-defined]
        elif t is FeedStatus and msg.status in _CLEARING:  # type: ignore[attr-defined]
            ex, iid = msg.ex, msg.iid  # type: ignore[attr-defined]
            for key, b in self._books.items():
                if key[0] == ex and (not iid or key[1] == iid):
                    b.clear()
                    l3 = self._l3.get(key)
                    if l3 is not None:
                        l3.clear()


class BookMirror:
    """Books rebuilt from bus messages, with protocol checks.

    Args:
        strict: raise :class:`~mlthon.basics.errors.FeedError` on the first violation.
        check_crossed: treat a crossed valid price-level book as a violation.
    """

    def __init__(self, *, strict: bool = False, check_crossed: bool = True) -> None:
        self.strict = strict
        self.check_crossed = check_crossed
        self.books: dict[int, TickBook] = {}
        self.level_books: dict[int, OrderLevelBook] = {}
        self.state: dict[int, int] = {}
        self.last_seq: dict[int, int] = {}
        self.violations: list[str] = []
        self.statuses: list[FeedStatus] = []

    def _violation(self, why: str) -> None:
        self.violations.append(why)
        if self.strict:
            raise FeedError(why)

    def _seq(self, iid: int, seq: int) -> None:
        last = self.last_seq.get(iid)
        if last is not None and seq != last + 1:
            self._violation(f"iid {iid}: seq {seq} after {last}")
        self.last_seq[iid] = seq

    def book(self, iid: int) -> TickBook:
        """The price-level book of ``iid`` (created empty on first use)."""
        b = self.books.get(iid)
        if b is None:
            b = self.books[iid] = TickBook()
        return b

    def level_book(self, iid: int) -> OrderLevelBook:
        """The order-level book of ``iid`` (created empty on first use)."""
        b = self.level_books.get(iid)
        if b is None:
            b = self.level_books[iid] = OrderLevelBook()
        return b

    def is_valid(self, iid: int) -> bool:
        """True if the instrument's book is valid (after a SnapshotEnd, before an invalidation)."""
        return self.state.get(iid) == VALID

    def apply(self, msg: Msg) -> None:
        """Apply one message; messages other than book updates and statuses are ignored."""
        t = type(msg)
        if t is BookUpdate:
            self._book_update(msg)  # type: ignore[arg-type]
        elif t is LevelUpdate:
            self._level_update(msg)  # type: ignore[arg-type]
        elif t is FeedStatus:
            self._status(msg)  # type: ignore[arg-type]
        else:
            iid = getattr(msg, "iid", None)
            if iid:
                self._seq(iid, getattr(msg, "seq", 0))

    def _status(self, m: FeedStatus) -> None:
        self.statuses.append(m)
        st = m.status
        if m.iid == 0:
            if st is FeedHandlerStatus.Disconnected:
                for iid in list(self.state):
                    self.state[iid] = INVALID
                for b in self.books.values():
                    b.clear()
                for lb in self.level_books.values():
                    lb.clear()
            return
        self._seq(m.iid, m.seq)
        if st is FeedHandlerStatus.SnapshotStart:
            self.state[m.iid] = SNAPSHOT
            self.book(m.iid).clear()
            self.level_book(m.iid).clear()
        elif st is FeedHandlerStatus.SnapshotEnd:
            if self.state.get(m.iid) != SNAPSHOT:
                self._violation(f"iid {m.iid}: SnapshotEnd without SnapshotStart")
            self.state[m.iid] = VALID
            if self.check_crossed and self.book(m.iid).crossed:
                self._violation(f"iid {m.iid}: crossed book at SnapshotEnd")
        elif st in (FeedHandlerStatus.BookInvalid, FeedHandlerStatus.Disconnected):
            self.state[m.iid] = INVALID
            self.book(m.iid).clear()
            self.level_book(m.iid).clear()

    def _book_update(self, m: BookUpdate) -> None:
        self._seq(m.iid, m.seq)
        state = self.state.get(m.iid, INVALID)
        if state == INVALID:
            self._violation(f"iid {m.iid}: book update while the book is invalid (ts {m.ts})")
            return
        book = self.book(m.iid)
        for action, side, t, n in m.ch:
            lots = 0 if action == DELETE else n
            got = action_of(book.set(side, t, lots), lots)
            if got != action:
                self._violation(
                    f"iid {m.iid}: action {action} at tick {t} on side {side} was {got} here "
                    f"(ts {m.ts})"
                )
        if state == VALID and self.check_crossed and book.crossed:
            self._violation(f"iid {m.iid}: crossed book after update at ts {m.ts}")

    def _level_update(self, m: LevelUpdate) -> None:
        self._seq(m.iid, m.seq)
        if self.state.get(m.iid, INVALID) == INVALID:
            self._violation(f"iid {m.iid}: level update while the book is invalid (ts {m.ts})")
            return
        book = self.level_book(m.iid)
        for action, side, lid, t, n in m.ch:
            try:
                if action == DELETE:
                    if book.delete(lid) is None:
                        raise KeyError(f"no level {lid}")
                elif action == ADD:
                    if lid in book:
                        raise KeyError(f"level {lid} exists")
                    book.add(side, lid, t, n)
                else:
                    book.modify(lid, n, t)
            except (KeyError, ValueError) as exc:
                self._violation(f"iid {m.iid}: {exc} (ts {m.ts})")
