"""Binance USD-M public REST for the feed: the depth snapshot. I/O only (aiohttp), errors
translated to :mod:`mlthon.venues.errors`."""

from __future__ import annotations

import asyncio

import aiohttp

from mlthon.basics.errors import RateLimited
from mlthon.basics.mlt_enum import Environment
from mlthon.venues.errors import VenueTimeout, VenueUnavailable

REST_URLS: dict[Environment, str] = {
    Environment.Mainnet: "https://fapi.binance.com",
    Environment.Testnet: "https://testnet.binancefuture.com",
    Environment.Demo: "https://fapi.binance.com",
}


async def fetch_depth(
    session: aiohttp.ClientSession,
    base_url: str,
    symbol: str,
    limit: int = 1000,
    timeout_s: float = 10.0,
) -> bytes:
    """``GET /fapi/v1/depth?symbol=&limit=``: the raw answer body.

    Raises:
        RateLimited: HTTP 429 / 418. VenueTimeout: no answer in time.
        VenueUnavailable: any other failure.
    """
    url = f"{base_url.rstrip('/')}/fapi/v1/depth"
    try:
        async with asyncio.timeout(timeout_s):
            async with session.get(url, params={"symbol": symbol, "limit": str(limit)}) as resp:
                body = await resp.read()
                status = resp.status
                retry = resp.headers.get("Retry-After", "")
    except TimeoutError as exc:
        raise VenueTimeout(f"GET /fapi/v1/depth {symbol}") from exc
    except aiohttp.ClientError as exc:
        raise VenueUnavailable(f"binance depth {symbol}: {type(exc).__name__}: {exc}") from exc
    if status in (418, 429):
        raise RateLimited(float(retry) if retry.isdigit() else 60.0)
    if status >= 400:
        raise VenueUnavailable(f"binance depth {symbol}: HTTP {status} {body[:200]!r}")
    return body
