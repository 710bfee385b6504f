"""A websocket connection on aiohttp with errors translated to ours (venue folders use it).

Only this module and the venue folders touch aiohttp; callers see
:class:`~mlthon.venues.errors.VenueUnavailable` for every transport failure.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp

from mlthon.venues.errors import VenueUnavailable


def safe_url(url: str) -> str:
    """The URL without its last path segment (a listen key there is a credential)."""
    head, _, _ = url.rpartition("/")
    return f"{head}/…"


class WsConnection:
    """One open websocket: :meth:`receive` frames, :meth:`send` text."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, url: str) -> None:
        self._ws = ws
        self.url = url

    async def receive(self) -> bytes | None:
        """The next text or binary frame; None once the connection is closed.

        Raises:
            VenueUnavailable: the connection failed.
        """
        try:
            msg = await self._ws.receive()
        except aiohttp.ClientError as exc:
            raise VenueUnavailable(f"websocket: {type(exc).__name__}: {exc}") from exc
        if msg.type is aiohttp.WSMsgType.TEXT:
            text: str = msg.data
            return text.encode()
        if msg.type is aiohttp.WSMsgType.BINARY:
            raw: bytes = msg.data
            return raw
        return None

    async def send(self, text: str) -> None:
        """Send a text frame.

        Raises:
            VenueUnavailable: the connection failed.
        """
        try:
            await self._ws.send_str(text)
        except (aiohttp.ClientError, ConnectionError) as exc:
            raise VenueUnavailable(f"websocket send: {type(exc).__name__}: {exc}") from exc

    async def close(self) -> None:
        """Close the connection (idempotent)."""
        await self._ws.close()


@asynccontextmanager
async def ws_connect(
    url: str, *, timeout_s: float = 10.0, heartbeat_s: float | None = None
) -> AsyncIterator[WsConnection]:
    """Open a websocket (aiohttp answers the venue's pings itself).

    Raises:
        VenueUnavailable: it could not be opened.
    """
    session = aiohttp.ClientSession()
    try:
        try:
            async with asyncio.timeout(timeout_s):
                ws = await session.ws_connect(url, heartbeat=heartbeat_s, autoping=True)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise VenueUnavailable(
                f"websocket {safe_url(url)}: {type(exc).__name__}: {exc}"
            ) from exc
        conn = WsConnection(ws, url)
        try:
            yield conn
        finally:
            await conn.close()
    finally:
        await session.close()
