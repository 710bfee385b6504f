"""The live Binance USD-M feed: combined streams (``@depth@100ms``, ``@aggTrade``,
``@markPrice``), REST snapshot bridged to the buffered diffs, per-instrument resync on a gap.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable

import aiohttp
import msgspec

from mlthon.basics.instrument import Instrument
from mlthon.basics.mlt_enum import Environment, Exchange
from mlthon.feeds.binance_usdm.parse import BinanceDecoder
from mlthon.feeds.binance_usdm.rest import REST_URLS, fetch_depth
from mlthon.feeds.binance_usdm.ws import DEFAULT_STREAMS, WS_URLS, combined_url, stream_names
from mlthon.feeds.events import Event
from mlthon.feeds.live import LiveFeedBase
from mlthon.infra.bus.messages import Msg
from mlthon.venues.errors import VenueUnavailable
from mlthon.venues.transport import WsConnection

log = logging.getLogger(__name__)


class BinanceUsdmFeed(LiveFeedBase):
    """Binance USD-M live market data.

    Args:
        instruments: the instruments (those of Binance USD-M are used).
        emit: receives our bus messages.
        now_ns: the clock.
        environment: picks the URLs (overridden by ``rest_url`` / ``ws_url``).
        rest_url / ws_url: URL overrides (tests, proxies).
        streams: the stream kinds per symbol.
        depth_limit: levels of the REST snapshot.
        **kw: see :class:`~mlthon.feeds.live.LiveFeedBase`.
    """

    exchange = Exchange.BinanceUsdm

    def __init__(
        self,
        instruments: list[Instrument],
        emit: Callable[[Msg], None],
        now_ns: Callable[[], int],
        *,
        environment: Environment = Environment.Mainnet,
        rest_url: str = "",
        ws_url: str = "",
        streams: tuple[str, ...] = DEFAULT_STREAMS,
        depth_limit: int = 1000,
        silence_timeout_s: float = 30.0,
        reconnect_max_s: float = 30.0,
        resync_min_interval_s: float = 1.0,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(
            instruments,
            emit,
            now_ns,
            silence_timeout_s=silence_timeout_s,
            reconnect_max_s=reconnect_max_s,
            resync_min_interval_s=resync_min_interval_s,
            rng=rng,
            logger=log,
        )
        self.rest_url = rest_url or REST_URLS[environment]
        self.ws_url = ws_url or WS_URLS[environment]
        self.streams = streams
        self.depth_limit = depth_limit
        self.decoder = BinanceDecoder(Exchange.BinanceUsdm)
        self._http: aiohttp.ClientSession | None = None

    def url(self) -> str:
        """The combined-stream URL of every instrument's streams."""
        return combined_url(
            self.ws_url, stream_names([i.name for i in self.instruments], self.streams)
        )

    async def on_open(self, conn: WsConnection) -> None:
        """Nothing to send: the combined-stream URL subscribes; a new decoder per connection."""
        self.decoder = BinanceDecoder(Exchange.BinanceUsdm)
        if self._http is None:
            self._http = aiohttp.ClientSession()

    def decode(self, raw: bytes) -> list[Event]:
        """The events of one combined-stream frame."""
        return self.decoder.decode(raw)

    async def resync(self, inst: Instrument, conn: WsConnection) -> None:
        """Fetch ``inst``'s REST snapshot; the engine bridges it to the buffered diffs."""
        if self._http is None:
            self._http = aiohttp.ClientSession()
        body = await fetch_depth(self._http, self.rest_url, inst.name, self.depth_limit)
        try:
            snap = self.decoder.decode_rest_depth(body, inst.name)
        except msgspec.DecodeError as exc:
            raise VenueUnavailable(f"binance depth {inst.name}: bad answer: {exc}") from exc
        self.feed([snap], "rest")

    async def run(self, stop: asyncio.Event) -> None:
        """Stream until ``stop`` is set (see :meth:`LiveFeedBase.run`), then close the REST
        session."""
        try:
            await super().run(stop)
        finally:
            await self.close()

    async def close(self) -> None:
        """Close the REST session."""
        if self._http is not None:
            await self._http.close()
            self._http = None
