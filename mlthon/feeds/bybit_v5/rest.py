"""Bybit v5 public REST for the feed: ``GET /v5/market/orderbook`` to cross-check a book.

The live feed resyncs by resubscribing (the first message of a subscription is a snapshot), so
this is a tool for checks and for tools, not part of the sync procedure. I/O only, errors
translated to :mod:`mlthon.venues.errors`.
"""

from __future__ import annotations

import asyncio

import aiohttp

from mlthon.basics.errors import RateLimited
from mlthon.basics.mlt_enum import Environment
from mlthon.venues.errors import VenueTimeout, VenueUnavailable

REST_URLS: dict[Environment, str] = {
    Environment.Mainnet: "https://api.bybit.com",
    Environment.Testnet: "https://api-testnet.bybit.com",
    Environment.Demo: "https://api-demo.bybit.com",
}


async def fetch_orderbook(
    session: aiohttp.ClientSession,
    base_url: str,
    symbol: str,
    limit: int = 50,
    timeout_s: float = 10.0,
) -> bytes:
    """``GET /v5/market/orderbook?category=linear&symbol=&limit=``: the raw answer.

    Raises:
        RateLimited: HTTP 403 / 429. VenueTimeout: no answer in time.
        VenueUnavailable: any other failure.
    """
    url = f"{base_url.rstrip('/')}/v5/market/orderbook"
    params = {"category": "linear", "symbol": symbol, "limit": str(limit)}
    try:
        async with asyncio.timeout(timeout_s), session.get(url, params=params) as resp:
            body = await resp.read()
            status = resp.status
    except TimeoutError as exc:
        raise VenueTimeout(f"GET /v5/market/orderbook {symbol}") from exc
    except aiohttp.ClientError as exc:
        raise VenueUnavailable(f"bybit orderbook {symbol}: {type(exc).__name__}: {exc}") from exc
    if status in (403, 429):
        raise RateLimited(1.0)
    if status >= 400:
        raise VenueUnavailable(f"bybit orderbook {symbol}: HTTP {status}")
    return body
