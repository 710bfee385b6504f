"""The in-process bus: the same interface as MQTT, for backtests and single-process runs.

Messages are handed over as objects (no encoding) through a FIFO drained by the scheduler, so a
publish never runs a handler re-entrantly and the order of delivery is the order of publishing.
Retained messages are kept per topic and given to later subscribers, as a broker would.
"""

from __future__ import annotations

import logging
from collections import deque
from typing import Any

from mlthon.infra.bus.bus import BusBase, Handler, Subscription, SubscriptionTable
from mlthon.infra.bus.messages import Msg
from mlthon.infra.bus.topics import topic_matches
from mlthon.infra.clock import Scheduler

log = logging.getLogger(__name__)


class InProcBus(BusBase):
    """A bus inside one process, on one scheduler.

    Args:
        scheduler: runs the deliveries.
        redelivers: False when nothing publishes a message twice (a backtest): gateways then skip
            the redelivery check of each request. True (the default) for tests and tools that
            play a broker's QoS 1 redeliveries by publishing again.
    """

    lossless = True

    def __init__(self, scheduler: Scheduler, *, redelivers: bool = True) -> None:
        super().__init__()
        self.redelivers = redelivers
        self._scheduler = scheduler
        self._table = SubscriptionTable()
        self._queue: deque[tuple[str, Any, Subscription | None]] = deque()
        self._scheduled = False
        self._retained: dict[str, Any] = {}
        self.delivered = 0
        self.handler_errors = 0

    @property
    def connected(self) -> bool:
        return True

    def publish(self, topic: str, msg: Msg, *, qos: int = 0, retain: bool = False) -> None:
        if retain:
            self._retained[topic] = msg
        self._queue.append((topic, msg, None))
        if not self._scheduled:
            self._scheduled = True
            self._scheduler.call_soon(self.drain)

    def publish_now(self, topic: str, msg: Msg) -> None:
        """Publish ``msg`` and deliver it, with everything its handlers publish, before returning.

        For the driver of a backtest, which owns the loop: the same deliveries in the same order
        as :meth:`publish` followed by the scheduler running the drain, without the scheduler's
        round trip (most of a market-data message's dispatch). The driver calls it when nothing
        waits to run soon (``scheduler.soon_queue``); should messages wait all the same, this one
        is queued behind them as :meth:`publish` queues it, for the scheduler's next run.
        """
        if self._queue or self._scheduled:  # others first: queued behind them (FIFO), as publish
            self.publish(topic, msg)
            return
        targets = self._table.cache.get(topic)
        if targets is None:
            targets = self._table.routes(topic)
        # What the handlers publish meanwhile is queued, not scheduled: drained right after.
        self._scheduled = True
        try:
            self.delivered += self._deliver(topic, msg, targets)
        finally:
            self._scheduled = False
        if self._queue:
            self.drain()

    def subscribe(self, pattern: str, handler: Handler, *, qos: int = 0) -> Subscription:
        sub = Subscription(pattern, handler, qos)
        self._table.add(sub)
        for topic, msg in self._retained.items():
            if topic_matches(pattern, topic):
                # A retained message owed to this new subscriber only.
                self._queue.append((topic, msg, sub))
        if self._queue and not self._scheduled:
            self._scheduled = True
            self._scheduler.call_soon(self.drain)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self._table.remove(sub)

    def drain(self) -> None:
        """Deliver every queued message (and those their handlers publish) in FIFO order."""
        self._scheduled = False
        queue = self._queue
        pop = queue.popleft
        cache = self._table.cache
        routes = self._table.routes
        deliver = self._deliver
        delivered = 0
        while queue:
            topic, msg, only = pop()
            if only is None:
                targets = cache.get(topic)
                if targets is None:
                    targets = routes(topic)
            else:
                targets = [only]
            delivered += deliver(topic, msg, targets)
        self.delivered += delivered

    def _deliver(self, topic: str, msg: Msg, targets: list[Subscription]) -> int:
        """Hand ``msg`` to each active subscription of ``targets``; returns how many."""
        delivered = 0
        for sub in targets:
            if sub.active:
                delivered += 1
                try:
                    sub.handler(topic, msg)
                except Exception:
                    # Handlers guard strategy code themselves; this only catches infra bugs.
                    self.handler_errors += 1
                    log.exception("in-process bus: handler for %r failed on %r", sub.pattern, topic)
        return delivered
