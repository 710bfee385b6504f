"""Binance USD-M public streams: the combined-stream URL of our subscriptions. I/O goes through
:mod:`mlthon.venues.transport` (aiohttp answers Binance's pings)."""

from __future__ import annotations

from mlthon.basics.mlt_enum import Environment

# Market-data websocket base per environment (demo trading streams mainnet data).
WS_URLS: dict[Environment, str] = {
    Environment.Mainnet: "wss://fstream.binance.com",
    Environment.Testnet: "wss://fstream.binancefuture.com",
    Environment.Demo: "wss://fstream.binance.com",
}

DEFAULT_STREAMS = ("depth@100ms", "aggTrade", "markPrice")


def stream_names(symbols: list[str], kinds: tuple[str, ...] = DEFAULT_STREAMS) -> list[str]:
    """``<symbol>@<kind>`` for every symbol and kind (lower-case symbols)."""
    return [f"{s.lower()}@{k}" for s in symbols for k in kinds]


def combined_url(ws_base: str, streams: list[str]) -> str:
    """``<base>/stream?streams=a/b/c``: every payload arrives as ``{"stream","data"}``."""
    return f"{ws_base.rstrip('/')}/stream?streams={'/'.join(streams)}"
