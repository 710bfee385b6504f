"""Coinbase Exchange legacy WebSocket payloads (unknown fields allowed). Prices and sizes are
decimal strings."""

from __future__ import annotations

import msgspec


class Message(msgspec.Struct):
    """Any feed message: its ``type`` says which struct the whole message decodes to."""

    type: str
    product_id: str = ""


class Snapshot(msgspec.Struct):
    """``snapshot``: the product's whole book, ``[price, size]`` per level."""

    product_id: str
    bids: list[tuple[str, str]]
    asks: list[tuple[str, str]]
    time: str = ""


class L2Update(msgspec.Struct):
    """``l2update``: ``changes`` of ``[side (buy|sell), price, size]``; the size is the level's
    new absolute size, ``"0"`` removing it."""

    product_id: str
    changes: list[tuple[str, str, str]]
    time: str = ""


class Match(msgspec.Struct):
    """``match`` / ``last_match``: one trade; ``side`` is the **maker** order's side."""

    product_id: str
    trade_id: int
    side: str
    size: str
    price: str
    time: str
    sequence: int = 0


class Ticker(msgspec.Struct):
    """``ticker``: sent after each match; ``side`` is the taker side, ``last_size`` the trade's
    size. The first ticker after subscribing may carry no trade."""

    product_id: str
    price: str | None = None
    side: str = ""
    last_size: str | None = None
    trade_id: int | None = None
    time: str = ""
    sequence: int = 0
