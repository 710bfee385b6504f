"""The feed process's heartbeat: it is alive, whether or not the market moves.

Every feed process (replay, synthetic, live venue) publishes ``FeedHeartbeat{ex, ts, limit_ms}``
on ``{root}/feed/{ex}/hb`` (QoS 0) every ``limit / 4``, from its own scheduler (so a frozen
process, SIGSTOP or a blocked loop, stops its heartbeats too). A strategy's env that hears
neither market data nor a heartbeat of a feed for ``limit_ms`` tells the strategy that feed is
stale. ``limit`` is ``[source] heartbeat_s`` of the feed's config, by default
:data:`DEFAULT_HEARTBEAT_S` of its source kind.
"""

from __future__ import annotations

import logging

from mlthon.basics.mlt_enum import Exchange
from mlthon.infra.bus.bus import BusBase
from mlthon.infra.bus.messages import FeedHeartbeat
from mlthon.infra.bus.topics import Topics
from mlthon.infra.clock import NS_PER_S, Handle, Scheduler

log = logging.getLogger(__name__)

# Silence (s) after which a feed counts as stale, by source kind. Replays and synthetic markets
# run beside the strategy on one machine: a limit of 1.5 s tells the strategy of a frozen feed
# within 2 s (the env checks every eighth of the limit). A live feed process may sit across a
# network from its strategies: 5 s.
DEFAULT_HEARTBEAT_S = {"live": 5.0, "replay": 1.5, "synthetic": 1.5}
# Below this the heartbeats (4 per limit) would be a load of their own.
MIN_HEARTBEAT_S = 0.1


class HeartbeatSender:
    """Publishes one ``FeedHeartbeat`` per exchange every ``limit_s / 4``.

    Args:
        bus: where to publish.
        scheduler: the feed's scheduler (wall clock in a feed process; its ``now_ns`` is the
            heartbeat's ``ts``).
        topics: the topic layout.
        limit_s: the silence after which the feed counts as stale (``limit_ms`` on the wire).
        exchanges: the exchanges to heartbeat for (more can be added with :meth:`add`).
    """

    def __init__(
        self,
        bus: BusBase,
        scheduler: Scheduler,
        topics: Topics,
        limit_s: float,
        exchanges: tuple[Exchange, ...] = (),
    ) -> None:
        if not limit_s > 0:
            raise ValueError(f"limit_s must be positive, got {limit_s!r}")
        self.bus = bus
        self.scheduler = scheduler
        self.topics = topics
        self.limit_ms = max(1, round(limit_s * 1000))
        self.period_ns = max(1, int(limit_s * NS_PER_S) // 4)
        self.exchanges: list[Exchange] = []
        self._topics: list[str] = []
        self.sent = 0
        self._timer: Handle | None = None
        for ex in exchanges:
            self.add(ex)

    def add(self, exchange: Exchange) -> None:
        """Heartbeat for ``exchange`` too (once is enough; repeats are ignored)."""
        if exchange not in self.exchanges:
            self.exchanges.append(exchange)
            self._topics.append(self.topics.feed_heartbeat(exchange))

    def start(self) -> None:
        """Beat now, then every ``limit / 4`` until :meth:`stop`."""
        if self._timer is None:
            log.info(
                "feed: heartbeat every %.3fs (stale after %dms)", self.period_ns / NS_PER_S,
                self.limit_ms,
            )  # fmt: skip
            self._beat()

    def stop(self) -> None:
        """No more heartbeats."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _beat(self) -> None:
        now = self.scheduler.now_ns()
        for ex, topic in zip(self.exchanges, self._topics, strict=True):
            self.bus.publish(topic, FeedHeartbeat(ex=ex.value, ts=now, limit_ms=self.limit_ms))
            self.sent += 1
        self._timer = self.scheduler.call_later(self.period_ns, self._beat)
