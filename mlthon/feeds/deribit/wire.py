"""Deribit JSON-RPC WebSocket v2 payloads (unknown fields allowed).

Prices and amounts are JSON numbers; they are decoded as exact ``Decimal`` (msgspec reads the
number's text), never as floats.
"""

from __future__ import annotations

from decimal import Decimal

import msgspec


class Params(msgspec.Struct):
    """``params`` of a notification: ``channel`` and ``data`` (subscriptions), or ``type``
    (heartbeats: ``heartbeat`` / ``test_request``)."""

    channel: str = ""
    data: msgspec.Raw = msgspec.Raw(b"")
    type: str = ""


class Message(msgspec.Struct):
    """A JSON-RPC message: a notification (``method`` + ``params``) or a reply (``id`` and
    ``result`` or ``error``)."""

    jsonrpc: str = ""
    method: str = ""
    params: Params | None = None
    id: int | str | None = None
    result: msgspec.Raw = msgspec.Raw(b"")
    error: msgspec.Raw = msgspec.Raw(b"")


# ``book.<instrument>.<interval>`` entries: [action (new|change|delete), price, amount].
Change = tuple[str, Decimal, Decimal]
# ``book.<instrument>.<group>.<depth>.<interval>`` entries: [price, amount].
Level = tuple[Decimal, Decimal]


class BookChanges(msgspec.Struct):
    """``book.<instrument>.<interval>`` data: a ``snapshot`` then ``change`` messages chained by
    ``prev_change_id`` (the ``change_id`` of the previous message). Amounts are absolute."""

    instrument_name: str
    change_id: int
    bids: list[Change]
    asks: list[Change]
    timestamp: int = 0
    type: str = "change"
    prev_change_id: int | None = None


class BookLevels(msgspec.Struct):
    """``book.<instrument>.<group>.<depth>.<interval>`` data: a full image of the top levels."""

    instrument_name: str
    bids: list[Level]
    asks: list[Level]
    timestamp: int = 0
    change_id: int = -1


class Trade(msgspec.Struct):
    """One ``trades.*`` entry; ``direction`` (buy/sell) is the taker side."""

    instrument_name: str
    trade_id: str | int
    price: Decimal
    amount: Decimal
    direction: str
    timestamp: int
    trade_seq: int = 0
