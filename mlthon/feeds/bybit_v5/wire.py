"""Bybit v5 public WebSocket payloads, as msgspec structs (unknown fields allowed)."""

from __future__ import annotations

import msgspec


class Message(msgspec.Struct):
    """The public envelope: ``topic``, ``type`` (snapshot/delta), ``ts`` (ms) and ``data``.

    Replies to requests (``op``, ``success``) have no topic.
    """

    topic: str | None = None
    type: str = ""
    ts: int = 0
    data: msgspec.Raw = msgspec.Raw(b"")
    cts: int = 0
    op: str | None = None


class OrderBookData(msgspec.Struct):
    """``orderbook.{depth}.{symbol}`` data: absolute sizes, ``u`` update id, ``seq`` cross seq."""

    s: str
    b: list[tuple[str, str]]
    a: list[tuple[str, str]]
    u: int
    seq: int = 0


class PublicTrade(msgspec.Struct):
    """One ``publicTrade`` entry; ``S`` is the taker side."""

    T: int
    s: str
    S: str
    v: str
    p: str
    i: str = ""


class Ticker(msgspec.Struct, omit_defaults=True):
    """``tickers`` data. Linear/inverse deltas carry only the fields that changed."""

    symbol: str
    fundingRate: str | None = None  # noqa: N815 (venue field names)
    nextFundingTime: str | None = None  # noqa: N815
    markPrice: str | None = None  # noqa: N815
    indexPrice: str | None = None  # noqa: N815
