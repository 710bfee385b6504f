"""Pure Binance parsers: payload structs -> venue-neutral events.

Serves USD-M futures, COIN-M futures (same payloads plus ``ps``) and spot (diffs without ``pu``):

* futures diffs chain by ``pu == previous u`` (``SEQ_PREV``); a REST snapshot ``L`` bridges to the
  first diff with ``U <= L <= u``;
* spot diffs chain by ``U == previous u + 1`` (``SEQ_NEXT``); the bridge is ``U <= L + 1 <= u``.

:class:`BinanceDecoder` decodes one received line (combined-stream envelope, raw stream payload or
REST depth answer) into events; it remembers only which market the stream is and the symbol of the
last diff, for REST snapshots that do not name their symbol (USD-M and spot omit it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import msgspec

from mlthon.basics.mlt_enum import Exchange, Side
from mlthon.feeds.binance_usdm.wire import (
    DepthEnvelope,
    DepthUpdate,
    Envelope,
    MarkPrice,
    MarkPriceEnvelope,
    RawDepthEnvelope,
    RawDepthUpdate,
    StrLevels,
    Trade,
    TradeEnvelope,
)
from mlthon.feeds.events import (
    SEQ_NEXT,
    SEQ_PREV,
    DepthDiff,
    DepthSnapshot,
    Event,
    Funding,
    Ignored,
    SourceEvent,
    StrLevel,
    Trades,
)
from mlthon.feeds.levels import RAW_LEVELS, count_levels

MS = 1_000_000
BUY = Side.Buy.value
SELL = Side.Sell.value

_envelope = msgspec.json.Decoder(Envelope)
_depth = msgspec.json.Decoder(DepthUpdate)
_trade = msgspec.json.Decoder(Trade)
_mark = msgspec.json.Decoder(MarkPrice)
_depth_env = msgspec.json.Decoder(DepthEnvelope)
_raw_depth_env = msgspec.json.Decoder(RawDepthEnvelope)
_trade_env = msgspec.json.Decoder(TradeEnvelope)
_mark_env = msgspec.json.Decoder(MarkPriceEnvelope)
_STREAM_HEAD = b'{"stream":"'


def depth_update_to_diff(
    m: DepthUpdate | RawDepthUpdate,
    bids: StrLevels | bytes | None = None,
    asks: StrLevels | bytes | None = None,
) -> DepthDiff:
    """A depth diff; futures (with ``pu``) chain by ``pu``, spot by ``U``. ``bids`` / ``asks``:
    the levels when not ``m``'s own (raw JSON bytes, see :mod:`mlthon.feeds.levels`)."""
    b = m.b if bids is None else bids
    a = m.a if asks is None else asks
    if m.pu is not None:
        return DepthDiff(m.s, (m.T or m.E) * MS, m.U, m.u, m.pu, SEQ_PREV, b, a)  # type: ignore[arg-type]
    return DepthDiff(m.s, m.E * MS, m.U, m.u, -1, SEQ_NEXT, b, a)  # type: ignore[arg-type]


def rest_depth_to_snapshot(
    symbol: str, last_update_id: int, ets_ms: int, bids: StrLevels, asks: StrLevels, spot: bool
) -> DepthSnapshot:
    """A REST ``/depth`` answer as an out-of-band snapshot to bridge to the diff stream."""
    return DepthSnapshot(
        symbol, ets_ms * MS, last_update_id, SEQ_NEXT if spot else SEQ_PREV, False, bids, asks
    )


def trade_to_trades(t: Trade) -> Trades:
    """``@trade`` / ``@aggTrade``; ``m`` true: the buyer was the maker, the seller the taker."""
    tid = t.t if t.t is not None else t.a
    return Trades(
        t.s, [(SELL if t.m else BUY, t.p, t.q, t.T * MS, "" if tid is None else str(tid))]
    )


def mark_price_to_funding(m: MarkPrice) -> Funding:
    """``@markPrice``: funding rate, next funding time and mark price."""
    return Funding(m.s, m.E * MS, m.r, m.T * MS, m.p)


def market_from_url(url: str) -> Exchange | None:
    """The Binance market of a REST or WebSocket URL (fapi/fstream, dapi/dstream, api/stream)."""
    u = url.lower()
    if "binance" not in u:
        return None
    if "fapi." in u or "fstream" in u:
        return Exchange.BinanceUsdm
    if "dapi." in u or "dstream" in u:
        return Exchange.BinanceCoinm
    return Exchange.BinanceSpot


def detect_market(lines: Iterable[bytes]) -> Exchange | None:
    """Guess USD-M / COIN-M / spot from sample payloads (diffs with ``pu`` are futures; ``ps``
    or a ``_PERP``-style symbol is COIN-M; a futures trade has ``X``); None if undecided."""
    for raw in lines:
        try:
            env = _envelope.decode(raw)
        except msgspec.DecodeError:
            continue
        if env.lastUpdateId is not None and env.symbol is not None and "_" in env.symbol:
            return Exchange.BinanceCoinm
        payload = env.data if env.data else (raw if env.e is not None else None)
        if payload is None:
            continue
        try:
            d = _depth.decode(payload)
        except msgspec.ValidationError:
            try:
                t = _trade.decode(payload)
            except msgspec.ValidationError:
                continue
            if "_" in t.s:
                return Exchange.BinanceCoinm
            if t.X is not None:
                return Exchange.BinanceUsdm
            continue
        if d.pu is None:
            return Exchange.BinanceSpot
        return Exchange.BinanceCoinm if (d.ps is not None or "_" in d.s) else Exchange.BinanceUsdm
    return None


class BinanceDecoder:
    """Decodes received Binance lines into events, for one connection or one recorded file.

    Args:
        market: the Binance market of the stream (decides the REST snapshot's sequencing rule).
    """

    def __init__(self, market: Exchange) -> None:
        self.market = market
        self.spot = market is Exchange.BinanceSpot
        self.last_symbol: str | None = None
        self._ranges: dict[str, tuple[int, int]] = {}
        self._orphans: list[Envelope] = []
        # Combined-stream lines start with the stream's name; once a name has been seen, its
        # lines go straight to a decoder for their payload (one decode, no envelope pass).
        self._routes: dict[bytes, Callable[[bytes], list[Event]]] = {}
        self.ignored = 0  # messages of streams not used (bookTicker, kline...)

    def symbol_for(self, last_update_id: int) -> str | None:
        """The symbol a REST snapshot without one belongs to: with one symbol in the stream,
        that one; with several, the one whose latest diff id range is nearest its id."""
        if len(self._ranges) <= 1:
            return self.last_symbol

        def distance(r: tuple[int, int]) -> int:
            lo, hi = r
            return (
                0
                if lo <= last_update_id <= hi
                else min(abs(last_update_id - lo), abs(last_update_id - hi))
            )

        return min(self._ranges, key=lambda s: distance(self._ranges[s]))

    def snapshot_from_rest(self, env: Envelope, symbol: str) -> DepthSnapshot:
        """The snapshot event of a decoded REST depth answer, for ``symbol``."""
        return rest_depth_to_snapshot(
            symbol, env.lastUpdateId or 0, env.T or env.E, env.bids or [], env.asks or [], self.spot
        )

    def decode_rest_depth(self, raw: bytes | str, symbol: str) -> DepthSnapshot:
        """Decode a REST depth answer body for ``symbol``.

        Raises:
            msgspec.DecodeError: not JSON; msgspec.ValidationError: not a depth answer.
        """
        env = _envelope.decode(raw)
        if env.lastUpdateId is None:
            raise msgspec.ValidationError("not a depth snapshot: no lastUpdateId")
        return self.snapshot_from_rest(env, symbol)

    def decode(self, raw: bytes | str) -> list[Event]:
        """Events of one received line (usually one; none for a stream that is not used).

        Raises:
            msgspec.DecodeError: not JSON; msgspec.ValidationError: a known stream whose payload
                does not have the documented fields.
        """
        if type(raw) is bytes and raw.startswith(_STREAM_HEAD):
            name = raw[11 : raw.find(b'"', 11)]
            route = self._routes.get(name)
            if route is not None:
                return route(raw)
        return self._decode_any(raw)

    def _decode_any(self, raw: bytes | str) -> list[Event]:
        env = _envelope.decode(raw)
        if env.lastUpdateId is not None:
            sym = env.symbol or self.symbol_for(env.lastUpdateId)
            if sym is None:
                self._orphans.append(env)  # named by the first diff that follows
                return []
            return [self.snapshot_from_rest(env, sym)]
        stream = env.stream
        if stream is not None and env.data:
            data: msgspec.Raw | bytes | str = env.data
            kind = stream[stream.find("@") + 1 :]
            if len(self._routes) < 1000:
                self._routes[stream.encode()] = self._route_for(kind)
        elif env.e is not None:
            data = raw
            kind = env.e
        else:
            return [Ignored("binance: unrecognised message")]
        if kind.startswith("depth"):
            return self._on_depth(_depth.decode(data))
        if kind in ("trade", "aggTrade"):
            return [trade_to_trades(_trade.decode(data))]
        if kind.startswith("markPrice"):
            return [mark_price_to_funding(_mark.decode(data))]
        self.ignored += 1
        return [Ignored(f"binance {kind}")]

    def _route_for(self, kind: str) -> Callable[[bytes], list[Event]]:
        """The one-pass decoder of a combined stream's lines, by the stream's kind."""
        if kind.startswith("depth"):
            if RAW_LEVELS:
                return self._raw_depth
            return lambda raw: self._on_depth(_depth_env.decode(raw).data)
        if kind in ("trade", "aggTrade"):
            return lambda raw: [trade_to_trades(_trade_env.decode(raw).data)]
        if kind.startswith("markPrice"):
            return lambda raw: [mark_price_to_funding(_mark_env.decode(raw).data)]
        return self._skip

    def _skip(self, raw: bytes) -> list[Event]:
        self.ignored += 1
        return []

    def _raw_depth(self, raw: bytes) -> list[Event]:
        """A combined-stream depth line whose levels go to the engine as raw JSON bytes, once
        their shape is checked; a line whose levels are not plain string pairs is decoded as
        usual (which says what is wrong, or gives the text)."""
        m = _raw_depth_env.decode(raw).data
        b = bytes(m.b)
        a = bytes(m.a)
        if count_levels(b) < 0 or count_levels(a) < 0:
            return self._on_depth(_depth_env.decode(raw).data)
        return self._on_depth(m, b, a)

    def _on_depth(
        self,
        m: DepthUpdate | RawDepthUpdate,
        bids: bytes | None = None,
        asks: bytes | None = None,
    ) -> list[Event]:
        diff = depth_update_to_diff(m, bids, asks)
        self.last_symbol = diff.symbol
        self._ranges[diff.symbol] = (diff.first_id, diff.last_id)
        if self._orphans:
            out: list[Event] = [self.snapshot_from_rest(o, diff.symbol) for o in self._orphans]
            self._orphans.clear()
            out.append(diff)
            return out
        return [diff]


BULK_DEPTH_HEADER = "symbol,timestamp,first_update_id,last_update_id,side,update_type,price,qty,pu"


def read_bulk_depth_rows(
    rows: Iterable[tuple[int, str]], source: str, report: Callable[[str, str, int], None]
) -> Iterator[SourceEvent]:
    """Events of Binance's bulk-download futures depth CSV (header :data:`BULK_DEPTH_HEADER`).

    Rows of one update id range form one message: ``snap`` rows a snapshot (bridged like a REST
    answer), ``set`` rows a diff chained by ``pu``. There is no receive time: the exchange
    ``timestamp`` (ms) is used. ``_PERP``-style symbols are COIN-M, others USD-M.
    """
    key: tuple[str, int, int, int, str] | None = None
    bids: list[StrLevel] = []
    asks: list[StrLevel] = []
    ts = 0
    first_line = 0

    def flush() -> SourceEvent:
        assert key is not None
        sym, first, last, pu, kind = key
        ex = Exchange.BinanceCoinm if "_" in sym else Exchange.BinanceUsdm
        ev: Event
        if kind == "snap":
            ev = DepthSnapshot(sym, ts, last, SEQ_PREV, False, bids, asks)
        else:
            ev = DepthDiff(sym, ts, first, last, pu, SEQ_PREV, bids, asks)
        return SourceEvent(ts, ex, ev, source, first_line)

    for line, text in rows:
        cols = text.rstrip("\r\n").split(",")
        try:
            k = (cols[0], int(cols[2]), int(cols[3]), int(cols[8]), cols[5])
            row_ts = int(cols[1]) * MS
            side = cols[4]
            if side not in ("b", "a") or k[4] not in ("snap", "set"):
                raise ValueError(f"side {side!r} / update_type {k[4]!r}")
        except (ValueError, IndexError) as exc:
            report(f"bad Binance depth row: {exc}", source, line)
            continue
        if key is not None and k != key:
            yield flush()
            bids, asks = [], []
        if key != k:
            first_line = line
        key = k
        ts = row_ts
        (bids if side == "b" else asks).append((cols[6], cols[7]))
    if key is not None:
        yield flush()
