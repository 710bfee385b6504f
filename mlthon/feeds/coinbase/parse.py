"""Pure Coinbase Exchange parsers: legacy WebSocket feed messages -> venue-neutral events.

* ``level2`` (and ``level2_batch``): a ``snapshot`` per product (in-stream: it replaces the book at
  once), then ``l2update`` messages whose ``changes`` give ``[side, price, size]`` with the
  level's absolute size (``"0"`` removes it). The channel has **no sequence numbers**
  (``SEQ_NONE``): a lost message cannot be detected, only a reconnect.
* ``match`` / ``last_match`` (``matches`` channel) and ``ticker``: each match is one trade. A
  match's ``side`` is the maker's, so the taker side is the other one; a ticker's ``side`` is the
  taker's. Subscribed to both, a trade arrives twice (same ``trade_id``): the decoder publishes
  each ``trade_id`` of a product once, from whichever message comes first. ``last_match`` (the
  last trade before the subscription) is published too, as cryptofeed does.
* ``subscriptions``, ``heartbeat``, ``error``, ``status`` and the ``full`` channel are ignored.
"""

from __future__ import annotations

from collections import deque

import msgspec

from mlthon.basics.mlt_enum import Exchange, Side
from mlthon.feeds.coinbase.wire import L2Update, Match, Message, Snapshot, Ticker
from mlthon.feeds.events import SEQ_NONE, DepthDiff, DepthSnapshot, Event, Ignored, StrLevel, Trades
from mlthon.feeds.timefmt import iso_to_ns

EXCHANGE = Exchange.Coinbase
BID = Side.Buy.value
ASK = Side.Sell.value

_message = msgspec.json.Decoder(Message)
_snapshot = msgspec.json.Decoder(Snapshot)
_l2update = msgspec.json.Decoder(L2Update)
_match = msgspec.json.Decoder(Match)
_ticker = msgspec.json.Decoder(Ticker)
_SIDES = {"buy": BID, "sell": ASK}
_OTHER = {BID: ASK, ASK: BID}
RECENT_TRADES = 4096  # trade ids remembered per product to drop the second report of a trade


def is_ws_url(url: str) -> bool:
    """True for a Coinbase Exchange WebSocket URL (``wss://ws-feed.pro.coinbase.com``,
    ``wss://ws-feed.exchange.coinbase.com``, the sandbox)."""
    return "coinbase.com" in url.lower()


def _side(text: str) -> int:
    side = _SIDES.get(text)
    if side is None:
        raise ValueError(f"unknown side {text!r}")
    return side


def _ets(time: str) -> int:
    return iso_to_ns(time) if time else 0


def snapshot_to_event(s: Snapshot) -> DepthSnapshot:
    """The product's whole book, valid at this point of the stream."""
    return DepthSnapshot(s.product_id, _ets(s.time), -1, SEQ_NONE, True, s.bids, s.asks)


def l2update_to_diff(u: L2Update) -> DepthDiff:
    """Absolute sizes of the changed levels (unsequenced).

    Raises:
        ValueError: an unknown side or a bad time.
    """
    bids: list[StrLevel] = []
    asks: list[StrLevel] = []
    for side, price, size in u.changes:
        (bids if _side(side) == BID else asks).append((price, size))
    return DepthDiff(u.product_id, _ets(u.time), -1, -1, -1, SEQ_NONE, bids, asks)


def match_to_trades(m: Match) -> Trades:
    """One match as a trade; the taker side is the opposite of the maker's ``side``.

    Raises:
        ValueError: an unknown side or a bad time.
    """
    taker = _OTHER[_side(m.side)]
    return Trades(m.product_id, [(taker, m.price, m.size, iso_to_ns(m.time), str(m.trade_id))])


def ticker_to_trades(t: Ticker) -> Trades | None:
    """The trade a ticker reports (``side`` is the taker's), or None if it carries none.

    Raises:
        ValueError: an unknown side or a bad time.
    """
    if t.trade_id is None or t.price is None or not t.last_size or not t.side:
        return None
    trade = (_side(t.side), t.price, t.last_size, _ets(t.time), str(t.trade_id))
    return Trades(t.product_id, [trade])


class CoinbaseDecoder:
    """Decodes Coinbase legacy feed messages; remembers each product's recent trade ids
    so that a trade reported by both ``match`` and ``ticker`` is published once."""

    exchange = EXCHANGE

    def __init__(self) -> None:
        self._recent: dict[str, tuple[deque[int], set[int]]] = {}

    def _once(self, product: str, trade_id: int, trades: Trades) -> list[Event]:
        recent = self._recent.get(product)
        if recent is None:
            recent = self._recent[product] = (deque(), set())
        order, seen = recent
        if trade_id in seen:
            return [Ignored("coinbase trade already published")]
        seen.add(trade_id)
        order.append(trade_id)
        if len(order) > RECENT_TRADES:
            seen.discard(order.popleft())
        return [trades]

    def decode(self, raw: bytes | str) -> list[Event]:
        """Events of one message.

        Raises:
            msgspec.DecodeError / msgspec.ValidationError: malformed message.
            ValueError: an unknown side or a bad time.
        """
        kind = _message.decode(raw).type
        if kind == "l2update":
            return [l2update_to_diff(_l2update.decode(raw))]
        if kind == "snapshot":
            return [snapshot_to_event(_snapshot.decode(raw))]
        if kind in ("match", "last_match"):
            m = _match.decode(raw)
            return self._once(m.product_id, m.trade_id, match_to_trades(m))
        if kind == "ticker":
            t = _ticker.decode(raw)
            tr = ticker_to_trades(t)
            if tr is None or t.trade_id is None:
                return [Ignored("coinbase ticker without a trade")]
            return self._once(t.product_id, t.trade_id, tr)
        return [Ignored(f"coinbase {kind}")]
