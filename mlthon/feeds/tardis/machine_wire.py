"""Tardis Machine / tardis-node *normalized* message shapes (msgspec structs).

JSON numbers are decoded straight into exact Decimals (never floats). Unknown fields are allowed:
Tardis adds fields over time. Every message has ``type``, ``exchange`` and ``localTimestamp``
(ISO-8601, the arrival time); market messages add ``symbol`` and ``timestamp`` (exchange time).
"""

from __future__ import annotations

from decimal import Decimal

import msgspec


class Head(msgspec.Struct):
    """What every normalized message carries: its type and venue."""

    type: str
    exchange: str
    localTimestamp: str  # noqa: N815 (Tardis field name)


class Level(msgspec.Struct):
    """One price level: absolute ``amount`` at ``price`` (0 deletes in ``book_change``)."""

    price: Decimal
    amount: Decimal


class BookChange(msgspec.Struct):
    """``book_change``: changed levels; ``isSnapshot`` marks (part of) a full book."""

    symbol: str
    timestamp: str
    localTimestamp: str  # noqa: N815
    isSnapshot: bool = False  # noqa: N815
    bids: list[Level] = []
    asks: list[Level] = []


class BookSnapshot(msgspec.Struct):
    """``book_snapshot_{depth}_{interval}ms``: the top ``depth`` levels, best first."""

    symbol: str
    timestamp: str
    localTimestamp: str  # noqa: N815
    bids: list[Level] = []
    asks: list[Level] = []


class Trade(msgspec.Struct):
    """``trade``: ``side`` is the taker side (``buy`` / ``sell`` / ``unknown``)."""

    symbol: str
    timestamp: str
    localTimestamp: str  # noqa: N815
    price: Decimal
    amount: Decimal
    side: str = "unknown"
    id: str | int | None = None


class DerivativeTicker(msgspec.Struct):
    """``derivative_ticker``: funding and prices of a derivative; any field may be missing."""

    symbol: str
    timestamp: str
    localTimestamp: str  # noqa: N815
    fundingRate: Decimal | None = None  # noqa: N815
    fundingTimestamp: str | None = None  # noqa: N815
    markPrice: Decimal | None = None  # noqa: N815


head_decoder = msgspec.json.Decoder(Head)
book_change_decoder = msgspec.json.Decoder(BookChange)
book_snapshot_decoder = msgspec.json.Decoder(BookSnapshot)
trade_decoder = msgspec.json.Decoder(Trade)
ticker_decoder = msgspec.json.Decoder(DerivativeTicker)
array_decoder = msgspec.json.Decoder(list[msgspec.Raw])
