"""Pure Bybit v5 parsers: public WebSocket messages -> venue-neutral events.

* ``orderbook.*``: a ``snapshot`` (or any message with ``u == 1``: the service restarted) replaces
  the book at once; a ``delta`` must have ``u == previous u + 1`` (``SEQ_NEXT``), else the book
  is invalid until the next snapshot.
* ``publicTrade.*``: ``S`` is the taker side.
* ``tickers.*``: a snapshot then deltas of changed fields only; :class:`BybitDecoder` merges them
  and emits funding whenever rate, next time or mark price change.
"""

from __future__ import annotations

import msgspec

from mlthon.basics.mlt_enum import Exchange, Side
from mlthon.feeds.bybit_v5.wire import Message, OrderBookData, PublicTrade, Ticker
from mlthon.feeds.events import SEQ_NEXT, DepthDiff, DepthSnapshot, Event, Funding, Ignored, Trades

MS = 1_000_000
EXCHANGE = Exchange.Bybit

_message = msgspec.json.Decoder(Message)
_book = msgspec.json.Decoder(OrderBookData)
_trades = msgspec.json.Decoder(list[PublicTrade])
_ticker = msgspec.json.Decoder(Ticker)

_SIDES = {"Buy": Side.Buy.value, "Sell": Side.Sell.value}


def orderbook_to_event(kind: str, ts_ms: int, d: OrderBookData) -> DepthSnapshot | DepthDiff:
    """A book snapshot (also for ``u == 1``, a restart) or a delta chained by ``u``."""
    if kind == "snapshot" or d.u == 1:
        return DepthSnapshot(d.s, ts_ms * MS, d.u, SEQ_NEXT, True, d.b, d.a)
    return DepthDiff(d.s, ts_ms * MS, d.u, d.u, -1, SEQ_NEXT, d.b, d.a)


def public_trades_to_trades(items: list[PublicTrade]) -> Trades:
    """``publicTrade`` entries of one message (all of one symbol)."""
    sym = items[0].s if items else ""
    return Trades(sym, [(_SIDES.get(t.S, 0), t.p, t.v, t.T * MS, t.i) for t in items])


class BybitDecoder:
    """Decodes Bybit v5 public messages; keeps the merged ticker state per symbol."""

    exchange = EXCHANGE

    def __init__(self) -> None:
        self._tickers: dict[str, dict[str, str]] = {}
        self._last_funding: dict[str, tuple[str, str, str]] = {}
        self.last_ts_ms = 0

    def merge_ticker(self, kind: str, ts_ms: int, t: Ticker) -> Funding | None:
        """Merge a ticker snapshot/delta; return funding if its fields are known and changed."""
        state = self._tickers.get(t.symbol)
        if kind == "snapshot" or state is None:
            state = {}
            self._tickers[t.symbol] = state
        for key in ("fundingRate", "nextFundingTime", "markPrice"):
            v = getattr(t, key)
            if v is not None:
                state[key] = v
        try:
            cur = (state["fundingRate"], state["nextFundingTime"], state["markPrice"])
        except KeyError:
            return None
        if self._last_funding.get(t.symbol) == cur:
            return None
        self._last_funding[t.symbol] = cur
        return Funding(t.symbol, ts_ms * MS, cur[0], int(cur[1]) * MS, cur[2])

    def decode(self, raw: bytes | str) -> list[Event]:
        """Events of one message.

        Raises:
            msgspec.DecodeError / msgspec.ValidationError: malformed message.
        """
        m = _message.decode(raw)
        self.last_ts_ms = m.ts or self.last_ts_ms
        topic = m.topic
        if topic is None or not m.data:
            return [Ignored(f"bybit reply {m.op}")]
        if topic.startswith("orderbook."):
            return [orderbook_to_event(m.type, m.ts, _book.decode(m.data))]
        if topic.startswith("publicTrade."):
            return [public_trades_to_trades(_trades.decode(m.data))]
        if topic.startswith("tickers."):
            f = self.merge_ticker(m.type, m.ts, _ticker.decode(m.data))
            return [f] if f is not None else []
        return [Ignored(f"bybit {topic}")]
