"""The live Bybit v5 feed (linear): ``orderbook.<depth>``, ``publicTrade`` and ``tickers`` per
instrument; a gap resubscribes that instrument's book topic only (its first message is a fresh
snapshot); ``{"op":"ping"}`` every 20 s.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable

from mlthon.basics.instrument import Instrument
from mlthon.basics.mlt_enum import Environment, Exchange
from mlthon.feeds.bybit_v5.parse import BybitDecoder
from mlthon.feeds.bybit_v5.ws import PING, WS_URLS, book_topic, request, topics
from mlthon.feeds.events import Event
from mlthon.feeds.live import LiveFeedBase
from mlthon.infra.bus.messages import Msg
from mlthon.venues.transport import WsConnection

log = logging.getLogger(__name__)

_MAX_ARGS = 10


class BybitV5Feed(LiveFeedBase):
    """Bybit v5 live market data.

    Args:
        instruments: the instruments (those of Bybit are used).
        emit: receives our bus messages.
        now_ns: the clock.
        environment: picks the URL (overridden by ``ws_url``).
        ws_url: URL override (tests, proxies).
        depth: the book depth subscribed (1, 50, 200, 500 for linear).
        ping_interval_s: the application ping period.
        **kw: see :class:`~mlthon.feeds.live.LiveFeedBase`.
    """

    exchange = Exchange.Bybit
    resync_on_connect = False

    def __init__(
        self,
        instruments: list[Instrument],
        emit: Callable[[Msg], None],
        now_ns: Callable[[], int],
        *,
        environment: Environment = Environment.Mainnet,
        ws_url: str = "",
        depth: int = 50,
        ping_interval_s: float = 20.0,
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
        self.ws_url = ws_url or WS_URLS[environment]
        self.depth = depth
        self.ping_interval_s = ping_interval_s
        self.decoder = BybitDecoder()

    def url(self) -> str:
        """The public linear stream."""
        return self.ws_url

    def ping_payload(self) -> str | None:
        """``{"op":"ping"}``."""
        return PING

    async def on_open(self, conn: WsConnection) -> None:
        """Subscribe every instrument's topics (10 per request); a new decoder per connection."""
        self.decoder = BybitDecoder()
        args = [t for inst in self.instruments for t in topics(inst.name, self.depth)]
        for k in range(0, len(args), _MAX_ARGS):
            await conn.send(request("subscribe", args[k : k + _MAX_ARGS]))

    def decode(self, raw: bytes) -> list[Event]:
        """The events of one frame (replies to requests are ignored)."""
        return self.decoder.decode(raw)

    async def resync(self, inst: Instrument, conn: WsConnection) -> None:
        """Unsubscribe and resubscribe ``inst``'s book topic: a snapshot follows."""
        topic = book_topic(inst.name, self.depth)
        await conn.send(request("unsubscribe", [topic]))
        await conn.send(request("subscribe", [topic]))
