"""Tardis Machine *normalized* JSON (tardis-machine WebSocket/HTTP streams, tardis-node).

A file is either one message per line (NDJSON, as a tardis-machine stream is recorded) or a single
JSON document: one message object (possibly pretty-printed) or an array of them. Each message names
its Tardis ``exchange`` (mapped with :data:`mlthon.feeds.tardis.wire.EXCHANGES`) and ``symbol``;
``localTimestamp`` (ISO-8601) is the receive time, ``timestamp`` the exchange time.

* ``book_change``: absolute sizes, 0 deletes. A message with ``isSnapshot`` true that follows
  non-snapshot data of its symbol starts a new full book (the book is replaced); further snapshot
  messages right after it extend that book.
* ``book_snapshot`` (``book_snapshot_{depth}_{interval}ms``): the top ``depth`` levels, a full
  top-of-book image like the CSV ``book_snapshot_N`` rows.
* ``trade``: a public trade (``side`` is the taker side).
* ``derivative_ticker``: funding rate, next funding time (if given) and mark price.
* ``disconnect``: the venue connection dropped; every book of the venue must resync.
* ``trade_bar`` and other types are not used: reported once per type, then counted as ignored.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable, Iterator
from decimal import Decimal
from itertools import chain

import msgspec

from mlthon.basics.mlt_enum import Exchange, Side
from mlthon.feeds.events import (
    SEQ_NONE,
    DepthDiff,
    DepthSnapshot,
    Disconnect,
    Event,
    Funding,
    Ignored,
    SourceEvent,
    StrLevel,
    Trades,
)
from mlthon.feeds.tardis.machine_wire import (
    Level,
    array_decoder,
    book_change_decoder,
    book_snapshot_decoder,
    head_decoder,
    ticker_decoder,
    trade_decoder,
)
from mlthon.feeds.tardis.wire import EXCHANGES

Report = Callable[[str, str, int], None]

NS = 1_000_000_000
_TAKER = {"buy": Side.Buy.value, "sell": Side.Sell.value}
_ISO_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:Z|[+-]00:?00)?$"
)
_SECONDS_CACHE: dict[str, int] = {}
_DECODE_ERRORS = (msgspec.DecodeError, msgspec.ValidationError, ValueError, TypeError)


class UnsupportedMessage(ValueError):
    """A well-formed message that is not used (unknown type or venue); ``what`` names it."""

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


def iso_to_ns(text: str) -> int:
    """Exact ns since the epoch of an ISO-8601 UTC time such as ``2019-10-23T11:29:53.469Z``.

    Raises:
        ValueError: not such a time (only UTC, up to 9 fraction digits).
    """
    m = _ISO_RE.match(text)
    if m is None:
        raise ValueError(f"not an ISO-8601 UTC time: {text!r}")
    whole = text[:19]
    secs = _SECONDS_CACHE.get(whole)
    if secs is None:
        y, mo, d, h, mi, s = (int(g) for g in m.groups()[:6])
        secs = calendar.timegm((y, mo, d, h, mi, s, 0, 0, 0))
        if len(_SECONDS_CACHE) > 100_000:
            _SECONDS_CACHE.clear()
        _SECONDS_CACHE[whole] = secs
    frac = m.group(7)
    return secs * NS + (int(frac.ljust(9, "0")) if frac else 0)


def looks_like_machine(head: bytes) -> bool:
    """True if some JSON text looks like Tardis Machine normalized messages."""
    return b'"localTimestamp"' in head and b'"exchange"' in head and b'"type"' in head


def _s(d: Decimal) -> str:
    return format(d, "f")


def _levels(levels: list[Level], keep_zero: bool) -> list[StrLevel]:
    return [(_s(lv.price), _s(lv.amount)) for lv in levels if keep_zero or lv.amount]


class MachineDecoder:
    """Decodes normalized messages; remembers which books are in a run of snapshot messages."""

    def __init__(self) -> None:
        self._in_snapshot: dict[tuple[str, str], bool] = {}

    def decode(self, raw: bytes) -> tuple[int, Exchange, list[Event]]:
        """The receive time (ns), venue and events of one message.

        Raises:
            UnsupportedMessage: a message type or Tardis exchange mlthon does not use.
            msgspec.DecodeError, msgspec.ValidationError, ValueError: a malformed message.
        """
        head = head_decoder.decode(raw)
        ex = EXCHANGES.get(head.exchange)
        if ex is None:
            raise UnsupportedMessage(f"Tardis exchange {head.exchange!r}")
        ts = iso_to_ns(head.localTimestamp)
        kind = head.type
        ev: Event
        if kind == "book_change":
            bc = book_change_decoder.decode(raw)
            key = (head.exchange, bc.symbol)
            ets = iso_to_ns(bc.timestamp)
            if bc.isSnapshot and not self._in_snapshot.get(key, False):
                self._in_snapshot[key] = True
                bids, asks = _levels(bc.bids, False), _levels(bc.asks, False)
                ev = DepthSnapshot(bc.symbol, ets, -1, SEQ_NONE, True, bids, asks)
            else:
                self._in_snapshot[key] = bc.isSnapshot
                bids, asks = _levels(bc.bids, True), _levels(bc.asks, True)
                ev = DepthDiff(bc.symbol, ets, -1, -1, -1, SEQ_NONE, bids, asks)
        elif kind == "book_snapshot":
            bs = book_snapshot_decoder.decode(raw)
            bids, asks = _levels(bs.bids, False), _levels(bs.asks, False)
            ev = DepthSnapshot(bs.symbol, iso_to_ns(bs.timestamp), -1, SEQ_NONE, True, bids, asks)
        elif kind == "trade":
            t = trade_decoder.decode(raw)
            ets = iso_to_ns(t.timestamp)
            tid = "" if t.id is None else str(t.id)
            side = _TAKER.get(t.side, Side.Unset.value)
            ev = Trades(t.symbol, [(side, _s(t.price), _s(t.amount), ets, tid)])
        elif kind == "derivative_ticker":
            dt = ticker_decoder.decode(raw)
            if dt.fundingRate is None:
                return ts, ex, [Ignored("derivative_ticker without fundingRate")]
            next_ts = iso_to_ns(dt.fundingTimestamp) if dt.fundingTimestamp else 0
            mark = "" if dt.markPrice is None else _s(dt.markPrice)
            ev = Funding(dt.symbol, iso_to_ns(dt.timestamp), _s(dt.fundingRate), next_ts, mark)
        elif kind == "disconnect":
            for k in self._in_snapshot:
                if k[0] == head.exchange:
                    self._in_snapshot[k] = False
            ev = Disconnect(f"Tardis disconnect of {head.exchange}")
        else:
            raise UnsupportedMessage(f"Tardis message type {kind!r}")
        return ts, ex, [ev]


class _Reader:
    def __init__(self, source: str, report: Report) -> None:
        self.source = source
        self.report = report
        self.decoder = MachineDecoder()
        self.unsupported: set[str] = set()
        self.last_ts = -1

    def message(self, raw: bytes, line: int) -> Iterator[SourceEvent]:
        try:
            ts, ex, evs = self.decoder.decode(raw)
        except UnsupportedMessage as exc:
            if exc.what not in self.unsupported:
                self.unsupported.add(exc.what)
                self.report(f"unsupported {exc.what}; such messages are ignored", self.source, line)
            return
        except _DECODE_ERRORS as exc:
            self.report(f"unparsable Tardis Machine message: {exc}", self.source, line)
            return
        if ts < self.last_ts:
            self.report(
                f"receive time {ts} is before the previous message's {self.last_ts}",
                self.source,
                line,
            )
            return
        self.last_ts = ts
        for ev in evs:
            yield SourceEvent(ts, ex, ev, self.source, line)


def read_machine(lines: Iterator[bytes], source: str, report: Report) -> Iterator[SourceEvent]:
    """Events of a Tardis Machine file: NDJSON, or one (pretty-printed) JSON document.

    Bad messages go to ``report(why, source, line)`` and are skipped.
    """
    reader = _Reader(source, report)
    numbered = enumerate(lines, 1)
    for line, raw in numbered:
        s = raw.strip()
        if not s:
            continue
        if s in (b"{", b"["):
            # A multi-line JSON document: read it whole.
            rest = b"\n".join(chain([raw], (r for _, r in numbered)))
            yield from _document(reader, rest)
            return
        yield from reader.message(s, line)


def read_machine_document(data: bytes, source: str, report: Report) -> Iterator[SourceEvent]:
    """Events of one JSON document holding a message or an array of messages (message ``i``
    is reported as line ``i``)."""
    yield from _document(_Reader(source, report), data)


def _document(reader: _Reader, data: bytes) -> Iterator[SourceEvent]:
    s = data.strip()
    if not s.startswith(b"["):
        yield from reader.message(s, 1)
        return
    try:
        items = array_decoder.decode(s)
    except _DECODE_ERRORS as exc:
        reader.report(f"not a JSON array of Tardis Machine messages: {exc}", reader.source, 1)
        return
    for i, item in enumerate(items, 1):
        yield from reader.message(bytes(item), i)
