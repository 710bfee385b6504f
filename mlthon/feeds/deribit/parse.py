"""Pure Deribit parsers: JSON-RPC subscription notifications -> venue-neutral events.

* ``book.<instrument>.raw`` (or ``.100ms``): a ``snapshot`` (in-stream: it replaces the book at
  once), then ``change`` messages. Each names the ``change_id`` of the message before it in
  ``prev_change_id`` (``SEQ_PREV``): any other value is a gap, after which the book is invalid
  until the next snapshot (a live client re-subscribes). Entries are ``[action, price, amount]``
  with ``new`` / ``change`` giving the level's absolute amount and ``delete`` removing it.
* ``book.<instrument>.<group>.<depth>.<interval>``: full images of the top levels
  (``[price, amount]`` entries), published as in-stream snapshots without gap detection.
* ``trades.<instrument>.<interval>`` / ``trades.<kind>.<currency>.<interval>``: public trades,
  ``direction`` being the taker side; one :class:`Trades` per instrument.
* ``ticker.*`` and other channels, heartbeats and RPC replies are ignored.
"""

from __future__ import annotations

from decimal import Decimal

import msgspec

from mlthon.basics.mlt_enum import Exchange, Side
from mlthon.feeds.deribit.wire import BookChanges, BookLevels, Change, Level, Message, Trade
from mlthon.feeds.events import (
    SEQ_NONE,
    SEQ_PREV,
    DepthDiff,
    DepthSnapshot,
    Event,
    Ignored,
    StrLevel,
    StrTrade,
    Trades,
)

MS = 1_000_000
EXCHANGE = Exchange.Deribit

_message = msgspec.json.Decoder(Message)
_changes = msgspec.json.Decoder(BookChanges)
_levels = msgspec.json.Decoder(BookLevels)
_trades = msgspec.json.Decoder(list[Trade])
_TAKER = {"buy": Side.Buy.value, "sell": Side.Sell.value}


def is_ws_url(url: str) -> bool:
    """True for a Deribit WebSocket URL (``wss://www.deribit.com/ws/api/v2``, test.deribit.com)."""
    return "deribit.com" in url.lower()


def _s(d: Decimal) -> str:
    return format(d, "f")


def _change_levels(entries: list[Change]) -> list[StrLevel]:
    out: list[StrLevel] = []
    for action, price, amount in entries:
        if action == "delete":
            out.append((_s(price), "0"))
        elif action in ("new", "change"):
            out.append((_s(price), _s(amount)))
        else:
            raise ValueError(f"unknown book action {action!r} at {price}")
    return out


def _image_levels(entries: list[Level]) -> list[StrLevel]:
    return [(_s(p), _s(q)) for p, q in entries]


def book_changes_to_event(b: BookChanges) -> DepthSnapshot | DepthDiff:
    """A ``snapshot`` (in-stream, sequenced by ``change_id``) or a ``change`` chained by
    ``prev_change_id``.

    Raises:
        ValueError: an unknown entry action, or a change without ``prev_change_id``.
    """
    bids = _change_levels(b.bids)
    asks = _change_levels(b.asks)
    ets = b.timestamp * MS
    if b.type == "snapshot":
        return DepthSnapshot(b.instrument_name, ets, b.change_id, SEQ_PREV, True, bids, asks)
    if b.prev_change_id is None:
        raise ValueError(f"book change {b.change_id} without prev_change_id")
    return DepthDiff(
        b.instrument_name, ets, b.change_id, b.change_id, b.prev_change_id, SEQ_PREV, bids, asks
    )


def book_levels_to_snapshot(b: BookLevels) -> DepthSnapshot:
    """A grouped-book image as an in-stream snapshot (no gap detection: each is complete)."""
    bids = _image_levels(b.bids)
    asks = _image_levels(b.asks)
    return DepthSnapshot(b.instrument_name, b.timestamp * MS, -1, SEQ_NONE, True, bids, asks)


def trades_to_trades(items: list[Trade]) -> list[Trades]:
    """Public trades of one notification, one :class:`Trades` per instrument.

    Raises:
        ValueError: an unknown direction.
    """
    by_instrument: dict[str, list[StrTrade]] = {}
    for t in items:
        side = _TAKER.get(t.direction)
        if side is None:
            raise ValueError(f"unknown trade direction {t.direction!r}")
        tup = (side, _s(t.price), _s(t.amount), t.timestamp * MS, str(t.trade_id))
        by_instrument.setdefault(t.instrument_name, []).append(tup)
    return [Trades(name, trades) for name, trades in by_instrument.items()]


class DeribitDecoder:
    """Decodes Deribit JSON-RPC notifications (stateless: the engine checks the chaining)."""

    exchange = EXCHANGE

    def decode(self, raw: bytes | str) -> list[Event]:
        """Events of one message.

        Raises:
            msgspec.DecodeError / msgspec.ValidationError: malformed message.
            ValueError: an unknown book action or trade direction, or a change without
                ``prev_change_id``.
        """
        m = _message.decode(raw)
        p = m.params
        if m.method != "subscription" or p is None:
            return [Ignored(f"deribit {m.method or 'reply'}")]
        parts = p.channel.split(".")
        kind = parts[0]
        if kind == "book":
            if len(parts) == 3:
                return [book_changes_to_event(_changes.decode(p.data))]
            if len(parts) == 5:
                return [book_levels_to_snapshot(_levels.decode(p.data))]
            raise ValueError(f"unknown book channel {p.channel!r}")
        if kind == "trades":
            return [*trades_to_trades(_trades.decode(p.data))]
        return [Ignored(f"deribit {kind}")]
