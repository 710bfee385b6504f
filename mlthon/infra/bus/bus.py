"""The transport seam: one interface, an in-process and an MQTT implementation.

A bus moves :mod:`mlthon.infra.bus.messages` structs between components. Handlers are plain
functions ``handler(topic, msg)`` called from the reactor, one at a time, never from inside
:meth:`BusBase.publish`: publishing only queues the message, so an answer always arrives in a later
callback (the rule the strategy API promises).
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

from mlthon.infra.bus.messages import Msg
from mlthon.infra.bus.topics import topic_matches

Handler = Callable[[str, Any], None]
ConnectionListener = Callable[[bool], None]

log = logging.getLogger(__name__)


class Subscription:
    """A live subscription; pass it to :meth:`BusBase.unsubscribe` to end it."""

    __slots__ = ("active", "handler", "pattern", "qos")

    def __init__(self, pattern: str, handler: Handler, qos: int) -> None:
        self.pattern = pattern
        self.handler = handler
        self.qos = qos
        self.active = True

    def __repr__(self) -> str:
        return f"Subscription({self.pattern!r})"


class SubscriptionTable:
    """The subscriptions of one bus and, per topic, the subscriptions it reaches (cached: the
    wildcard match runs once per topic, not once per message)."""

    __slots__ = ("cache", "subs")

    _CACHE_MAX = 100_000

    def __init__(self) -> None:
        self.subs: list[Subscription] = []
        self.cache: dict[str, list[Subscription]] = {}

    def add(self, sub: Subscription) -> None:
        self.subs.append(sub)
        self.cache.clear()

    def remove(self, sub: Subscription) -> bool:
        """Drop ``sub``; True if no subscription is left on its pattern."""
        sub.active = False
        if sub in self.subs:
            self.subs.remove(sub)
        self.cache.clear()
        return not any(s.pattern == sub.pattern for s in self.subs)

    def routes(self, topic: str) -> list[Subscription]:
        """The subscriptions whose pattern matches ``topic``."""
        found = self.cache.get(topic)
        if found is None:
            found = [s for s in self.subs if topic_matches(s.pattern, topic)]
            if len(self.cache) > self._CACHE_MAX:
                self.cache.clear()
            self.cache[topic] = found
        return found


class BusBase(ABC):
    """Publish/subscribe between mlthon components.

    Life cycle: ``async with bus:`` connects (the MQTT bus keeps reconnecting in the background
    until the block ends); :attr:`connected` tells the current state and listeners added with
    :meth:`add_connection_listener` hear every change.
    """

    #: True for a bus that delivers every message published (the in-process bus). Over MQTT,
    #: market data go at QoS 0 and can be lost (a reconnect, a broker restart, a slow consumer):
    #: the env then checks the feed's per-instrument sequence numbers.
    lossless: bool = False
    #: False for a bus that delivers each publish exactly once (a backtest's in-process bus):
    #: gateways then skip telling QoS 1 redeliveries from new requests (without a journal).
    redelivers: bool = True

    def __init__(self) -> None:
        self._listeners: list[ConnectionListener] = []

    @abstractmethod
    def publish(self, topic: str, msg: Msg, *, qos: int = 0, retain: bool = False) -> None:
        """Queue ``msg`` for ``topic`` and return at once.

        While disconnected, QoS 1 messages wait in a bounded queue and are sent on reconnect;
        QoS 0 messages are dropped and counted. The last ``retain`` message of each topic is
        published again after every reconnect (a broker restart or a last will may have replaced
        it), unless a newer one waits already.
        """

    @abstractmethod
    def subscribe(self, pattern: str, handler: Handler, *, qos: int = 0) -> Subscription:
        """Call ``handler(topic, msg)`` for every message on topics matching ``pattern``."""

    @abstractmethod
    def unsubscribe(self, sub: Subscription) -> None:
        """End a subscription; its handler is not called again."""

    @property
    @abstractmethod
    def connected(self) -> bool:
        """True while messages can flow."""

    async def wait_connected(self, timeout_s: float = 10.0) -> None:
        """Wait until messages can flow (raises TimeoutError). Immediate when connected."""
        return None

    def before_acks(self, fn: Callable[[], None]) -> bool:
        """Run ``fn`` once the handlers of the messages being delivered now have run and before
        their acknowledgements reach the broker (a journal commits there, so that a request the
        broker counts as delivered is always in the journal). False when there is nothing to
        hold back (not inside a delivery, or a bus without acknowledgements): the caller then
        runs ``fn`` its own way."""
        return False

    def add_connection_listener(self, listener: ConnectionListener) -> None:
        """Call ``listener(connected)`` on every connection change."""
        self._listeners.append(listener)

    def _notify_connection(self, up: bool) -> None:
        for listener in list(self._listeners):
            try:
                listener(up)
            except Exception:
                log.exception("bus connection listener %r failed", listener)

    async def __aenter__(self) -> BusBase:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None
