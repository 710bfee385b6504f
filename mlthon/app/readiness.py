"""Before ``mlthon run`` starts the strategy: the gateway and the feed must say they are up, and
the Telegram bridge when the run has one (an alert the strategy sends in its first second, a
risk halt, must not be published before anyone listens).

:class:`VenueReadiness` reads the retained ``GatewayStatus`` and feed-wide ``FeedStatus`` of one
exchange and waits, bounded, until the gateway says ``ReadyToTrade`` and the feed says it is
streaming (``SnapshotEnd``), both stamped after the parts were started (a previous run's retained
status, or a dead process's last will, does not count). So the strategy's first order never
meets "no gateway for Sim has reported".
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from mlthon.basics.mlt_enum import Exchange, FeedHandlerStatus, GtwStatus
from mlthon.infra.bus import messages as m
from mlthon.infra.bus.bus import BusBase, Subscription
from mlthon.infra.bus.topics import Topics
from mlthon.infra.ops.heartbeat import FEED_LOST, GATEWAY_LOST

log = logging.getLogger(__name__)


class VenueReadiness:
    """The gateway's and the feed's latest statuses for one exchange.

    Args:
        bus: a connected bus.
        topics: the topic layout.
        exchange: the venue.
        since_ns: statuses stamped before this (wall clock, ns) are not counted.
    """

    def __init__(
        self,
        bus: BusBase,
        topics: Topics,
        exchange: Exchange,
        since_ns: int,
        telegram: str | None = None,
    ) -> None:
        self.bus = bus
        self.exchange = exchange
        self.since_ns = since_ns
        self.telegram_client = telegram
        self.gateway: m.GatewayStatus | None = None
        self.feed: m.FeedStatus | None = None
        self.bridge: m.ComponentStatus | None = None
        self._changed = asyncio.Event()
        self._subs: list[Subscription] = [
            bus.subscribe(topics.gtw_status(exchange), self._on_status, qos=1),
            bus.subscribe(topics.feed_status(exchange), self._on_status, qos=1),
        ]
        if telegram is not None:
            self._subs.append(
                bus.subscribe(topics.component_status("telegram", telegram), self._on_status, qos=1)
            )

    def _on_status(self, topic: str, msg: Any) -> None:
        if isinstance(msg, m.GatewayStatus) and msg.exchange is self.exchange:
            self.gateway = msg
        elif isinstance(msg, m.FeedStatus) and msg.ex == self.exchange.value and not msg.iid:
            self.feed = msg
        elif isinstance(msg, m.ComponentStatus) and msg.name == self.telegram_client:
            self.bridge = msg
        else:
            return
        self._changed.set()

    def bridge_up(self) -> bool:
        """The Telegram bridge (if the run has one) said it is up since ``since_ns``."""
        b = self.bridge
        if self.telegram_client is None:
            return True
        return b is not None and b.state == "up" and b.ts >= self.since_ns

    def gateway_up(self) -> bool:
        """The gateway said ReadyToTrade since ``since_ns``."""
        g = self.gateway
        return (
            g is not None
            and g.status is GtwStatus.ReadyToTrade
            and g.detail != GATEWAY_LOST
            and g.ts >= self.since_ns
        )

    def feed_up(self) -> bool:
        """The feed said it is streaming since ``since_ns``."""
        f = self.feed
        return (
            f is not None
            and f.status is FeedHandlerStatus.SnapshotEnd
            and f.detail != FEED_LOST
            and f.ts >= self.since_ns
        )

    def missing(self) -> list[str]:
        """What is not up yet, with the last status heard."""
        out = []
        ex = self.exchange.name
        if not self.gateway_up():
            g = self.gateway
            last = f"{g.status.name} {g.detail!r}" if g is not None else "nothing heard"
            out.append(f"the {ex} gateway has not said ReadyToTrade (last: {last})")
        if not self.feed_up():
            f = self.feed
            last = f"{f.status.name} {f.detail!r}" if f is not None else "nothing heard"
            out.append(f"the {ex} feed has not said it is streaming (last: {last})")
        if not self.bridge_up():
            b = self.bridge
            last = f"{b.state} {b.detail!r}" if b is not None else "nothing heard"
            out.append(f"the Telegram bridge has not said it is up (last: {last})")
        return out

    async def wait(self, timeout_s: float, *, give_up: asyncio.Event) -> list[str]:
        """Wait until both are up, ``timeout_s`` passed or ``give_up`` is set; returns what is
        still missing (empty: both are up)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                while self.missing() and not give_up.is_set():
                    self._changed.clear()
                    stopper = asyncio.ensure_future(give_up.wait())
                    changed = asyncio.ensure_future(self._changed.wait())
                    try:
                        await asyncio.wait({stopper, changed}, return_when=asyncio.FIRST_COMPLETED)
                    finally:
                        stopper.cancel()
                        changed.cancel()
        return self.missing()

    def close(self) -> None:
        """Stop listening."""
        for sub in self._subs:
            self.bus.unsubscribe(sub)
        self._subs.clear()
