"""Pure Bitfinex raw-book (R0) parsers: frames -> order-level events.

* ``amount > 0`` is a bid, ``amount < 0`` an ask; the size is ``|amount|``.
* ``price == 0`` removes the order id; otherwise the order is added, or replaced if the id exists.
* The first data frame of a channel is the snapshot: ``[chanId, [[id, price, amount], ...]]``.
* ``[chanId, "hb"]`` is a heartbeat.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import msgspec

from mlthon.basics.mlt_enum import Exchange, Side
from mlthon.feeds.bitfinex.wire import Subscribed, frame_decoder
from mlthon.feeds.events import Event, Ignored, OrderSnapshot, OrderUpdate

EXCHANGE = Exchange.Bitfinex
BID = Side.Buy.value
ASK = Side.Sell.value


def _num(x: Any) -> Decimal:
    if isinstance(x, bool) or not isinstance(x, int | Decimal):
        raise TypeError(f"expected a number, got {x!r}")
    return Decimal(x)


def _s(d: Decimal) -> str:
    return format(d, "f")


def raw_order_to_update(symbol: str, row: list[Any]) -> OrderUpdate:
    """``[order_id, price, amount]`` as an add/replace or (price 0) a removal.

    Raises:
        ValueError: the row is not three numbers.
    """
    if len(row) != 3:
        raise ValueError(f"raw book row must be [id, price, amount], got {row!r}")
    oid = int(_num(row[0]))
    price = _num(row[1])
    amount = _num(row[2])
    side = BID if amount > 0 else ASK
    if price == 0:
        return OrderUpdate(symbol, 0, oid, side, "0", "0", True)
    return OrderUpdate(symbol, 0, oid, side, _s(price), _s(abs(amount)), False)


def raw_snapshot_to_event(symbol: str, rows: list[list[Any]]) -> OrderSnapshot:
    """The snapshot frame's rows as resting orders.

    Raises:
        ValueError: a row is malformed.
    """
    orders = []
    for row in rows:
        u = raw_order_to_update(symbol, row)
        if not u.remove:
            orders.append((u.order_id, u.side, u.price, u.size))
    return OrderSnapshot(symbol, 0, orders)


class BitfinexDecoder:
    """Decodes Bitfinex frames; remembers which channel id carries which symbol."""

    exchange = EXCHANGE

    def __init__(self) -> None:
        self.channels: dict[int, str] = {}

    def decode_frame(self, frame: Any) -> list[Event]:
        """Events of one decoded frame.

        Raises:
            ValueError: a data frame on an unknown channel or with a malformed body.
        """
        if isinstance(frame, dict):
            if frame.get("event") == "subscribed":
                sub = msgspec.convert(frame, Subscribed)
                if sub.channel == "book":
                    self.channels[sub.chanId] = sub.symbol
            return [Ignored(f"bitfinex event {frame.get('event')}")]
        if not isinstance(frame, list) or len(frame) < 2:
            raise ValueError(f"not a Bitfinex frame: {frame!r:.80}")
        sym = self.channels.get(frame[0])
        if sym is None:
            raise ValueError(f"data on unknown channel {frame[0]!r}")
        body = frame[1]
        if body == "hb":
            return [Ignored("bitfinex heartbeat")]
        if isinstance(body, list) and body and isinstance(body[0], list):
            return [raw_snapshot_to_event(sym, body)]
        if isinstance(body, list):
            return [raw_order_to_update(sym, body)]
        raise ValueError(f"unexpected frame body {body!r:.80}")

    def decode(self, raw: bytes | str) -> list[Event]:
        """Events of one frame given as JSON text.

        Raises:
            msgspec.DecodeError: not JSON; ValueError: not a usable frame.
        """
        return self.decode_frame(frame_decoder.decode(raw))
