"""Pure Hyperliquid parsers. ``l2Book`` messages are full books of the top levels (no sequence
numbers), so each is an in-stream snapshot; the engine publishes the difference from its book."""

from __future__ import annotations

import msgspec

from mlthon.basics.mlt_enum import Exchange, Side
from mlthon.feeds.events import SEQ_NONE, DepthSnapshot, Event, Ignored, Trades
from mlthon.feeds.hyperliquid.wire import L2Book, Message, Trade

MS = 1_000_000
EXCHANGE = Exchange.Hyperliquid

_message = msgspec.json.Decoder(Message)
_book = msgspec.json.Decoder(L2Book)
_trades = msgspec.json.Decoder(list[Trade])
_SIDES = {"B": Side.Buy.value, "A": Side.Sell.value}


def l2book_to_snapshot(b: L2Book) -> DepthSnapshot:
    """A full top-of-book image."""
    bids = [(lv.px, lv.sz) for lv in b.levels[0]]
    asks = [(lv.px, lv.sz) for lv in b.levels[1]]
    return DepthSnapshot(b.coin, b.time * MS, -1, SEQ_NONE, True, bids, asks)


def trades_to_trades(items: list[Trade]) -> Trades:
    """Public trades of one message."""
    sym = items[0].coin if items else ""
    return Trades(
        sym, [(_SIDES.get(t.side, 0), t.px, t.sz, t.time * MS, str(t.tid)) for t in items]
    )


class HyperliquidDecoder:
    """Decodes Hyperliquid public messages."""

    exchange = EXCHANGE

    def decode(self, raw: bytes | str) -> list[Event]:
        """Events of one message.

        Raises:
            msgspec.DecodeError / msgspec.ValidationError: malformed message.
        """
        m = _message.decode(raw)
        if not m.data:
            return [Ignored(f"hyperliquid {m.channel}")]
        if m.channel == "l2Book":
            return [l2book_to_snapshot(_book.decode(m.data))]
        if m.channel == "trades":
            return [trades_to_trades(_trades.decode(m.data))]
        return [Ignored(f"hyperliquid {m.channel}")]
