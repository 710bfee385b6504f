"""BitMEX realtime WebSocket payloads (unknown fields allowed).

Table messages are ``{"table", "action", "data": [row, ...]}``; the ``partial`` of a table also
has ``keys``, ``types``, ``filter`` and more. Prices and sizes are JSON numbers: they are decoded
as exact ``Decimal`` (msgspec reads the number's text), never as floats.
"""

from __future__ import annotations

from decimal import Decimal

import msgspec


class Filter(msgspec.Struct):
    """The subscription filter of a ``partial``: ``{"symbol": "XBTUSD"}``."""

    symbol: str = ""


class Message(msgspec.Struct):
    """A table message, or a reply (``info`` welcome, ``success``/``subscribe``, ``error``)."""

    table: str = ""
    action: str = ""
    data: msgspec.Raw = msgspec.Raw(b"")
    filter: Filter | None = None
    info: str | None = None
    success: bool | None = None
    error: str | None = None


class L2Row(msgspec.Struct):
    """One ``orderBookL2`` level, keyed by ``id``. ``update`` rows may omit ``price``; ``delete``
    rows usually carry only ``symbol``, ``id`` and ``side``."""

    symbol: str
    id: int
    side: str = ""
    size: Decimal | None = None
    price: Decimal | None = None
    timestamp: str = ""


class TradeRow(msgspec.Struct):
    """One public trade; ``side`` (Buy/Sell) is the taker side."""

    symbol: str
    side: str
    size: Decimal
    price: Decimal
    timestamp: str
    trdMatchID: str = ""  # noqa: N815 (venue field name)
