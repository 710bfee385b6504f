"""Databento MBO parsers: CSV or DBN records -> order-level events, one venue message per event.

Rules (Databento MBO schema; ``FORMATS.md`` 4.2):

* Records up to and including the one flagged ``F_LAST`` (128) form one event; they become one
  venue message (their events share the ``ts_recv`` of that last record, the receive time). The
  book is consistent only after ``F_LAST``.
* ``R`` clears the book. The records that follow it up to ``F_LAST`` (the snapshot, flagged
  ``F_SNAPSHOT``) rebuild it: the whole event becomes one :class:`OrderSnapshot`.
* ``A`` adds ``order_id`` at ``price``/``size``; ``M`` moves it to a new price / size (absolute);
  ``C`` removes ``size`` from it (a partial cancel leaves the rest resting).
* ``T`` is an aggressor trade (``side`` is the aggressor's, ``N`` unknown); it does not change the
  book. ``F`` is the fill of a resting order and does not change the book either (the change comes
  as a ``C``/``M`` record): it is not used.
* ``flags & 8``: ``ts_recv`` is not a real receive time (the snapshot carries the file's start).
* Each :class:`OrderUpdate` says whether it is its event's last (``last``): the feed engine judges
  a crossing only there (a book crossed after ``F_LAST`` is an auction or a pre-open).

Only publisher 1 (``GLBX.MDP3``, CME Globex) is mapped, to :attr:`Exchange.Cme`.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal, InvalidOperation
from pathlib import Path

from mlthon.basics.mlt_enum import Exchange, Side
from mlthon.feeds.databento.dbn import ROW_COLUMNS, Report, mbo_rows, open_decompressed
from mlthon.feeds.databento.wire import (
    ADD,
    CANCEL,
    CLEAR,
    F_BAD_TS_RECV,
    F_LAST,
    F_SNAPSHOT,
    MBO_OPTIONAL,
    MBO_REQUIRED,
    MODIFY,
    TRADE,
)
from mlthon.feeds.events import (
    Event,
    OrderSnapshot,
    OrderUpdate,
    SourceEvent,
    StrTrade,
    Trades,
)
from mlthon.feeds.timefmt import iso_to_ns

EXCHANGE = Exchange.Cme
PUBLISHERS = {"1": Exchange.Cme}  # publisher_id -> venue (1: GLBX.MDP3)
_BOOK_SIDE = {"B": Side.Buy.value, "A": Side.Sell.value}
_TAKER = {"B": Side.Buy.value, "A": Side.Sell.value, "N": Side.Unset.value}

Order = tuple[int, str, int]  # side, price, size


class MboLayout:
    """Where each needed column is in one file's records (from its header)."""

    __slots__ = (
        "action",
        "flags",
        "instrument_id",
        "ncols",
        "order_id",
        "price",
        "publisher_id",
        "side",
        "size",
        "symbol",
        "ts_event",
        "ts_recv",
    )

    def __init__(self, names: list[str]) -> None:
        pos = {n: i for i, n in enumerate(names)}
        self.ncols = len(names)
        self.ts_recv = pos["ts_recv"]
        self.ts_event = pos["ts_event"]
        self.publisher_id = pos["publisher_id"]
        self.instrument_id = pos["instrument_id"]
        self.action = pos["action"]
        self.side = pos["side"]
        self.price = pos["price"]
        self.size = pos["size"]
        self.order_id = pos["order_id"]
        self.flags = pos["flags"]
        self.symbol: int | None = pos.get(MBO_OPTIONAL[0])

    @classmethod
    def from_header(cls, line: str) -> MboLayout | None:
        """The layout of a Databento MBO CSV header, or None if ``line`` is not one."""
        names = [n.strip() for n in line.strip().split(",")]
        if "rtype" not in names:
            return None
        if any(n not in names for n in MBO_REQUIRED):
            return None
        return cls(names)


def is_mbo_header(line: str) -> bool:
    """True if ``line`` is the header of a Databento MBO CSV (any column order)."""
    return MboLayout.from_header(line) is not None


def _ts(text: str) -> int:
    """Integer ns, or an ISO 8601 UTC time (``pretty_ts``)."""
    return int(text) if text.isdigit() else iso_to_ns(text)


def _price(text: str) -> str:
    """The exact decimal text of a CSV price, trailing zeros removed.

    Raises:
        ValueError: not a positive decimal.
    """
    try:
        d = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"bad price {text!r}") from None
    if not d.is_finite() or d <= 0:
        raise ValueError(f"bad price {text!r}")
    return text.rstrip("0").rstrip(".") if "." in text else text


class _Pending:
    """The records of one instrument's event read so far."""

    __slots__ = ("events", "snapshot", "symbol", "trades")

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        self.events: list[tuple[int, Event]] = []
        self.trades: list[StrTrade] | None = None
        self.snapshot: OrderSnapshot | None = None


class MboDecoder:
    """Turns MBO records into events; keeps each instrument's orders (a cancel gives the size
    removed, the events carry the size left) and each instrument's unfinished event."""

    exchange = EXCHANGE

    def __init__(self, layout: MboLayout) -> None:
        self.layout = layout
        self.orders: dict[int, dict[int, Order]] = {}
        self._pending: dict[int, _Pending] = {}

    def record(self, cols: list[str], line: int) -> tuple[int, int, list[tuple[int, Event]]] | None:
        """Take one CSV record; at the end of an event return ``(ts_recv, flags, events)`` with
        each event's line, else None.

        Raises:
            ValueError: a malformed record (it is not applied).
        """
        at = self.layout
        if len(cols) != at.ncols:
            raise ValueError(f"{len(cols)} columns, expected {at.ncols}")
        ts_recv = _ts(cols[at.ts_recv])
        ets = _ts(cols[at.ts_event])
        iid = int(cols[at.instrument_id])
        flags = int(cols[at.flags])
        action = cols[at.action]
        symbol = (cols[at.symbol] if at.symbol is not None else "") or str(iid)
        pend = self._pending.get(iid)
        if pend is None:
            pend = self._pending[iid] = _Pending(symbol)
        book = self.orders.get(iid)
        if book is None:
            book = self.orders[iid] = {}
        if action == CLEAR or (flags & F_SNAPSHOT and pend.snapshot is None):
            # A new book: what this event held so far about orders is superseded.
            book.clear()
            pend.snapshot = OrderSnapshot(symbol, ets, [])
            pend.events = [(ln, ev) for ln, ev in pend.events if type(ev) is Trades]
            pend.events.append((line, pend.snapshot))
        if action in (ADD, MODIFY, CANCEL):
            self._order(pend, book, action, cols, ets, line)
        elif action == TRADE:
            tr = (
                _TAKER.get(cols[at.side], 0),
                _price(cols[at.price]),
                str(int(cols[at.size])),
                ets,
                "",
            )
            if pend.trades is None:
                pend.trades = [tr]
                pend.events.append((line, Trades(symbol, pend.trades)))
            else:
                pend.trades.append(tr)
        # FILL and NONE records change nothing.
        if not flags & F_LAST:
            return None
        return ts_recv, flags, self._finish(iid)

    def _order(
        self,
        pend: _Pending,
        book: dict[int, Order],
        action: str,
        cols: list[str],
        ets: int,
        line: int,
    ) -> None:
        at = self.layout
        oid = int(cols[at.order_id])
        size = int(cols[at.size])
        if size < 0:
            raise ValueError(f"negative size {size}")
        if action == CANCEL:
            cur = book.get(oid)
            if cur is None:
                side = _BOOK_SIDE.get(cols[at.side], Side.Buy.value)
                upd = OrderUpdate(pend.symbol, ets, oid, side, "0", "0", True)
            else:
                side, price, left = cur[0], cur[1], cur[2] - size
                if left > 0:
                    book[oid] = (side, price, left)
                    upd = OrderUpdate(pend.symbol, ets, oid, side, price, str(left), False)
                else:
                    del book[oid]
                    upd = OrderUpdate(pend.symbol, ets, oid, side, price, "0", True)
        else:
            side_i = _BOOK_SIDE.get(cols[at.side])
            if side_i is None:
                raise ValueError(f"order side {cols[at.side]!r}")
            price = _price(cols[at.price])
            if size == 0:
                book.pop(oid, None)
                upd = OrderUpdate(pend.symbol, ets, oid, side_i, price, "0", True)
            else:
                book[oid] = (side_i, price, size)
                upd = OrderUpdate(pend.symbol, ets, oid, side_i, price, str(size), False)
        if pend.snapshot is None:
            pend.events.append((line, upd))

    def _finish(self, iid: int) -> list[tuple[int, Event]]:
        pend = self._pending.pop(iid)
        if pend.snapshot is not None:
            pend.snapshot.orders = [
                (oid, side, price, str(size))
                for oid, (side, price, size) in self.orders.get(iid, {}).items()
            ]
        # The book is consistent only after the event's last change (a crossing in between is
        # the venue sending one match as several records, not a crossed market).
        last: OrderUpdate | None = None
        for _ln, ev in pend.events:
            if type(ev) is OrderUpdate:
                ev.last = False
                last = ev
        if last is not None:
            last.last = True
        return pend.events

    def unfinished(self) -> list[tuple[int, Event]]:
        """Close every event still open (the data ended before its ``F_LAST``)."""
        out: list[tuple[int, Event]] = []
        for iid in list(self._pending):
            out.extend(self._finish(iid))
        return out


def read_mbo_csv(lines: Iterator[bytes], source: str, report: Report) -> Iterator[SourceEvent]:
    """Events of a Databento MBO CSV (header line first).

    Unparsable records go to ``report(why, source, line)`` and are skipped; the rest of their
    event is kept.
    """
    header = next(lines, b"").decode("utf-8", "replace")
    layout = MboLayout.from_header(header)
    if layout is None:
        report("not a Databento MBO CSV header (needs " + ", ".join(MBO_REQUIRED) + ")", source, 1)
        return
    rows = (
        (line, raw.decode("utf-8", "replace").split(","))
        for line, raw in enumerate(lines, 2)
        if raw.strip()
    )
    yield from read_mbo_records(layout, rows, source, report)


def read_mbo_dbn(path: str | Path, report: Report) -> Iterator[SourceEvent]:
    """Events of a Databento MBO file in DBN (zstd-compressed or not): the same events as its
    CSV transcode gives, each with its record number for a line number.

    Raises:
        BadMarketData: the file cannot be read as DBN MBO (:func:`~.dbn.mbo_rows`).
    """
    source = str(path)
    with open_decompressed(path) as stream:
        yield from read_mbo_records(
            MboLayout(ROW_COLUMNS), mbo_rows(stream, source, report), source, report
        )


def read_mbo_records(
    layout: MboLayout, rows: Iterator[tuple[int, list[str]]], source: str, report: Report
) -> Iterator[SourceEvent]:
    """Events of MBO records given as ``(line, columns)`` in ``layout``: one venue message per
    event (up to ``F_LAST``), at its last record's receive time, never earlier than the
    previous event's. A record of an unmapped publisher or that does not parse is reported and
    skipped; the rest of its event is kept."""
    dec = MboDecoder(layout)
    pub = layout.publisher_id
    last_ts = 0
    bad_publishers: set[str] = set()
    ts = 0
    for line, cols in rows:
        if len(cols) > pub and cols[pub] not in PUBLISHERS:
            if cols[pub] not in bad_publishers:
                bad_publishers.add(cols[pub])
                report(f"Databento publisher {cols[pub]} is not mapped to a venue", source, line)
            continue
        try:
            done = dec.record(cols, line)
        except ValueError as exc:
            report(f"bad Databento MBO record: {exc}", source, line)
            continue
        if done is None:
            continue
        ts, flags, events = done
        if ts < last_ts:
            if not flags & F_BAD_TS_RECV:
                report(f"receive time {ts} is before the previous event's {last_ts}", source, line)
            ts = last_ts
        last_ts = ts
        for ln, ev in events:
            yield SourceEvent(ts, EXCHANGE, ev, source, ln)
    rest = dec.unfinished()
    if rest:
        report("the data ends inside an event (no F_LAST record)", source, rest[-1][0])
        for ln, ev in rest:
            yield SourceEvent(last_ts, EXCHANGE, ev, source, ln)
