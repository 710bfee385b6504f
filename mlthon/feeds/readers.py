"""Recorded-data readers: recognise a file's format from its content and yield parsed events.

Formats (see ``docs/market-data.md``):

* ``capture``: raw venue capture, ``<recv_ns> <json>`` per line (hftbacktest, ``mlthon record``);
  the venue (Binance USD-M / COIN-M / spot, Bybit, Hyperliquid, Bitfinex, BitMEX, Deribit,
  Coinbase) is read from the JSON.
* ``ndjson``: one venue message per line, no receive time (the Bybit ``ob500`` dumps); the
  message's own ``ts`` is used.
* ``json_array``: one JSON array of Bitfinex v2 frames. It has **no timestamps**: frame ``i`` gets
  the synthetic time ``SYNTHETIC_BASE_NS + i`` ms.
* ``cryptofeed``: cryptofeed raw-data logs (``<url> -> <s>: <body>`` REST, ``<s>: <json>`` WS).
* ``tardis``: Tardis.dev CSV of any supported data type.
* ``binance_bulk_depth``: Binance's bulk-download futures depth CSV (``snap`` / ``set`` rows).
* ``tardis_machine``: Tardis Machine normalized JSON (``book_change``, ``book_snapshot``,
  ``trade``, ``derivative_ticker``, ``disconnect``), one message per line or one JSON document
  (a JSON array of them is recognised in the ``json_array`` branch).
* ``databento_mbo``: Databento MBO (order-level) CSV, CME Globex.
* ``databento_dbn``: the same in Databento's binary format, DBN (the ``databento`` extra).

Each file may be plain, gzip, zstd (the ``databento`` extra) or zip (first member) compressed,
whatever its name.
"""

from __future__ import annotations

import gzip
import logging
import re
import zipfile
from collections.abc import Callable, Iterator
from decimal import Decimal, InvalidOperation
from itertools import chain, islice
from pathlib import Path
from typing import Protocol
from urllib.parse import parse_qs, urlparse

import msgspec

from mlthon.basics.errors import BadMarketData
from mlthon.basics.mlt_enum import Exchange
from mlthon.feeds.binance_usdm.parse import (
    BULK_DEPTH_HEADER,
    BinanceDecoder,
    detect_market,
    market_from_url,
    read_bulk_depth_rows,
)
from mlthon.feeds.bitfinex.parse import BitfinexDecoder
from mlthon.feeds.bitfinex.wire import frame_decoder
from mlthon.feeds.bitmex import parse as bitmex
from mlthon.feeds.bybit_v5.parse import BybitDecoder
from mlthon.feeds.coinbase import parse as coinbase
from mlthon.feeds.databento.dbn import ZSTD_MAGIC, Readable, is_dbn, open_decompressed
from mlthon.feeds.databento.parse import is_mbo_header, read_mbo_csv, read_mbo_dbn
from mlthon.feeds.deribit import parse as deribit
from mlthon.feeds.events import Disconnect, Event, PartialDecode, SourceEvent
from mlthon.feeds.hyperliquid.parse import HyperliquidDecoder
from mlthon.feeds.tardis.machine import looks_like_machine, read_machine, read_machine_document
from mlthon.feeds.tardis.parse import kind_of_header, read_rows

log = logging.getLogger(__name__)

Report = Callable[[str, str, int], None]

NS = 1_000_000_000
MS = 1_000_000
SYNTHETIC_BASE_NS = 1_614_556_800 * NS  # 2021-03-01T00:00:00Z, for sources without timestamps
_PEEK = 2000

_CAPTURE_RE = re.compile(rb"^\d{1,20} [\[{]")
CF_REST_RE = re.compile(r"^(\S+) -> (\d+(?:\.\d+)?): (.*)$", re.DOTALL)
CF_CONNECT_RE = re.compile(r"^(\S+) <-> (\d+(?:\.\d+)?)\s*$")
CF_SENT_RE = re.compile(r"^(\S+) <- (\d+(?:\.\d+)?): ")
CF_RECV_RE = re.compile(r"^(\d+(?:\.\d+)?): (.*)$", re.DOTALL)

_DECODE_ERRORS = (msgspec.DecodeError, msgspec.ValidationError, ValueError, TypeError, KeyError)


class LineDecoder(Protocol):
    """A venue decoder: one received message in, events out."""

    @property
    def exchange(self) -> Exchange:
        """The venue of the events."""

    def decode(self, raw: bytes | str) -> list[Event]:
        """Events of one message; raises a msgspec or ValueError on malformed input."""


class _BinanceLines:
    def __init__(self, market: Exchange) -> None:
        self.inner = BinanceDecoder(market)
        self.exchange = market

    def decode(self, raw: bytes | str) -> list[Event]:
        return self.inner.decode(raw)


def open_lines(path: str | Path) -> Iterator[bytes]:
    """The lines of a plain, gzip, zstd or zip (first member) file, as bytes without line ends.

    Raises:
        BadMarketData: the file cannot be opened, is an empty zip, or is zstd and ``zstandard``
            is not installed.
    """
    p = Path(path)
    try:
        with p.open("rb") as f:
            magic = f.read(4)
        if magic[:2] == b"\x1f\x8b":
            with gzip.open(p, "rb") as g:
                yield from _split_lines(g)
        elif magic == ZSTD_MAGIC:
            with open_decompressed(p) as z:
                yield from _split_lines(z)
        elif magic == b"PK\x03\x04":
            with zipfile.ZipFile(p) as z:
                names = [n for n in z.namelist() if not n.endswith("/")]
                if not names:
                    raise BadMarketData("empty zip archive", source=str(p))
                with z.open(names[0]) as m:
                    yield from _split_lines(m)
        else:
            with p.open("rb") as f:
                for line in f:
                    yield line.rstrip(b"\r\n")
    except OSError as exc:
        raise BadMarketData(f"cannot read: {exc}", source=str(p)) from exc


_CHUNK = 1 << 20


def _split_lines(f: Readable) -> Iterator[bytes]:
    """The lines of a binary stream without line ends, read a megabyte at a time (much faster
    than ``readline`` on a gzip stream)."""
    rest = b""
    while True:
        chunk = f.read(_CHUNK)
        if not chunk:
            break
        lines = (rest + chunk).split(b"\n")
        rest = lines.pop()
        for line in lines:
            yield line[:-1] if line.endswith(b"\r") else line
    if rest:
        yield rest[:-1] if rest.endswith(b"\r") else rest


def detect_format(first_line: bytes) -> str | None:
    """The container format from a file's first non-empty line (None if unknown)."""
    s = first_line.lstrip()
    if _CAPTURE_RE.match(s):
        return "capture"
    if s.startswith(b"["):
        return "json_array"
    if s.rstrip() == b"{" or (s.startswith(b"{") and looks_like_machine(s)):
        return "tardis_machine"
    if s.startswith(b"{"):
        return "ndjson"
    text = s.decode("utf-8", "replace")
    if kind_of_header(text) is not None:
        return "tardis"
    if text.strip() == BULK_DEPTH_HEADER:
        return "binance_bulk_depth"
    if is_mbo_header(text):
        return "databento_mbo"
    if text.startswith("configuration: ") or any(
        r.match(text) for r in (CF_REST_RE, CF_CONNECT_RE, CF_SENT_RE, CF_RECV_RE)
    ):
        return "cryptofeed"
    return None


def choose_decoder(payloads: list[bytes]) -> LineDecoder | None:
    """The venue decoder for sample messages of one stream, or None if no venue is recognised."""
    for p in payloads:
        s = p.lstrip()
        if s.startswith(b"["):
            return BitfinexDecoder()
        head = s[:64]
        if b'"topic"' in s:
            return BybitDecoder()
        if b'"jsonrpc"' in head and b'"params"' in s:
            return deribit.DeribitDecoder()
        if b'"table"' in head:
            return bitmex.BitmexDecoder()
        if b'"product_id"' in s and b'"type"' in head:
            return coinbase.CoinbaseDecoder()
        if b'"channel"' in head:
            return HyperliquidDecoder()
        if b'"stream"' in head or b'"lastUpdateId"' in head or b'"e":' in head:
            market = detect_market(payloads)
            if market is None:
                log.warning("feed: Binance market not recognisable from the data; assuming USD-M")
                market = Exchange.BinanceUsdm
            return _BinanceLines(market)
    return None


def ts_from_seconds(text: str) -> int:
    """Exact ns of a decimal seconds string such as ``1626992741.06217``."""
    return int(Decimal(text) * NS)


def read_capture(lines: Iterator[bytes], source: str, report: Report) -> Iterator[SourceEvent]:
    """Events of a raw capture (``<recv_ns> <json>`` per line)."""
    numbered = enumerate(lines, 1)
    peek = list(islice(numbered, _PEEK))
    decoder = choose_decoder([raw[raw.find(b" ") + 1 :] for _, raw in peek])
    if decoder is None:
        report("no known venue in the first messages; file skipped", source, 1)
        return
    ex = decoder.exchange
    decode = decoder.decode
    last_ts = -1
    for line, raw in chain(peek, numbered):
        sp = raw.find(b" ")
        try:
            ts = int(raw[:sp])
        except ValueError:
            if raw.strip():
                report(f"no receive timestamp: {raw[:60]!r}", source, line)
            continue
        if ts < last_ts:
            report(f"receive time {ts} is before the previous line's {last_ts}", source, line)
            continue
        last_ts = ts
        try:
            evs = decode(raw[sp + 1 :])
        except PartialDecode as exc:
            report(f"partly unusable message: {exc}", source, line)
            evs = exc.events
        except _DECODE_ERRORS as exc:
            report(f"unparsable message: {exc}", source, line)
            continue
        for ev in evs:
            yield SourceEvent(ts, ex, ev, source, line)


def read_ndjson(lines: Iterator[bytes], source: str, report: Report) -> Iterator[SourceEvent]:
    """Events of one-message-per-line JSON without receive times (the message's ``ts`` is used)."""
    numbered = enumerate(lines, 1)
    peek = list(islice(numbered, _PEEK))
    decoder = choose_decoder([raw for _, raw in peek])
    if decoder is None:
        report("no known venue in the first messages; file skipped", source, 1)
        return
    ex = decoder.exchange
    last_ts = 0
    for line, raw in chain(peek, numbered):
        if not raw.strip():
            continue
        try:
            evs = decoder.decode(raw)
        except PartialDecode as exc:
            report(f"partly unusable message: {exc}", source, line)
            evs = exc.events
        except _DECODE_ERRORS as exc:
            report(f"unparsable message: {exc}", source, line)
            continue
        ts_ms = getattr(decoder, "last_ts_ms", 0)
        ts = ts_ms * MS if ts_ms else max((getattr(e, "ets", 0) for e in evs), default=0)
        if ts < last_ts:
            if ts:
                report(f"message time {ts} is before the previous one {last_ts}", source, line)
                continue
            ts = last_ts
        last_ts = ts
        for ev in evs:
            yield SourceEvent(ts, ex, ev, source, line)


def read_json_array(data: bytes, source: str, report: Report) -> Iterator[SourceEvent]:
    """Events of a JSON array of Bitfinex v2 frames, with synthetic times (1 ms per frame)."""
    try:
        frames = frame_decoder.decode(data)
    except msgspec.DecodeError as exc:
        report(f"not a JSON array: {exc}", source, 1)
        return
    if not isinstance(frames, list):
        report("not a JSON array", source, 1)
        return
    log.info(
        "feed: %s has no timestamps; frame i gets the synthetic time %d + i ms",
        source,
        SYNTHETIC_BASE_NS,
    )
    decoder = BitfinexDecoder()
    for i, frame in enumerate(frames):
        try:
            evs = decoder.decode_frame(frame)
        except _DECODE_ERRORS as exc:
            report(f"unusable frame: {exc}", source, i + 1)
            continue
        for ev in evs:
            yield SourceEvent(SYNTHETIC_BASE_NS + i * MS, decoder.exchange, ev, source, i + 1)


def read_cryptofeed(lines: Iterator[bytes], source: str, report: Report) -> Iterator[SourceEvent]:
    """Events of a cryptofeed raw-data log (REST ``.http``/``.0`` files or a ``.ws`` session).

    The WebSocket decoder is chosen from the connect line's URL: Binance (USD-M, COIN-M, spot),
    BitMEX, Deribit or Coinbase; other venues' lines are reported once and skipped. Each connect
    starts a fresh decoder (a reconnect also emits ``Disconnect``). Of the REST answers only
    Binance depth snapshots are used.
    """
    ws: LineDecoder | None = None
    rest: dict[Exchange, BinanceDecoder] = {}
    connects = 0
    unsupported_reported = False
    last_ts = -1
    for line, raw in enumerate(lines, 1):
        text = raw.decode("utf-8", "replace")
        if not text.strip() or text.startswith("configuration: "):
            continue
        try:
            m = CF_RECV_RE.match(text)
            if m is not None:
                ts = ts_from_seconds(m.group(1))
                if ws is None:
                    if not unsupported_reported:
                        report("messages of an unsupported venue (or before connect)", source, line)
                        unsupported_reported = True
                    continue
                if ts < last_ts:
                    report("receive time goes backwards", source, line)
                    continue
                last_ts = ts
                try:
                    evs = ws.decode(m.group(2))
                except PartialDecode as exc:
                    report(f"partly unusable message: {exc}", source, line)
                    evs = exc.events
                for ev in evs:
                    yield SourceEvent(ts, ws.exchange, ev, source, line)
                continue
            m = CF_CONNECT_RE.match(text)
            if m is not None:
                ts = ts_from_seconds(m.group(2))
                url = m.group(1)
                market = market_from_url(url)
                if market is not None:
                    ws = _BinanceLines(market)
                elif bitmex.is_ws_url(url):
                    ws = bitmex.BitmexDecoder()
                elif deribit.is_ws_url(url):
                    ws = deribit.DeribitDecoder()
                elif coinbase.is_ws_url(url):
                    ws = coinbase.CoinbaseDecoder()
                else:
                    ws = None
                connects += 1
                if connects > 1 and ws is not None:
                    yield SourceEvent(ts, ws.exchange, Disconnect("reconnected"), source, line)
                continue
            if CF_SENT_RE.match(text):
                continue
            m = CF_REST_RE.match(text)
            if m is not None:
                url, ts = m.group(1), ts_from_seconds(m.group(2))
                market = market_from_url(url)
                parsed = urlparse(url)
                if market is None or not parsed.path.endswith("/depth"):
                    continue
                symbol = parse_qs(parsed.query).get("symbol", [""])[0]
                dec = rest.setdefault(market, BinanceDecoder(market))
                snap = dec.decode_rest_depth(m.group(3), symbol)
                yield SourceEvent(ts, market, snap, source, line)
                continue
            report(f"unrecognised line: {text[:60]!r}", source, line)
        except (*_DECODE_ERRORS, InvalidOperation) as exc:
            report(f"unparsable line: {exc}", source, line)


def read_tardis(lines: Iterator[bytes], source: str, report: Report) -> Iterator[SourceEvent]:
    """Events of a Tardis CSV file."""
    header = next(lines, b"").decode("utf-8", "replace")
    kind = kind_of_header(header)
    if kind is None:
        report("not a Tardis CSV header", source, 1)
        return
    rows = ((i, raw.decode("utf-8", "replace")) for i, raw in enumerate(lines, 2) if raw)
    yield from read_rows(kind, rows, source, report)


def read_source(path: str | Path, report: Report) -> Iterator[SourceEvent]:
    """Every event of one recorded file, in file order, whatever its format.

    Bad lines go to ``report(why, source, line)`` and are skipped.

    Raises:
        BadMarketData: the file cannot be read or its format is not recognised.
    """
    source = str(path)
    try:
        binary = is_dbn(path)
    except OSError as exc:
        raise BadMarketData(f"cannot read: {exc}", source=source) from exc
    if binary:
        log.info("feed: replaying %s (format databento_dbn)", source)
        yield from read_mbo_dbn(path, report)
        return
    lines = open_lines(path)
    first = b""
    skipped: list[bytes] = []
    for raw in lines:
        skipped.append(raw)
        if raw.strip():
            first = raw
            break
    fmt = detect_format(first)
    if fmt is None:
        if not first.strip():
            raise BadMarketData("the file holds nothing (no non-empty line)", source=source)
        raise BadMarketData(
            f"unrecognised format (first line {first[:80]!r}); the formats read are listed in "
            "docs/market-data.md",
            source=source,
        )
    log.info("feed: replaying %s (format %s)", source, fmt)
    rest = chain(skipped, lines)
    if fmt == "capture":
        yield from read_capture(rest, source, report)
    elif fmt == "ndjson":
        yield from read_ndjson(rest, source, report)
    elif fmt == "json_array":
        data = b"\n".join(rest)
        if looks_like_machine(data[:_CHUNK]):
            yield from read_machine_document(data, source, report)
        else:
            yield from read_json_array(data, source, report)
    elif fmt == "tardis_machine":
        yield from read_machine(rest, source, report)
    elif fmt == "databento_mbo":
        yield from read_mbo_csv(chain([first], lines), source, report)
    elif fmt == "cryptofeed":
        yield from read_cryptofeed(rest, source, report)
    elif fmt == "binance_bulk_depth":
        rows = ((i, raw.decode("utf-8", "replace")) for i, raw in enumerate(lines, 2) if raw)
        yield from read_bulk_depth_rows(rows, source, report)
    else:
        yield from read_tardis(chain([first], lines), source, report)
