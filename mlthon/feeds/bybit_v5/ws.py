"""Bybit v5 public streams: URLs and the subscribe / unsubscribe / ping requests. I/O goes
through :mod:`mlthon.venues.transport`."""

from __future__ import annotations

import json

from mlthon.basics.mlt_enum import Environment

# Public linear stream per environment (demo trading has no public stream: mainnet data).
WS_URLS: dict[Environment, str] = {
    Environment.Mainnet: "wss://stream.bybit.com/v5/public/linear",
    Environment.Testnet: "wss://stream-testnet.bybit.com/v5/public/linear",
    Environment.Demo: "wss://stream.bybit.com/v5/public/linear",
}

PING = json.dumps({"op": "ping"})


def book_topic(symbol: str, depth: int = 50) -> str:
    """``orderbook.<depth>.<SYMBOL>``."""
    return f"orderbook.{depth}.{symbol.upper()}"


def topics(symbol: str, depth: int = 50) -> list[str]:
    """The topics of one instrument: its book, its trades and its ticker (funding)."""
    s = symbol.upper()
    return [book_topic(s, depth), f"publicTrade.{s}", f"tickers.{s}"]


def request(op: str, args: list[str], req_id: str = "") -> str:
    """A ``subscribe`` / ``unsubscribe`` request (Bybit takes at most 10 args per request)."""
    body: dict[str, object] = {"op": op, "args": args}
    if req_id:
        body["req_id"] = req_id
    return json.dumps(body)
