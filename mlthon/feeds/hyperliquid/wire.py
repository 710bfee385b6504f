"""Hyperliquid public payloads (unknown fields allowed)."""

from __future__ import annotations

import msgspec


class Message(msgspec.Struct):
    """``{"channel": "l2Book" | "trades" | ..., "data": ...}``."""

    channel: str
    data: msgspec.Raw = msgspec.Raw(b"")


class Level(msgspec.Struct):
    """One price level: price, size, number of orders."""

    px: str
    sz: str
    n: int = 0


class L2Book(msgspec.Struct):
    """A full book of the top levels: ``levels[0]`` bids, ``levels[1]`` asks."""

    coin: str
    levels: tuple[list[Level], list[Level]]
    time: int = 0


class Trade(msgspec.Struct):
    """A public trade; ``side`` B (buy) or A (sell) is the taker side."""

    coin: str
    side: str
    px: str
    sz: str
    time: int
    tid: int = 0
