"""The feed engine: parsed venue events in, normalised bus messages out, books kept honest.

Pure (no I/O, no clock): the caller passes each event's receive time. One engine serves any number
of instruments on any number of venues; every instrument's book has its own integrity state:

``WAITING`` --(verified snapshot)--> ``LIVE`` --(gap | crossed | negative size | silent |
snapshot mismatch)--> ``WAITING``

* On entering ``LIVE`` the engine emits ``FeedStatus(SnapshotStart, iid)``, one ``BookUpdate`` (or
  ``LevelUpdate``) of ADD events holding the whole book, then ``FeedStatus(SnapshotEnd, iid)``.
* On leaving it, it emits ``FeedStatus(BookInvalid, iid, detail)`` naming the instrument and the
  reason, clears that book and emits nothing more for it until the next verified snapshot. Other
  instruments are not touched.
* A :class:`~mlthon.feeds.events.Disconnect` emits ``FeedStatus(Disconnected, iid=0)`` for the
  venue and sends every book of that venue back to ``WAITING``.
* An order-level (L3) book that crosses stays ``LIVE``: a venue sends every order, so a crossed
  book is the venue's own (an auction or a pre-open, such as CME's, where orders cross without
  trading). The engine emits ``FeedStatus(BookCrossed, iid)`` once after the update that left it
  crossed, keeps applying and emitting the updates, and emits ``FeedStatus(Resumed, iid)`` after
  the one that uncrosses it. A crossing inside one venue event (a match sent as several
  updates) is not judged: only after the event's last update (``OrderUpdate.last``), or, for a
  venue that marks no events, after ``l3_cross_grace`` crossed updates in a row. A price-level
  book that crosses has lost an update: ``BookInvalid`` and a resync, as above.

While ``WAITING``, sequenced diffs are buffered so that an out-of-band (REST) snapshot can be
bridged to them by update id (Binance's procedure). A later REST snapshot on a live book is used as
a check: it is brought forward with the recent diffs and its top levels compared with the book.

Prices and sizes become integer ticks and lots of the instrument here, once (:mod:`.grid`): the
messages carry ints (``BookUpdate`` ``(action, side, tick, lots)``), and each instrument's book is
one :class:`~mlthon.basics.tickbook.TickBook` that stays the same object for the engine's life
(cleared and rebuilt in place), so in-process readers (a backtest's env and simulated exchange)
share it instead of keeping copies.

Bad data (unknown symbol, a value that is not sane such as ``NaN``, ``1e999999`` or a negative
size) is counted in :class:`FeedStats`, logged with its source and line, and either skipped or
answered with a resync; it never becomes ticks. A price off the instrument's tick grid is counted
(``off_grid_prices``), reported and left out; a size off the lot grid (Binance spot aggregates a
few book sizes finer than its order step) is rounded down to whole lots, counted
(``off_grid_sizes``) and logged.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

import attrs

from mlthon.basics.book import OrderLevelBook
from mlthon.basics.errors import BadMarketData
from mlthon.basics.instrument import Instrument
from mlthon.basics.mlt_enum import Exchange, FeedHandlerStatus
from mlthon.basics.tickbook import ADD, ASK, BID, DELETE, MODIFY, NO_ASK, NO_BID, TickBook
from mlthon.feeds.events import (
    SEQ_NEXT,
    SEQ_NONE,
    SEQ_PREV,
    DepthDiff,
    DepthSnapshot,
    Disconnect,
    Event,
    Funding,
    Ignored,
    OrderSnapshot,
    OrderUpdate,
    SourceEvent,
    StrTrade,
    Trades,
)
from mlthon.feeds.grid import BadValue, Grid, OffGrid
from mlthon.feeds.levels import apply_pairs, apply_raw, text_levels
from mlthon.infra.bus.messages import (
    BookDelta,
    BookUpdate,
    FeedStatus,
    FundingUpdate,
    LevelDelta,
    LevelUpdate,
    Msg,
    TradeTuple,
    TradeUpdate,
)

log = logging.getLogger(__name__)

Emit = Callable[[Msg], None]

WAITING = 0
LIVE = 1

VERIFY_LEVELS = 5
_RECENT = 512
_MAX_BAD_KEPT = 200
_OFF_GRID_LOGGED = 20  # off-grid values logged one by one; then every 1000th
_UNSEEN: Any = object()  # a (venue, symbol) not looked up yet (None: looked up, unknown)


@attrs.define
class FeedStats:
    """Counters of one engine, for reports and tests.

    Attributes:
        events: parsed events handled.
        emitted: bus messages emitted.
        bad: bad-data incidents (each also logged); the first ones are kept in ``bad_records``.
        unknown_symbols: symbols seen that match no instrument.
        gaps / crossed / silent / mismatches: book invalidations by reason (``crossed``: a
            price-level book that crossed).
        crossed_kept: order-level books reported crossed (``BookCrossed``) and kept: auctions
            and pre-opens.
        syncs: books (re)built from a verified snapshot.
        verified_snapshots: later REST snapshots that matched the live book's top levels.
        unverifiable_snapshots: later REST snapshots too old or too new to compare.
        dropped_unsynced: updates dropped while a book had no snapshot: unsequenced diffs and
            order-level updates that came before it, buffered diffs older than the snapshot
            they wait for or cleared unused (a disconnect, an in-stream snapshot), and buffer
            overflow.
        ignored: messages deliberately not used (BBO tickers, klines...).
        absent_deletes: removals of levels/orders the book does not hold (normal on venues).
        off_grid_prices: levels and trades left out because their price is not a whole number
            of the instrument's ticks (each one reported).
        off_grid_sizes: sizes not a whole number of the instrument's lots, rounded down (logged,
            not counted as bad data).
    """

    events: int = 0
    emitted: int = 0
    bad: int = 0
    bad_records: list[BadMarketData] = attrs.Factory(list)
    unknown_symbols: set[str] = attrs.Factory(set)
    gaps: int = 0
    crossed: int = 0
    crossed_kept: int = 0
    silent: int = 0
    mismatches: int = 0
    syncs: int = 0
    verified_snapshots: int = 0
    unverifiable_snapshots: int = 0
    dropped_unsynced: int = 0
    ignored: int = 0
    absent_deletes: int = 0
    off_grid_prices: int = 0
    off_grid_sizes: int = 0


class _BookState:
    """Integrity state of one instrument's book."""

    __slots__ = (
        "buffer",
        "cross_told",
        "crossed_run",
        "ex",
        "grid",
        "iid",
        "inst",
        "l2",
        "l3",
        "last_id",
        "last_ts",
        "name",
        "pending",
        "recent",
        "state",
        "verify",
        "why_waiting",
    )

    def __init__(self, inst: Instrument) -> None:
        self.inst = inst
        self.iid = inst.instrument_id
        self.ex = inst.exchange.value
        self.name = f"{inst.name}@{inst.exchange.name}#{inst.instrument_id}"
        self.grid = Grid(inst)
        # The instrument's one book: never replaced (readers may keep it); for order-level data
        # it is the L3 book's price-level aggregate.
        self.l2 = TickBook()
        self.l3: OrderLevelBook | None = None
        self.state = WAITING
        self.last_id = -1
        self.last_ts = 0
        self.buffer: deque[DepthDiff] = deque()
        self.recent: deque[DepthDiff] = deque(maxlen=_RECENT)
        self.pending: DepthSnapshot | None = None
        self.verify: DepthSnapshot | None = None
        self.crossed_run = 0
        self.cross_told = False  # BookCrossed emitted, Resumed not yet (order-level books)
        self.why_waiting = ""


class FeedEngine:
    """Turns parsed venue events into bus messages for a set of instruments.

    Args:
        instruments: the instruments to publish; events for other symbols are counted as unknown.
        emit: called with every message, in order.
        silence_timeout_ns: a live book with no update for this long is invalidated by
            :meth:`check_silence` (None: never).
        max_buffer: most diffs kept per instrument while waiting for a snapshot.
        l3_cross_grace: consecutive updates an order-level book of a venue that marks no events
            (``OrderUpdate.last`` None) may stay crossed (venues send a match as several
            messages) before it is reported crossed (``BookCrossed``; the book is kept).
        on_snapshot_needed: called with the instrument when its book needs an out-of-band snapshot
            (a live handler fetches one over REST; replay waits for the next one in the file).
        logger: where transitions are logged.
    """

    def __init__(
        self,
        instruments: Iterable[Instrument],
        emit: Emit,
        *,
        silence_timeout_ns: int | None = None,
        max_buffer: int = 20_000,
        l3_cross_grace: int = 50,
        on_snapshot_needed: Callable[[Instrument], None] | None = None,
        logger: logging.Logger | None = None,
    ) -> None:
        self._emit = emit
        self._log = logger or log
        self.silence_timeout_ns = silence_timeout_ns
        self.max_buffer = max_buffer
        self.l3_cross_grace = l3_cross_grace
        self._on_snapshot_needed = on_snapshot_needed
        self.stats = FeedStats()
        self._by_key: dict[tuple[int, str], _BookState] = {}
        self._seq: dict[int, int] = {}
        for inst in instruments:
            self._by_key[(inst.exchange.value, inst.name.upper())] = _BookState(inst)
        self._sym_cache: dict[tuple[Exchange, str], _BookState | None] = {}

    # --- public ----------------------------------------------------------------------------------
    def book(self, instrument_id: int) -> TickBook | OrderLevelBook | None:
        """The engine's current book of an instrument (order-level if it gets L3 data)."""
        for st in self._by_key.values():
            if st.iid == instrument_id:
                return st.l3 if st.l3 is not None else st.l2
        return None

    def price_book(self, exchange: Exchange, instrument_id: int) -> TickBook | None:
        """The engine's price-level book of an instrument, or None if it is not configured
        (for order-level data: the total lots per price of its L3 book).

        The object stays the same for the engine's life (it is cleared and rebuilt in place),
        so an in-process reader may keep it: a backtest's strategy env and simulated exchange
        read it instead of keeping copies (:meth:`StratEnv.share_feed_books`).
        """
        for st in self._by_key.values():
            if st.iid == instrument_id and st.ex == exchange.value:
                return st.l2
        return None

    def is_live(self, instrument_id: int) -> bool:
        """True if the instrument's book is synchronised and valid."""
        return any(st.iid == instrument_id and st.state == LIVE for st in self._by_key.values())

    def waiting_reasons(self) -> list[str]:
        """Why each book that holds data but is not live is waiting, in plain words (for the end
        of a replay, when nothing more will come)."""
        out = []
        for st in self._by_key.values():
            if st.state == LIVE:
                continue
            if st.why_waiting:
                why = st.why_waiting
            elif st.pending is not None:
                why = (
                    f"it has snapshot {st.pending.last_id} but no depth update after it: a "
                    "snapshot is joined to the updates that follow it (by update id) before the "
                    "book is published; give the updates too"
                )
            elif st.buffer:
                why = (
                    f"it has {len(st.buffer)} depth update(s) but no snapshot to start from: "
                    "updates alone cannot build a book; give a snapshot that they follow"
                )
            else:
                continue
            out.append(f"{st.name} has no book: {why}")
        return out

    def bad_data(self, why: str, source: str = "", line: int | None = None) -> None:
        """Count and log a bad-data incident (also used by the readers for unparsable lines)."""
        err = BadMarketData(why, source=source, line=line)
        self.stats.bad += 1
        if len(self.stats.bad_records) < _MAX_BAD_KEPT:
            self.stats.bad_records.append(err)
        self._log.warning("feed: bad market data: %s", err)

    def on_source_event(self, se: SourceEvent) -> None:
        """Handle one event read from a source."""
        self.on_event(se.ts, se.exchange, se.event, se.source, se.line)

    def on_event(
        self, ts: int, exchange: Exchange, ev: Event, source: str = "", line: int = 0
    ) -> None:
        """Handle one parsed venue event received at ``ts`` (ns)."""
        self.stats.events += 1
        t = type(ev)
        if t is Ignored:
            self.stats.ignored += 1
            return
        if t is Disconnect:
            self._disconnect(ts, exchange, ev.reason)  # type: ignore[union-attr]
            return
        st = self._sym_cache.get((exchange, ev.symbol), _UNSEEN)  # type: ignore[union-attr]
        if st is _UNSEEN:
            st = self._lookup(exchange, ev.symbol, source, line)  # type: ignore[union-attr]
        if st is None:
            return
        if t is DepthDiff:
            self._on_diff(st, ts, ev, source, line)  # type: ignore[arg-type]
        elif t is Trades:
            tr = self._trades(st, ev.trades, source, line)  # type: ignore[union-attr]
            if tr:
                iid = st.iid
                seq = self._seq[iid] = self._seq.get(iid, 0) + 1  # _next and _out, inline
                self.stats.emitted += 1
                self._emit(TradeUpdate(ex=st.ex, iid=iid, ts=ts, seq=seq, tr=tr))
        elif t is DepthSnapshot:
            self._on_snapshot(st, ts, ev)  # type: ignore[arg-type]
        elif t is OrderUpdate:
            self._on_order_update(st, ts, ev, source, line)  # type: ignore[arg-type]
        elif t is OrderSnapshot:
            self._on_order_snapshot(st, ts, ev)  # type: ignore[arg-type]
        elif t is Funding:
            f: Funding = ev  # type: ignore[assignment]
            self._out(
                FundingUpdate(
                    ex=st.ex,
                    iid=st.iid,
                    ts=ts,
                    rate=f.rate,
                    next_ts=f.next_ts,
                    mark=f.mark,
                    seq=self._next(st.iid),
                )
            )

    def check_silence(self, now_ns: int) -> None:
        """Invalidate every live book that has had no update for longer than the timeout."""
        limit = self.silence_timeout_ns
        if limit is None:
            return
        for st in self._by_key.values():
            if st.state == LIVE and now_ns - st.last_ts > limit:
                self.stats.silent += 1
                secs = (now_ns - st.last_ts) / 1e9
                self._invalidate(st, now_ns, f"feed silent for {secs:.1f}s (limit {limit / 1e9}s)")

    def connection_silent(self, now_ns: int, silent_s: float) -> None:
        """The venue connection sent no frame for ``silent_s``: invalidate every live book,
        however recently it changed (a book synchronised from a REST snapshot after the last
        frame is no more current than the others)."""
        for st in self._by_key.values():
            if st.state == LIVE:
                self.stats.silent += 1
                self._invalidate(st, now_ns, f"feed silent: no frame for {silent_s}s")

    def emit_book_images(self, ts: int) -> None:
        """Emit SnapshotStart / the whole book / SnapshotEnd for every live book, at ``ts``.

        Used when output starts after the books were built (a replay window's start).
        """
        for st in self._by_key.values():
            if st.state == LIVE:
                self._emit_image(st, ts)

    # --- internals -------------------------------------------------------------------------------
    def _out(self, msg: Msg) -> None:
        self.stats.emitted += 1
        self._emit(msg)

    def _next(self, iid: int) -> int:
        n = self._seq.get(iid, 0) + 1
        self._seq[iid] = n
        return n

    def _status(self, st: _BookState, ts: int, status: FeedHandlerStatus, detail: str) -> None:
        self._out(
            FeedStatus(
                ex=st.ex, iid=st.iid, status=status, detail=detail, ts=ts, seq=self._next(st.iid)
            )
        )

    def _lookup(self, exchange: Exchange, symbol: str, source: str, line: int) -> _BookState | None:
        """The book of a (venue, symbol) not seen before (``on_event`` reads ``_sym_cache``
        first), kept in the cache; None, reported once, for a symbol not in the instruments."""
        st = self._by_key.get((exchange.value, symbol.upper()))
        self._sym_cache[(exchange, symbol)] = st  # members hash in C (MltEnum)
        if st is None:
            self.stats.unknown_symbols.add(f"{exchange.name}:{symbol}")
            self.bad_data(
                f"unknown symbol {symbol!r} on {exchange.name} (not in the instruments list); "
                "its messages are skipped",
                source,
                line,
            )
        return st

    def _invalidate(self, st: _BookState, ts: int, reason: str) -> None:
        self._log.warning("feed: %s book invalid: %s; resyncing", st.name, reason)
        st.state = WAITING
        st.l2.clear()
        if st.l3 is not None:
            st.l3.clear()
        st.pending = None
        st.verify = None
        st.recent.clear()
        st.crossed_run = 0
        st.cross_told = False
        self._status(st, ts, FeedHandlerStatus.BookInvalid, f"{st.name}: {reason}")
        if self._on_snapshot_needed is not None:
            self._on_snapshot_needed(st.inst)

    def _disconnect(self, ts: int, exchange: Exchange, reason: str) -> None:
        self._log.warning("feed: %s disconnected: %s", exchange.name, reason)
        for st in self._by_key.values():
            if st.ex == exchange.value:
                st.state = WAITING
                st.l2.clear()
                if st.l3 is not None:
                    st.l3.clear()
                st.pending = None
                st.verify = None
                self._drop_buffer(st)
                st.recent.clear()
                st.crossed_run = 0
                st.cross_told = False
        self._out(
            FeedStatus(
                ex=exchange.value,
                iid=0,
                status=FeedHandlerStatus.Disconnected,
                detail=f"{exchange.name}: {reason}",
                ts=ts,
            )
        )

    def _emit_image(self, st: _BookState, ts: int) -> None:
        self._status(st, ts, FeedHandlerStatus.SnapshotStart, f"{st.name}: snapshot")
        if st.l3 is not None:
            lch: list[LevelDelta] = [(ADD, side, lid, t, n) for lid, side, t, n in st.l3.orders()]
            self._out(LevelUpdate(ex=st.ex, iid=st.iid, ts=ts, seq=self._next(st.iid), ch=lch))
        else:
            book = st.l2
            ch: list[BookDelta] = [(ADD, BID, t, n) for t, n in book.depth(BID)]
            ch.extend((ADD, ASK, t, n) for t, n in book.depth(ASK))
            self._out(BookUpdate(ex=st.ex, iid=st.iid, ts=ts, seq=self._next(st.iid), ch=ch))
        self._status(st, ts, FeedHandlerStatus.SnapshotEnd, f"{st.name}: snapshot complete")
        if st.cross_told:
            # The image of a crossed order-level book: whoever rebuilt from it hears it again.
            self._status(st, ts, FeedHandlerStatus.BookCrossed, self._cross_detail(st, "its image"))

    def _go_live(self, st: _BookState, ts: int, how: str) -> None:
        st.crossed_run = 0
        st.cross_told = False
        crossed = st.l2.crossed
        if crossed and st.l3 is None:
            self.stats.crossed += 1
            self._invalidate(st, ts, f"crossed book right after {how}")
            return
        st.state = LIVE
        st.why_waiting = ""
        st.last_ts = ts
        self.stats.syncs += 1
        self._log.info("feed: %s book synchronised from %s", st.name, how)
        if crossed:  # an order-level snapshot taken in an auction or a pre-open
            self._told_crossed(st, how)
        self._emit_image(st, ts)

    @staticmethod
    def _best_text(st: _BookState) -> str:
        book = st.l2
        step = st.grid.tick_size
        bid = "none" if book.bid == NO_BID else str(book.bid * step)
        ask = "none" if book.ask == NO_ASK else str(book.ask * step)
        return f"best bid {bid}, best ask {ask}"

    def _cross_detail(self, st: _BookState, after: str) -> str:
        return (
            f"{st.name}: order book crossed ({self._best_text(st)}) after {after}; kept (an "
            "auction or a pre-open): no continuous trading until it uncrosses"
        )

    def _told_crossed(self, st: _BookState, after: str) -> None:
        st.cross_told = True
        self.stats.crossed_kept += 1
        self._log.info("feed: %s order book crossed after %s; kept", st.name, after)

    # --- text -> ticks and lots ------------------------------------------------------------------
    def _off_grid(self, st: _BookState, why: str, source: str, line: int, sizes: bool) -> None:
        """Count and report a value off the instrument's grid (the first ones one by one, then
        every 1000th). A price off the tick grid loses a level or a trade: bad data. A size off
        the lot grid (venues aggregate book sizes finer than their order step now and then) is
        rounded down, which loses less than a lot: counted and logged, not bad data."""
        stats = self.stats
        if sizes:
            stats.off_grid_sizes += 1
            n = stats.off_grid_sizes
            if n <= _OFF_GRID_LOGGED or n % 1000 == 0:
                where = f"{source}:{line}: " if source else ""
                self._log.warning(
                    "feed: %s%s: %s; rounded down to whole lots (%d so far)",
                    where,
                    st.name,
                    why,
                    n,
                )
            return
        stats.off_grid_prices += 1
        n = stats.off_grid_prices
        if n <= _OFF_GRID_LOGGED or n % 1000 == 0:
            self.bad_data(f"{st.name}: {why}; left out ({n} so far)", source, line)

    def _lots_slow(self, st: _BookState, text: str, source: str, line: int) -> int:
        """The lots of a size text the grid has not cached (raises BadValue)."""
        n, exact = st.grid.lots_slow(text)
        if not exact:
            self._off_grid(
                st,
                f"size {text} is not a multiple of the lot {st.grid.lot_size}",
                source,
                line,
                True,
            )
        return n

    def _load(self, st: _BookState, book: TickBook, s: DepthSnapshot) -> None:
        """Fill ``book`` (cleared first) with a snapshot's levels (raises BadValue; a level off
        the tick grid is left out and reported)."""
        book.clear()
        grid = st.grid
        for setter, levels in ((book.set_bid, s.bids), (book.set_ask, s.asks)):
            for p, q in levels:
                try:
                    t = grid.tick_of(p)
                except OffGrid as exc:
                    self._off_grid(st, str(exc), "snapshot", s.last_id, False)
                    continue
                n = grid.lots.get(q)
                if n is None:
                    n = self._lots_slow(st, q, "snapshot", s.last_id)
                setter(t, n)

    def _apply_levels(
        self,
        st: _BookState,
        book: TickBook,
        diff: DepthDiff,
        out: list[BookDelta] | None,
        source: str = "",
        line: int = 0,
    ) -> str | None:
        """Apply a diff to ``book``; return an error text on bad data (the book is then partly
        updated). ``out`` gets the changes as ``(action, side, tick, lots)``.

        This runs once per level of every depth message: a level whose texts were seen before
        costs two dict lookups and the book's set, in C when the core is compiled
        (:func:`~mlthon.feeds.levels.apply_pairs`); the first level with a new text comes back
        here to be converted, checked and reported, and the loop goes on after it. A side given
        as the raw bytes of the venue's JSON is parsed straight to ticks and lots
        (:func:`~mlthon.feeds.levels.apply_raw`) up to its first level that needs the text path.
        """
        grid = st.grid
        ticks = grid.ticks
        lots = grid.lots
        try:
            for side, given, setter in (
                (BID, diff.bids, book.set_bid),
                (ASK, diff.asks, book.set_ask),
            ):
                if isinstance(given, bytes):  # the venue's JSON (feeds/levels.py)
                    i = apply_raw(book, given, side, *grid.raw_args, out)
                    if i < 0:
                        continue
                    pairs = text_levels(given)
                    i = apply_pairs(book, ticks, lots, side, pairs, i, out)
                else:
                    pairs = given if type(given) is list else list(given)
                    i = apply_pairs(book, ticks, lots, side, pairs, 0, out)
                end = len(pairs)
                while i < end:
                    p, q = pairs[i]
                    i += 1
                    t = ticks.get(p)
                    if t is None:
                        try:
                            t = grid.ticks_slow(p)
                        except OffGrid as exc:
                            self._off_grid(st, str(exc), source, line, False)
                            i = apply_pairs(book, ticks, lots, side, pairs, i, out)
                            continue
                    n = lots.get(q)
                    if n is None:
                        n = self._lots_slow(st, q, source, line)
                    prev = setter(t, n)
                    if n:
                        act = -1 if prev == n else MODIFY if prev else ADD
                    else:
                        act = DELETE if prev else -1
                    if act >= 0 and out is not None:
                        out.append((act, side, t, n))
                    i = apply_pairs(book, ticks, lots, side, pairs, i, out)
        except BadValue as exc:
            return f"unusable level: {exc}"
        return None

    def _trades(
        self, st: _BookState, trades: list[StrTrade], source: str, line: int
    ) -> list[TradeTuple]:
        """A venue message's trades in ticks and lots; a trade with a value that is not sane or
        a price off the grid is left out and reported."""
        grid = st.grid
        ticks = grid.ticks
        out: list[TradeTuple] = []
        for taker, p, q, exec_ts, tid in trades:
            try:
                t = ticks.get(p)
                if t is None:
                    t = grid.ticks_slow(p)
                n = grid.lots.get(q)
                if n is None:
                    n = self._lots_slow(st, q, source, line)
            except OffGrid as exc:
                self._off_grid(st, f"trade {tid}: {exc}", source, line, False)
                continue
            except BadValue as exc:
                self.bad_data(f"{st.name}: trade {tid} left out: {exc}", source, line)
                continue
            out.append((taker, t, n, exec_ts, tid))
        return out

    # --- price-level books -----------------------------------------------------------------------
    def _on_diff(self, st: _BookState, ts: int, d: DepthDiff, source: str, line: int) -> None:
        if st.state != LIVE:
            if d.rule == SEQ_NONE:
                self.stats.dropped_unsynced += 1
                return
            buf = st.buffer
            buf.append(d)
            if len(buf) > self.max_buffer:
                buf.popleft()
                self.stats.dropped_unsynced += 1
            if st.pending is not None:
                self._try_sync(st, ts)
            return
        rule = d.rule
        if (rule == SEQ_PREV and d.prev_id != st.last_id) or (
            rule == SEQ_NEXT and d.first_id != st.last_id + 1
        ):
            self.stats.gaps += 1
            what = "pu" if rule == SEQ_PREV else "first id"
            got = d.prev_id if rule == SEQ_PREV else d.first_id
            self._invalidate(
                st, ts, f"sequence gap: expected {what} {st.last_id}, got {got} ({source}:{line})"
            )
            st.buffer.append(d)
            return
        ch: list[BookDelta] = []
        book = st.l2
        err = self._apply_levels(st, book, d, ch, source, line)
        if err is not None:
            self.bad_data(f"{st.name}: {err}", source, line)
            self._invalidate(st, ts, f"bad data: {err} ({source}:{line})")
            return
        st.last_id = d.last_id
        st.last_ts = ts
        if book.bid >= book.ask:
            self.stats.crossed += 1
            self._invalidate(
                st,
                ts,
                f"crossed book (bid {book.bid * st.grid.tick_size} >= ask "
                f"{book.ask * st.grid.tick_size}) after update {d.last_id} ({source}:{line})",
            )
            return
        if rule != SEQ_NONE:
            st.recent.append(d)
            if st.verify is not None and self._check_verify(st, ts, d):
                return  # the book was replaced by the checked snapshot (d included)
        if ch:
            self._out(
                BookUpdate(ex=st.ex, iid=st.iid, ts=ts, ets=d.ets, seq=self._next(st.iid), ch=ch)
            )

    def _on_snapshot(self, st: _BookState, ts: int, s: DepthSnapshot) -> None:
        try:
            if s.in_stream:
                self._in_stream_snapshot(st, ts, s)
            elif st.state == LIVE:
                st.verify = s
                self._start_verify(st, ts)
            else:
                st.pending = s
                self._try_sync(st, ts)
        except BadValue as exc:
            self.bad_data(f"{st.name}: bad snapshot: {exc}")
            if st.state == LIVE:
                self._invalidate(st, ts, f"bad snapshot: {exc}")
            else:
                st.l2.clear()
                st.pending = None

    def _drop_buffer(self, st: _BookState) -> None:
        """Drop the diffs buffered for a snapshot that will not use them (counted)."""
        self.stats.dropped_unsynced += len(st.buffer)
        st.buffer.clear()

    def _in_stream_snapshot(self, st: _BookState, ts: int, s: DepthSnapshot) -> None:
        self._drop_buffer(st)
        st.pending = None
        if st.state != LIVE:
            self._load(st, st.l2, s)
            st.last_id = s.last_id
            self._go_live(st, ts, "in-stream snapshot")
            return
        # Live book: the snapshot replaces it; publish only the difference (levels that went,
        # best first, then the snapshot's levels in its order).
        fresh = TickBook()
        self._load(st, fresh, s)
        ch: list[BookDelta] = []
        book = st.l2
        for side in (BID, ASK):
            for t, _n in book.depth(side):
                if not fresh.lots(side, t):
                    book.set(side, t, 0)
                    ch.append((DELETE, side, t, 0))
        grid = st.grid
        for side, levels in ((BID, s.bids), (ASK, s.asks)):
            for p, _q in levels:
                tick = grid.ticks.get(p)
                if tick is None:
                    continue  # off the grid: reported by _load
                n = fresh.lots(side, tick)
                prev = book.set(side, tick, n)
                if n and prev != n:
                    ch.append((MODIFY if prev else ADD, side, tick, n))
                elif not n and prev:
                    ch.append((DELETE, side, tick, 0))
        st.last_id = s.last_id
        st.last_ts = ts
        if book.crossed:
            self.stats.crossed += 1
            self._invalidate(st, ts, "crossed book in snapshot")
            return
        if ch:
            self._out(
                BookUpdate(ex=st.ex, iid=st.iid, ts=ts, ets=s.ets, seq=self._next(st.iid), ch=ch)
            )

    @staticmethod
    def _bridge_point(s: DepthSnapshot) -> int:
        return s.last_id if s.rule == SEQ_PREV else s.last_id + 1

    @staticmethod
    def _follows(d: DepthDiff, last_id: int) -> bool:
        if d.rule == SEQ_PREV:
            return d.prev_id == last_id
        if d.rule == SEQ_NEXT:
            return d.first_id == last_id + 1
        return True

    def _try_sync(self, st: _BookState, ts: int) -> None:
        s = st.pending
        if s is None:
            return
        lp = self._bridge_point(s)
        buf = st.buffer
        while buf and buf[0].last_id < lp:
            buf.popleft()  # older than the snapshot: it holds them already
            self.stats.dropped_unsynced += 1
        if not buf:
            return  # the diff holding the snapshot's id has not arrived yet
        # A diff whose ``pu`` is the snapshot's id follows it directly; otherwise U <= L <= u.
        if buf[0].first_id > lp and not (s.rule == SEQ_PREV and buf[0].prev_id == s.last_id):
            st.pending = None
            self.stats.gaps += 1
            st.why_waiting = (
                f"snapshot {s.last_id} is older than the first depth update after it "
                f"[{buf[0].first_id}, {buf[0].last_id}] (previous id {buf[0].prev_id}): the "
                "updates between them are missing, so the data do not join"
            )
            self._log.warning(
                "feed: %s snapshot %d is older than the first buffered diff [%d, %d]; "
                "waiting for a newer snapshot",
                st.name,
                s.last_id,
                buf[0].first_id,
                buf[0].last_id,
            )
            if self._on_snapshot_needed is not None:
                self._on_snapshot_needed(st.inst)
            return
        self._load(st, st.l2, s)
        last = -1
        first = True
        while buf:
            d = buf[0]
            if not first and not self._follows(d, last):
                self.stats.gaps += 1
                self._log.warning(
                    "feed: %s gap in buffered diffs after %d while syncing; need a new snapshot",
                    st.name,
                    last,
                )
                st.l2.clear()
                st.pending = None
                if self._on_snapshot_needed is not None:
                    self._on_snapshot_needed(st.inst)
                return
            buf.popleft()
            err = self._apply_levels(st, st.l2, d, None, "buffered diff", d.last_id)
            if err is not None:
                self.bad_data(f"{st.name}: {err} (buffered diff {d.last_id})")
                st.l2.clear()
                st.pending = None
                return
            last = d.last_id
            st.recent.append(d)
            first = False
        st.last_id = last
        st.pending = None
        self._go_live(st, ts, f"snapshot {s.last_id} bridged to update {last}")

    def _start_verify(self, st: _BookState, ts: int) -> None:
        s = st.verify
        assert s is not None
        lp = self._bridge_point(s)
        recent = list(st.recent)
        idx = next((i for i, d in enumerate(recent) if d.last_id >= lp), None)
        if idx is None:
            return  # the snapshot is ahead of the book: check when its diff arrives
        self._compare_shadow(st, ts, s, recent[idx:])

    def _check_verify(self, st: _BookState, ts: int, d: DepthDiff) -> bool:
        """Compare a pending check snapshot once ``d`` reaches it; True if the book was
        replaced (or invalidated) as a result."""
        s = st.verify
        assert s is not None
        if d.last_id >= self._bridge_point(s):
            return not self._compare_shadow(st, ts, s, [d])
        return False

    def _compare_shadow(
        self, st: _BookState, ts: int, s: DepthSnapshot, diffs: list[DepthDiff]
    ) -> bool:
        """Bring ``s`` forward with ``diffs`` and compare; False if the book was replaced."""
        st.verify = None
        lp = self._bridge_point(s)
        if diffs[0].first_id > lp and not (s.rule == SEQ_PREV and diffs[0].prev_id == s.last_id):
            self.stats.unverifiable_snapshots += 1
            self._log.info("feed: %s snapshot %d too old to check", st.name, s.last_id)
            return True
        shadow = TickBook()
        self._load(st, shadow, s)
        for d in diffs:
            if self._apply_levels(st, shadow, d, None) is not None:
                return True
        book = st.l2
        if (book.depth(BID, VERIFY_LEVELS), book.depth(ASK, VERIFY_LEVELS)) == (
            shadow.depth(BID, VERIFY_LEVELS),
            shadow.depth(ASK, VERIFY_LEVELS),
        ):
            self.stats.verified_snapshots += 1
            self._log.info("feed: %s snapshot %d matches the book", st.name, s.last_id)
            return True
        self.stats.mismatches += 1
        self._invalidate(
            st, ts, f"book differs from snapshot {s.last_id} in the top {VERIFY_LEVELS} levels"
        )
        # Rebuild in place: the book object is never replaced (see :meth:`price_book`).
        self._load(st, book, s)
        for d in diffs:
            self._apply_levels(st, book, d, None)
        st.last_id = diffs[-1].last_id
        st.recent.extend(diffs)
        self._go_live(st, ts, f"snapshot {s.last_id}")
        return False

    # --- order-level books -----------------------------------------------------------------------
    def _on_order_snapshot(self, st: _BookState, ts: int, s: OrderSnapshot) -> None:
        book = OrderLevelBook(st.l2)
        grid = st.grid
        for oid, side, p, q in s.orders:
            try:
                t = grid.tick_of(p)
                n = grid.lots.get(q)
                if n is None:
                    n = self._lots_slow(st, q, "order snapshot", 0)
                book.add(side, oid, t, n)
            except OffGrid as exc:
                self._off_grid(st, f"snapshot order {oid}: {exc}", "order snapshot", 0, False)
            except ValueError as exc:  # BadValue, a bad side, a size that is not positive
                self.bad_data(f"{st.name}: snapshot order {oid}: {exc}")
        st.l3 = book
        st.pending = None
        self._drop_buffer(st)
        if st.state == LIVE:
            st.state = WAITING
        self._go_live(st, ts, "order-level snapshot")

    def _on_order_update(
        self, st: _BookState, ts: int, u: OrderUpdate, source: str, line: int
    ) -> None:
        book = st.l3
        if st.state != LIVE or book is None:
            self.stats.dropped_unsynced += 1
            return
        st.last_ts = ts
        ch = self._order_changes(st, ts, book, u, source, line)
        if ch is None:
            return  # bad data: the book was invalidated
        if ch:
            self._out(
                LevelUpdate(ex=st.ex, iid=st.iid, ts=ts, ets=u.ets, seq=self._next(st.iid), ch=ch)
            )
        if u.last is not False:  # inside a venue event the book is not consistent yet
            if book.crossed or st.cross_told:
                self._judge_cross(st, ts, book, u, source, line)
            else:
                st.crossed_run = 0

    def _order_changes(
        self, st: _BookState, ts: int, book: OrderLevelBook, u: OrderUpdate, source: str, line: int
    ) -> list[LevelDelta] | None:
        """Apply one order update to ``book``: the level changes it made (empty: none), or None
        if its data were bad (the book is then invalidated)."""
        cur = book.get(u.order_id)
        ch: list[LevelDelta] = []
        if u.remove:
            if cur is None:
                self.stats.absent_deletes += 1
                return ch
            side, t, _n = cur
            book.delete(u.order_id)
            ch.append((DELETE, side, u.order_id, t, 0))
            return ch
        grid = st.grid
        try:
            t = grid.tick_of(u.price)
            n = grid.lots.get(u.size)
            if n is None:
                n = self._lots_slow(st, u.size, source, line)
            if n <= 0:
                raise BadValue(f"size {u.size} is not positive")
        except OffGrid as exc:
            self._off_grid(st, f"order {u.order_id}: {exc}", source, line, False)
            return ch
        except BadValue as exc:
            self.bad_data(f"{st.name}: {exc}", source, line)
            self._invalidate(st, ts, f"bad data ({source}:{line})")
            return None
        if cur is None:
            book.add(u.side, u.order_id, t, n)
            ch.append((ADD, u.side, u.order_id, t, n))
        elif cur[0] != u.side:
            book.delete(u.order_id)
            book.add(u.side, u.order_id, t, n)
            ch.append((DELETE, cur[0], u.order_id, cur[1], 0))
            ch.append((ADD, u.side, u.order_id, t, n))
        elif cur[1] != t or cur[2] != n:
            book.modify(u.order_id, n, t)
            ch.append((MODIFY, u.side, u.order_id, t, n))
        return ch

    def _judge_cross(
        self, st: _BookState, ts: int, book: OrderLevelBook, u: OrderUpdate, source: str, line: int
    ) -> None:
        """Report an order-level book that is crossed after ``u`` (once) or no longer is.

        A crossed order-level book is the venue's (an auction, a pre-open): it is kept. Venues
        send a match as several messages (the taker's rest may arrive before the makers'
        removals): where they mark no events (``u.last`` None), a crossing shorter than the
        grace is not told.
        """
        if book.crossed:
            st.crossed_run += 1
            if not st.cross_told and (u.last or st.crossed_run > self.l3_cross_grace):
                after = f"order {u.order_id} ({source}:{line})"
                self._told_crossed(st, after)
                self._status(st, ts, FeedHandlerStatus.BookCrossed, self._cross_detail(st, after))
            return
        st.crossed_run = 0
        if st.cross_told:
            st.cross_told = False
            self._log.info("feed: %s order book no longer crossed", st.name)
            self._status(
                st,
                ts,
                FeedHandlerStatus.Resumed,
                f"{st.name}: order book no longer crossed ({self._best_text(st)}) after order "
                f"{u.order_id} ({source}:{line}); continuous trading",
            )
