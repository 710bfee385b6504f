"""A consumer-side copy of the feed's books, rebuilt from the bus messages alone.

:class:`BookMirror` is what a strategy env (or a test) does with market data: apply
``BookUpdate`` / ``LevelUpdate`` batches to one book per instrument, follow ``FeedStatus``
(``SnapshotStart`` / ``SnapshotEnd`` / ``BookInvalid`` / ``Disconnected``) and check that the
stream keeps its promises: a book is only updated while valid or inside a snapshot, is never
crossed when valid, and the per-instrument ``seq`` has no holes. Violations are recorded in
:attr:`BookMirror.violations` (and raise when ``strict``).
"""

from __future__ import annotations

from decimal import Decimal

from mlthon.basics.book import DELETE, OrderLevelBook, PriceLevelBook
from mlthon.basics.errors import FeedError
from mlthon.basics.mlt_enum import FeedHandlerStatus
from mlthon.infra.bus.messages import BookUpdate, FeedStatus, LevelUpdate, Msg

INVALID = 0
SNAPSHOT = 1
VALID = 2


class BookMirror:
    """Books rebuilt from bus messages, with protocol checks.

    Args:
        strict: raise :class:`~mlthon.basics.errors.FeedError` on the first violation.
        check_crossed: treat a crossed valid price-level book as a violation.
    """

    def __init__(self, *, strict: bool = False, check_crossed: bool = True) -> None:
        self.strict = strict
        self.check_crossed = check_crossed
        self.books: dict[int, PriceLevelBook] = {}
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

    def book(self, iid: int) -> PriceLevelBook:
        """The price-level book of ``iid`` (created empty on first use)."""
        b = self.books.get(iid)
        if b is None:
            b = self.books[iid] = PriceLevelBook()
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
            if self.check_crossed and self.book(m.iid).is_crossed():
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
        for action, side, p, q in m.ch:
            got = book.apply_dec(side, Decimal(p), Decimal(0) if action == DELETE else Decimal(q))
            if got != action:
                self._violation(
                    f"iid {m.iid}: action {action} at {p} on side {side} was {got} here (ts {m.ts})"
                )
        if state == VALID and self.check_crossed and book.is_crossed():
            self._violation(f"iid {m.iid}: crossed book after update at ts {m.ts}")

    def _level_update(self, m: LevelUpdate) -> None:
        self._seq(m.iid, m.seq)
        if self.state.get(m.iid, INVALID) == INVALID:
            self._violation(f"iid {m.iid}: level update while the book is invalid (ts {m.ts})")
            return
        book = self.level_book(m.iid)
        for action, side, lid, p, q in m.ch:
            try:
                if action == DELETE:
                    if book.delete_dec(lid) is None:
                        raise KeyError(f"no level {lid}")
                elif action == 0:
                    if lid in book:
                        raise KeyError(f"level {lid} exists")
                    book.add_dec(side, lid, Decimal(p), Decimal(q))
                else:
                    book.modify_dec(lid, Decimal(q), Decimal(p))
            except KeyError as exc:
                self._violation(f"iid {m.iid}: {exc} (ts {m.ts})")
