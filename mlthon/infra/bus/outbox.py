"""The MQTT bus's one outbox: what must still reach the broker, in publish order.

An :class:`Entry` is a publish (or a subscribe queued behind earlier publishes). It waits in
:attr:`Outbox.queue` until the connection can take it; a QoS 1 message handed to the connection
then waits in :attr:`Outbox.inflight` until its PUBACK came, and only then leaves the outbox.
When the connection drops, :meth:`Outbox.rewind` puts every unacknowledged message back at the
front of the queue, in its original order, so it is sent again before anything newer
(at-least-once; receivers drop repeats by id).

No I/O here: the bus hands entries to the connection and reports what happened.
"""

from __future__ import annotations

from collections import deque
from typing import Protocol

PUB = 0
SUB = 1


class Delivery(Protocol):
    """What the connection returns for a QoS 1 publish (the link's
    :class:`~mlthon.infra.bus.paho_link.Receipt`)."""

    def is_published(self) -> bool: ...


class Entry:
    """One publish (``kind`` :data:`PUB`) or subscribe (:data:`SUB`, ``qos`` its QoS)."""

    __slots__ = ("delivery", "kind", "payload", "pending", "qos", "retain", "topic")

    def __init__(
        self, kind: int, topic: str, payload: bytes, qos: int, retain: bool = False
    ) -> None:
        self.kind = kind
        self.topic = topic
        self.payload = payload
        self.qos = qos
        self.retain = retain
        #: True while the entry is in the outbox (queued or waiting for its PUBACK).
        self.pending = True
        #: The connection's receipt of a QoS 1 publish in flight.
        self.delivery: Delivery | None = None

    def __repr__(self) -> str:
        kind = "pub" if self.kind == PUB else "sub"
        return f"Entry({kind} {self.topic!r} qos={self.qos} retain={self.retain})"


class Outbox:
    """The ordered outbox of one bus.

    Args:
        bound: most entries kept waiting in the queue; past it the oldest are dropped (counted
            in :attr:`dropped`).
        max_inflight: most QoS 1 messages handed to the connection and not yet acknowledged;
            past it the queue waits (:attr:`window_full`).
    """

    __slots__ = ("bound", "dropped", "inflight", "max_inflight", "queue")

    def __init__(self, bound: int = 100_000, max_inflight: int = 1000) -> None:
        if bound < 1 or max_inflight < 1:
            raise ValueError(f"bound and max_inflight must be >= 1, got {bound}, {max_inflight}")
        self.bound = bound
        self.max_inflight = max_inflight
        self.queue: deque[Entry] = deque()
        self.inflight: deque[Entry] = deque()
        self.dropped = 0

    def __len__(self) -> int:
        return len(self.queue) + len(self.inflight)

    @property
    def window_full(self) -> bool:
        """True when no more QoS 1 message may be handed to the connection."""
        return len(self.inflight) >= self.max_inflight

    def put(self, entry: Entry) -> None:
        """Queue ``entry`` behind everything already queued (dropping the oldest past the
        bound)."""
        self.queue.append(entry)
        if len(self.queue) > self.bound:
            self._drop_oldest()

    def sent(self, entry: Entry, delivery: Delivery | None) -> None:
        """``entry`` (the head of the queue) was handed to the connection.

        A QoS 1 publish stays, waiting for its PUBACK (``delivery`` tells); anything else leaves.
        """
        self.queue.popleft()
        if entry.kind == PUB and entry.qos and delivery is not None:
            entry.delivery = delivery
            self.inflight.append(entry)
        else:
            entry.pending = False

    def sent_at_once(self, entry: Entry, delivery: Delivery) -> None:
        """QoS 1 publish ``entry`` went to the connection without waiting in the queue (the
        queue was empty and the window open): it waits for its PUBACK."""
        entry.delivery = delivery
        self.inflight.append(entry)

    def take_acked(self) -> int:
        """Let the acknowledged QoS 1 messages at the head of :attr:`inflight` leave; how many.

        The broker acknowledges in the order it received (MQTT 3.1.1 §4.6), so an acknowledged
        message behind an unacknowledged one waits for it (and is not sent again, see
        :meth:`rewind`).
        """
        inflight = self.inflight
        n = 0
        while inflight:
            delivery = inflight[0].delivery
            if delivery is None or not delivery.is_published():
                break
            entry = inflight.popleft()
            entry.pending = False
            entry.delivery = None
            n += 1
        return n

    def rewind(self) -> tuple[int, int]:
        """The connection is gone: every unacknowledged QoS 1 message goes back to the front of
        the queue, in order; queued QoS 0 messages that are not retained are dropped (QoS 0 is
        not kept across a lost connection), and so are queued subscribes (the bus subscribes
        to every pattern on connect). Returns (QoS 0 messages dropped, entries dropped by the
        bound)."""
        back: deque[Entry] = deque()
        for entry in self.inflight:
            delivered = entry.delivery is not None and entry.delivery.is_published()
            entry.delivery = None
            if delivered:
                entry.pending = False
            else:
                back.append(entry)
        self.inflight.clear()
        qos0 = 0
        for entry in self.queue:
            if entry.kind != PUB:
                entry.pending = False
            elif entry.qos == 0 and not entry.retain:
                entry.pending = False
                qos0 += 1
            else:
                back.append(entry)
        self.queue = back
        before = self.dropped
        while len(self.queue) > self.bound:
            self._drop_oldest()
        return qos0, self.dropped - before

    def _drop_oldest(self) -> None:
        entry = self.queue.popleft()
        entry.pending = False
        self.dropped += 1
