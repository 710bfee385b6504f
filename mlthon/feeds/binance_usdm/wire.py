"""Binance market-data payloads (USD-M and COIN-M futures, and spot), as msgspec structs.

Unknown fields are allowed: Binance adds fields without notice. Prices and sizes stay strings.
"""

from __future__ import annotations

import msgspec

StrLevels = list[tuple[str, str]]


class Envelope(msgspec.Struct):
    """A line as received: a combined-stream envelope, or a REST depth snapshot.

    Combined streams wrap each payload as ``{"stream": name, "data": {...}}``; the REST depth
    answer has ``lastUpdateId``, ``bids`` and ``asks`` instead.
    """

    stream: str | None = None
    data: msgspec.Raw = msgspec.Raw(b"")
    lastUpdateId: int | None = None  # noqa: N815 (venue field name)
    E: int = 0
    T: int = 0
    symbol: str | None = None
    bids: StrLevels | None = None
    asks: StrLevels | None = None
    e: str | None = None


class DepthUpdate(msgspec.Struct):
    """``<symbol>@depth`` diff. Futures carry ``pu`` (COIN-M adds ``ps``); spot has neither."""

    E: int
    s: str
    U: int
    u: int
    b: StrLevels
    a: StrLevels
    T: int = 0
    pu: int | None = None
    ps: str | None = None


class Trade(msgspec.Struct):
    """``@trade`` (``t`` id) or ``@aggTrade`` (``a`` id). ``m`` true: the seller was the taker."""

    s: str
    p: str
    q: str
    T: int
    m: bool
    E: int = 0
    t: int | None = None
    a: int | None = None
    X: str | None = None


class MarkPrice(msgspec.Struct):
    """``@markPrice``: mark ``p``, funding rate ``r``, next funding time ``T`` (ms)."""

    s: str
    p: str
    r: str
    T: int
    E: int = 0
    i: str = ""


class DepthEnvelope(msgspec.Struct):
    """A combined-stream line known to carry a depth diff (one decode instead of two)."""

    data: DepthUpdate


class RawDepthUpdate(msgspec.Struct):
    """:class:`DepthUpdate` with its levels left as the raw bytes of their JSON arrays, for the
    feed engine to parse straight to ticks (``mlthon.feeds.levels``)."""

    E: int
    s: str
    U: int
    u: int
    b: msgspec.Raw
    a: msgspec.Raw
    T: int = 0
    pu: int | None = None
    ps: str | None = None


class RawDepthEnvelope(msgspec.Struct):
    """A combined-stream line known to carry a depth diff, its levels left raw."""

    data: RawDepthUpdate


class TradeEnvelope(msgspec.Struct):
    """A combined-stream line known to carry a trade or an aggregated trade."""

    data: Trade


class MarkPriceEnvelope(msgspec.Struct):
    """A combined-stream line known to carry a mark price / funding update."""

    data: MarkPrice
