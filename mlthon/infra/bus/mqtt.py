"""The MQTT bus: :class:`BusBase` over a real broker (mosquitto).

* **One ordered path.** Every publish, and every subscribe made while earlier publishes still
  wait, goes through one outbox (:mod:`mlthon.infra.bus.outbox`) in call order: a ``subscribe``
  followed by a ``publish`` reaches the broker in that order (the login handshake relies on it).
  While the connection is up and nothing waits, a publish is handed to the connection at once
  (no task switch); it is written on the loop's next turn. Publishing never blocks.
* **At-least-once for QoS 1.** A QoS 1 message leaves the outbox only when its PUBACK came. When
  the connection drops, every unacknowledged one is sent again after the reconnect, in order,
  before anything newer (receivers drop repeats by id). At most ``max_inflight`` wait for their
  PUBACK at a time; the rest wait in the outbox. While the broker is away QoS 1 messages wait,
  bounded by ``max_outbox`` (the oldest are dropped past it, counted and logged); QoS 0 messages
  are dropped and counted.
* **Persistent sessions** where the caller asks (``clean_session=False`` and a stable
  ``client_id``): the broker keeps the subscriptions and the QoS 1 messages queued for the
  process while it is away.
* **Acknowledged after handling.** An incoming QoS 1 message is acknowledged (PUBACK) only after
  its handlers ran, so a process killed while handling it gets it again (persistent session).
* **Back-pressure.** While more than ``hold_input_at`` messages wait in the outbox behind the
  window of unacknowledged ones (the process answers faster than the broker takes its answers),
  incoming QoS 1 messages are held, unhandled and unacknowledged; once the outbox is down to
  half that, they are handled in order, as many as keep it under the bound. The backlog of a
  process that cannot keep up thus stays at its input, where the age of each request shows it
  (a gateway refuses what waited too long, ``GatewayOverloaded``), instead of growing in its
  outbox, where nothing sees it; and a process killed meanwhile gets the held messages again
  (they were never acknowledged; so does a persistent session whose link drops, while a clean
  session handles them then). At most ``max_outbox`` are held (past it the oldest is handled at
  once). QoS 0 messages (market data) are not held.
* **Reconnect and restore.** Capped exponential back-off with full jitter, reset after each
  successful connect. On every connect the bus subscribes to all its patterns (one SUBSCRIBE,
  once per connect), then sends what waits. After a *re*-connect it also publishes again the last
  retained message it published on each topic (unless a newer one for that topic still waits in
  the outbox): a broker restart without persistence, or a last will the broker published when
  the link broke, would otherwise leave every other process with a stale status (the gateway's
  and feed's ``Connecting`` / ``Disconnected`` wills, strategy and component statuses).
* **One client id, one connection.** The broker keeps one connection per client id: when a
  second client connects under the same id, mosquitto closes the first one's connection
  ("Client X already connected, closing old connection"). MQTT 3.1.1 tells the client nothing
  more (MQTT 5 defines a "session taken over" reason, which mosquitto 2.0.11 does not send, and
  its receive maximum of 20 would cap the window of unacknowledged messages), and two clients
  that both reconnect knock each other off for ever. The bus notices the pattern: the broker
  closed the connection within :data:`TAKEOVER_QUICK_S` of accepting it and took the next one
  at once, :data:`TAKEOVER_LOSSES` times in a row; a bus that once had a connection that lasted
  (the incumbent) also waits until such losses have gone on for :data:`TAKEOVER_PATIENCE_S`, so
  that it outlasts a newcomer that follows the same rule. A broker that restarts quickly looks
  the same, so the bus then reads the broker's uptime (``$SYS/broker/uptime``, retained): only a
  broker that has been up since the first of those losses confirms a takeover. The bus then
  stops reconnecting, logs an ERROR naming the client id and what to do, and ends the
  ``async with`` block it was entered in (the task that entered it is cancelled and the block
  raises :class:`~mlthon.basics.BusError`, as a task group ends on a failed child), so the
  process exits with that message instead of flapping. A broker that hides ``$SYS`` from the
  client never confirms: the bus then keeps reconnecting, as before.
* Every incoming payload is decoded and validated (:func:`~mlthon.infra.bus.codec.decode`); a
  malformed or unknown message is logged with its topic and the start of its payload, counted, and
  dropped. Handlers run on the loop, one at a time, right as messages are read.
* Nagle's algorithm is off on the socket (``TCP_NODELAY``).

The connection itself is :class:`~mlthon.infra.bus.paho_link.PahoLink`: paho-mqtt opens it (TCP,
TLS, CONNECT and CONNACK), then the link reads and writes MQTT packets itself on the asyncio loop
(:mod:`~mlthon.infra.bus.mqtt_packets`); its docstring says why. A malformed or oversized packet
from the broker drops the connection (logged as an error) and the bus reconnects. Only
``infra/bus`` touches paho; its errors become :class:`~mlthon.basics.BusError`.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import random
import ssl
from collections import deque
from collections.abc import Callable
from typing import Any

from mlthon.basics.errors import BusError, MalformedMessage
from mlthon.infra.bus.bus import BusBase, Handler, Subscription, SubscriptionTable
from mlthon.infra.bus.codec import decode, encode
from mlthon.infra.bus.messages import Msg
from mlthon.infra.bus.mqtt_packets import MAX_PACKET
from mlthon.infra.bus.outbox import PUB, SUB, Entry, Outbox
from mlthon.infra.bus.paho_link import PahoLink

log = logging.getLogger(__name__)

#: A connection the broker closes within this many seconds of accepting it, when the next one is
#: accepted at once, may have been taken over by another client with the same id.
TAKEOVER_QUICK_S = 2.0
#: Such losses in a row after which a bus checks the broker's uptime and, if the broker did not
#: restart meanwhile, gives up.
TAKEOVER_LOSSES = 4
#: How long such losses must have gone on before a bus that once had a lasting connection (the
#: incumbent) gives up: a newcomer that follows the same rule gives up first.
TAKEOVER_PATIENCE_S = 30.0
#: The broker's uptime, retained (mosquitto: ``N seconds``, updated every ``sys_interval``).
SYS_UPTIME = "$SYS/broker/uptime"

_ids = itertools.count(1)

#: An incoming QoS 1 message held back: (topic, payload, packet id).
_Held = tuple[bytes, bytes, int]


class MqttBus(BusBase):
    """A bus over an MQTT broker.

    Args:
        host: broker host.
        port: broker port.
        client_id: MQTT client id (default: ``mlthon-<pid>-<n>``).
        username: broker user, if the broker wants one.
        password: its password (never logged).
        max_outbox: most messages kept waiting while the broker is away.
        max_inflight: most QoS 1 messages sent and waiting for their PUBACK at a time.
        reconnect_min_s: first back-off delay.
        reconnect_max_s: back-off cap (2 s: a broker back from a restart is found within it).
        keepalive_s: MQTT keepalive (the broker declares the client gone after 1.5x this).
        will: (topic, message) the broker publishes, retained, if the client disappears
            without disconnecting (a crash, a kill -9, a network cut).
        clean_session: False keeps the broker-side session (subscriptions, QoS 1 messages
            queued while away) across reconnects; needs a stable ``client_id``.
        tls_context: connect with TLS using this context (None: plain TCP).
        connect_timeout_s: how long one connection attempt may take (TCP, TLS and CONNACK).
        hold_input_at: hold incoming QoS 1 messages while this many messages wait in the outbox
            behind the in-flight window (default ``max_inflight``; 0: never hold).
        max_packet: most bytes of one incoming packet; a bigger one drops the connection (the
            broker is broken or hostile) and the bus reconnects.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 1883,
        *,
        client_id: str | None = None,
        username: str | None = None,
        password: str | None = None,
        max_outbox: int = 100_000,
        max_inflight: int = 1000,
        reconnect_min_s: float = 0.1,
        reconnect_max_s: float = 2.0,
        keepalive_s: int = 10,
        will: tuple[str, Msg] | None = None,
        clean_session: bool = True,
        tls_context: ssl.SSLContext | None = None,
        connect_timeout_s: float = 10.0,
        hold_input_at: int | None = None,
        max_packet: int = MAX_PACKET,
    ) -> None:
        super().__init__()
        self.host = host
        self.port = port
        self.client_id = client_id or f"mlthon-{os.getpid()}-{next(_ids)}"
        self._username = username
        self._password = password
        self._keepalive = keepalive_s
        # Last will: published (retained, QoS 1) by the broker if this client vanishes.
        self._will = (will[0], encode(will[1])) if will is not None else None
        self._clean_session = clean_session
        self._tls_context = tls_context
        self._connect_timeout = connect_timeout_s
        self._reconnect_min = reconnect_min_s
        self._reconnect_max = reconnect_max_s
        self._max_packet = max_packet
        self._table = SubscriptionTable()
        self._patterns: dict[str, int] = {}
        self._unsubscribed: set[str] = set()  # to unsubscribe at the broker when possible
        self._outbox = Outbox(max_outbox, max_inflight)
        self._retained: dict[str, Entry] = {}  # topic -> the last retained publish on it
        self._link: PahoLink | None = None
        self._publish: Any = None  # the live link's publish (hot path)
        self._up = False  # the broker accepted the current connection
        self._live = False  # up and nothing waits in the outbox: publish goes straight out
        self._closing = False
        self._gone: asyncio.Future[str] | None = None
        self._runner: asyncio.Task[None] | None = None
        self._owner: asyncio.Task[Any] | None = None  # the task that entered ``async with``
        #: Why the bus gave up (another client took its id over); None while it has not.
        self.failure: BusError | None = None
        self._owner_cancelled = False
        # connections lost right after the broker accepted them, in a row, and since when
        self._quick = 0
        self._quick_since = 0.0
        self._verifying = False  # asking the broker's uptime to confirm a takeover
        self._progress = asyncio.Event()
        self._flushing = 0  # flush() calls waiting
        # Counters, for status pages and tests.
        self.received = 0
        self.sent = 0
        self.malformed = 0
        self.dropped_qos0 = 0
        self.dropped_outbox = 0
        self.connects = 0
        self.handler_errors = 0
        # Inside a read batch: work to run before the batch's acknowledgements are written.
        self._in_batch = False
        self._before_acks: list[Callable[[], None]] = []
        # Back-pressure: incoming QoS 1 messages held while the outbox is backed up.
        self._hold_at = max_inflight if hold_input_at is None else hold_input_at
        self._held: deque[_Held] = deque()
        self._holding = False
        self.held = 0  # messages held so far (counter)

    # --- BusBase ---------------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._up

    def publish(self, topic: str, msg: Msg, *, qos: int = 0, retain: bool = False) -> None:
        if not self._up and not qos and not retain:
            self.dropped_qos0 += 1
            return
        self.publish_raw(topic, encode(msg), qos=qos, retain=retain)

    def publish_raw(
        self, topic: str, payload: bytes, *, qos: int = 0, retain: bool = False
    ) -> None:
        """Publish bytes as they are (tests use it to send malformed messages)."""
        if self._live and not retain:
            # Nothing waits: straight to the connection (market data; a QoS 1 message while
            # the window of unacknowledged ones is open).
            if not qos:
                if self._publish(topic, payload, 0, False) is not None:
                    self.sent += 1
                    return
            elif not self._outbox.window_full:
                receipt = self._publish(topic, payload, 1, False)
                if receipt is not None:
                    self._outbox.sent_at_once(Entry(PUB, topic, payload, 1), receipt)
                    self.sent += 1
                    return
        entry = Entry(PUB, topic, payload, 1 if qos else 0, retain)
        if retain:
            if payload:
                self._retained[topic] = entry
            else:  # an empty retained message clears the topic
                self._retained.pop(topic, None)
        if not self._up and not entry.qos and not retain:
            self.dropped_qos0 += 1
            return
        self._put(entry)

    def subscribe(self, pattern: str, handler: Handler, *, qos: int = 0) -> Subscription:
        sub = Subscription(pattern, handler, qos)
        self._table.add(sub)
        known = self._patterns.get(pattern)
        # A pattern subscribed already is subscribed again for a new handler: the broker then
        # sends its retained messages again (MQTT 3.1.1 §3.8.4), which the new handler would
        # otherwise never see (the handlers there already see them twice, as after a reconnect).
        level = qos if known is None else max(known, qos)
        self._patterns[pattern] = level
        self._unsubscribed.discard(pattern)
        if self._live and self._link is not None:
            self._link.subscribe([(pattern, level)])
        elif self._up:
            # Behind the publishes that wait: the broker sees them in call order.
            self._put(Entry(SUB, pattern, b"", level))
        # Not connected: subscribed on connect, with every other pattern.
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        if self._closing:
            sub.active = False
            return
        if self._table.remove(sub):
            self._patterns.pop(sub.pattern, None)
            # Its handlers are gone already; the broker hears of it when nothing waits.
            if self._live and self._link is not None:
                self._link.unsubscribe([sub.pattern])
            else:
                self._unsubscribed.add(sub.pattern)

    # --- the outbox ------------------------------------------------------------------------------

    def _put(self, entry: Entry) -> None:
        outbox = self._outbox
        before = outbox.dropped
        outbox.put(entry)
        if outbox.dropped != before:
            self._note_dropped(outbox.dropped - before)
        if self._up:
            self._drain()

    def _note_dropped(self, n: int) -> None:
        def marks(k: int) -> int:  # log at 1, 10, 100, 1000, then every 10,000
            return sum(k >= m for m in (1, 10, 100, 1000)) + k // 10_000

        before = self.dropped_outbox
        self.dropped_outbox += n
        if marks(self.dropped_outbox) != marks(before):
            log.warning(
                "mqtt[%s]: outbox full (%d); %d oldest messages dropped so far",
                self.client_id,
                self._outbox.bound,
                self.dropped_outbox,
            )

    def _drain(self) -> None:
        """Hand the waiting entries to the connection, in order, as far as the window allows."""
        link = self._link
        outbox = self._outbox
        queue = outbox.queue
        if link is None or not self._up:
            self._live = False
            return
        publish = link.publish
        while queue:
            entry = queue[0]
            if entry.kind == SUB:
                if not link.subscribe([(entry.topic, entry.qos)]):
                    self._live = False
                    return
                outbox.sent(entry, None)
                continue
            if entry.qos and outbox.window_full:
                self._live = False
                return
            receipt = publish(entry.topic, entry.payload, entry.qos, entry.retain)
            if receipt is None:  # the link is going down: sent again after the reconnect
                self._live = False
                return
            outbox.sent(entry, receipt if entry.qos else None)
            self.sent += 1
        if self._unsubscribed:
            link.unsubscribe(sorted(self._unsubscribed))
            self._unsubscribed.clear()
        self._live = True

    # --- connection callbacks (called by the link, on the loop) -----------------------------------

    def _on_connected(self, session_present: bool) -> None:
        link = self._link
        if link is None or self._closing:
            return
        reconnect = self.connects > 0
        self.connects += 1
        self._up = True
        self._publish = link.publish
        # Subscriptions: all of them, in one SUBSCRIBE, once per connect (a persistent session
        # may have kept them; subscribing again also brings the retained messages again).
        if self._patterns:
            link.subscribe(list(self._patterns.items()))
        if self._unsubscribed:
            link.unsubscribe(sorted(self._unsubscribed))
            self._unsubscribed.clear()
        if self._verifying:
            link.subscribe([(SYS_UPTIME, 0)])
        if reconnect:
            self._reannounce()
        waiting = len(self._outbox)
        self._drain()
        log.info(
            "mqtt[%s]: connected to %s:%d (session %s, %d messages waited)",
            self.client_id,
            self.host,
            self.port,
            "kept" if session_present else "new",
            waiting,
        )
        self._notify_connection(True)
        self._progress.set()

    def _reannounce(self) -> None:
        """Queue again the last retained message of each topic that does not wait already."""
        again = [entry for entry in self._retained.values() if not entry.pending]
        for entry in again:
            entry.pending = True
            self._outbox.put(entry)
        if again:
            log.info(
                "mqtt[%s]: publishing again %d retained message(s): %s",
                self.client_id,
                len(again),
                ", ".join(e.topic for e in again[:5]) + (" ..." if len(again) > 5 else ""),
            )

    def _on_lost(self, reason: str) -> None:
        self._holding = False
        if self._held:
            if self._clean_session:
                # The broker forgets them with the session: handle them now (their
                # acknowledgements go nowhere).
                self._release_held(None)
            else:
                # Never acknowledged: the broker sends them again after the reconnect, in order.
                self._held.clear()
        if self._before_acks or self._in_batch:
            self._run_before_acks()  # the acks are gone with the link; the work is still due
        self._up = False
        self._live = False
        self._publish = None
        qos0, dropped = self._outbox.rewind()
        self.dropped_qos0 += qos0
        if dropped:
            self._note_dropped(dropped)
        if not self._closing:
            log.warning(
                "mqtt[%s]: connection lost: %s (%d messages wait)",
                self.client_id,
                reason,
                len(self._outbox),
            )
            self._notify_connection(False)
        if self._gone is not None and not self._gone.done():
            self._gone.set_result(reason)
        self._progress.set()

    def before_acks(self, fn: Callable[[], None]) -> bool:
        if not self._in_batch:
            return False
        self._before_acks.append(fn)
        return True

    def _run_before_acks(self) -> None:
        self._in_batch = False
        hooks, self._before_acks = self._before_acks, []
        for fn in hooks:
            try:
                fn()
            except Exception:
                self.handler_errors += 1
                log.exception("mqtt[%s]: work before the acknowledgements failed", self.client_id)

    def _on_read_batch(self) -> None:
        # The acknowledgements of this batch are queued in the link and written on a later turn
        # of the loop: what must precede them (a journal commit) runs now.
        if self._before_acks or self._in_batch:
            self._run_before_acks()
        outbox = self._outbox
        if outbox.inflight and outbox.take_acked():
            if outbox.queue:
                self._drain()
            self._progress.set()
        elif self._flushing:
            self._progress.set()  # a SUBACK may have come
        if self._holding and len(outbox.queue) <= self._hold_at // 2:
            self._holding = False
            link = self._link
            if self._held and link is not None:
                log.debug("mqtt[%s]: handling held messages (%d)", self.client_id, len(self._held))
                self._release_held(link)
                if self._before_acks or self._in_batch:
                    self._run_before_acks()

    def _release_held(self, link: PahoLink | None) -> None:
        """Handle held messages in order (and acknowledge them, if ``link``) while the outbox
        stays under the bound; all of them when the link is gone (``link`` None)."""
        held = self._held
        queue = self._outbox.queue
        bound = self._hold_at
        while held:
            if link is not None and len(queue) > bound:
                self._holding = True
                return
            topic, payload, packet_id = held.popleft()
            self._deliver(topic, payload)
            if link is not None:
                link.ack(packet_id)

    def _on_written(self) -> None:
        self._progress.set()

    def _on_message(
        self, topic: bytes, payload: bytes, qos: int, packet_id: int, retain: bool, dup: bool
    ) -> None:
        """An incoming PUBLISH (called by the link for each one, in order)."""
        if qos:
            link = self._link
            if not self._holding and self._hold_at and len(self._outbox.queue) > self._hold_at:
                self._holding = True
                log.debug(
                    "mqtt[%s]: %d messages wait in the outbox: holding input",
                    self.client_id,
                    len(self._outbox.queue),
                )
            held = self._held
            if self._holding or held:
                # Unhandled and unacknowledged until the outbox drains.
                if len(held) >= self._outbox.bound:
                    old_topic, old_payload, old_id = held.popleft()
                    self._deliver(old_topic, old_payload)
                    if link is not None:
                        link.ack(old_id)
                held.append((topic, payload, packet_id))
                self.held += 1
                return
            self._deliver(topic, payload)
            # Only now: a process killed inside a handler gets the message again.
            if link is not None:
                link.ack(packet_id)
            return
        self._deliver(topic, payload)

    def _deliver(self, raw_topic: bytes, payload: bytes) -> None:
        self._in_batch = True
        self.received += 1
        try:
            topic = raw_topic.decode()
        except UnicodeDecodeError:
            self.malformed += 1
            log.warning(
                "mqtt[%s]: dropped a message on a topic that is not UTF-8: %r",
                self.client_id,
                raw_topic[:80],
            )
            return
        try:
            msg = decode(topic, payload)
        except MalformedMessage as exc:
            if topic.startswith("$SYS/"):
                self._on_sys(topic, payload)
                return
            self.malformed += 1
            log.warning("mqtt[%s]: dropped %s", self.client_id, exc)
        else:
            self._dispatch(topic, msg)

    def _on_sys(self, topic: str, payload: bytes | bytearray) -> None:
        """The broker's uptime, asked for to tell a takeover from a broker restart."""
        if topic != SYS_UPTIME:
            return
        if self._link is not None:  # one answer is enough (a persistent session keeps it)
            self._link.unsubscribe([SYS_UPTIME])
        if not self._verifying:
            return
        self._verifying = False
        try:
            uptime_s = int(payload.split()[0])
        except (ValueError, IndexError):
            log.warning("mqtt[%s]: unreadable broker uptime %r", self.client_id, payload[:40])
            return
        since = asyncio.get_running_loop().time() - self._quick_since
        if uptime_s >= since:
            self._taken_over(self._quick)
            return
        log.info(
            "mqtt[%s]: %d quick connection losses in a row, but the broker restarted meanwhile "
            "(up %d s): not a takeover",
            self.client_id,
            self._quick,
            uptime_s,
        )
        self._quick = 0

    def _dispatch(self, topic: str, msg: Any) -> None:
        for sub in self._table.routes(topic):
            if not sub.active:
                continue
            try:
                sub.handler(topic, msg)
            except Exception:
                # Strategy callbacks are guarded by the reactor; this only catches infra bugs.
                self.handler_errors += 1
                log.exception(
                    "mqtt[%s]: handler for %r failed on %r", self.client_id, sub.pattern, topic
                )

    # --- life cycle ------------------------------------------------------------------------------

    async def __aenter__(self) -> MqttBus:
        self._closing = False
        self.failure = None
        self._owner_cancelled = False
        self._owner = asyncio.current_task()
        self._runner = asyncio.get_running_loop().create_task(
            self._run(), name=f"mqtt[{self.client_id}].run"
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
        owner, self._owner = self._owner, None
        failure = self.failure
        if failure is None or not self._owner_cancelled:
            return
        if exc[0] is None or isinstance(exc[1], asyncio.CancelledError):
            # The cancellation was ours: the block ends with the reason instead.
            if owner is not None:
                owner.uncancel()
            raise failure

    async def wait_connected(self, timeout_s: float = 10.0) -> None:
        """Wait until the broker connection is up (raises TimeoutError; BusError if the bus
        gave up, :attr:`failure`)."""
        if self.failure is not None:
            raise self.failure
        if self._up:
            return
        up = asyncio.Event()

        def listener(connected: bool) -> None:
            if connected:
                up.set()

        self._listeners.append(listener)
        try:
            async with asyncio.timeout(timeout_s):
                await up.wait()
        finally:
            self._listeners.remove(listener)

    def _flushed(self) -> bool:
        link = self._link
        return (
            self._up
            and not self._outbox
            and link is not None
            and not link.want_write()
            and not link.subscribing()
        )

    async def flush(self, timeout_s: float = 5.0) -> bool:
        """Wait until nothing waits in the outbox, every QoS 1 publish is acknowledged, every
        SUBSCRIBE and UNSUBSCRIBE is answered and every packet is written to the socket.

        After it, the broker routes to this bus whatever another connection publishes on a
        pattern subscribed before the call.

        Returns False (and logs what is left) if that did not happen within ``timeout_s``, or
        at once if the broker is not connected.
        """
        if not self._up:
            log.warning(
                "mqtt[%s]: flush while disconnected: %d messages wait in the outbox",
                self.client_id,
                len(self._outbox),
            )
            return False
        self._flushing += 1  # the SUBACKs of a read batch wake it too
        try:
            async with asyncio.timeout(timeout_s):
                while not self._flushed():
                    self._progress.clear()
                    await self._progress.wait()
        except TimeoutError:
            link = self._link
            log.warning(
                "mqtt[%s]: flush timed out after %.1fs: %d queued, %d unacknowledged%s",
                self.client_id,
                timeout_s,
                len(self._outbox.queue),
                len(self._outbox.inflight),
                ", subscriptions unanswered" if link is not None and link.subscribing() else "",
            )
            return False
        finally:
            self._flushing -= 1
        return True

    async def close(self) -> None:
        """Disconnect (cleanly: the broker drops the will) and stop reconnecting."""
        self._closing = True
        link = self._link
        was_up = self._up
        # From now on publishes wait in the outbox; a deliberate close is not a lost
        # connection: listeners are not told.
        self._up = self._live = False
        self._publish = None
        if link is not None and was_up:
            await link.disconnect()
        runner = self._runner
        if runner is not None:
            runner.cancel()
            done, _ = await asyncio.wait({runner}, timeout=3.0)
            if not done:
                log.warning(
                    "mqtt[%s]: connection task did not stop within 3s; left behind", self.client_id
                )
            elif not runner.cancelled() and runner.exception() is not None:
                log.warning(
                    "mqtt[%s]: connection task ended with %r", self.client_id, runner.exception()
                )
            self._runner = None
        if self._link is not None:
            self._link.close()
            self._link = None
        if was_up:
            self._outbox.rewind()
        self._held.clear()  # never acknowledged: a persistent session delivers them again
        self._holding = False

    def _new_link(self) -> PahoLink:
        return PahoLink(
            self.host,
            self.port,
            client_id=self.client_id,
            clean_session=self._clean_session,
            keepalive_s=self._keepalive,
            username=self._username,
            password=self._password,
            will=self._will,
            tls_context=self._tls_context,
            on_message=self._on_message,
            on_connected=self._on_connected,
            on_lost=self._on_lost,
            on_read_batch=self._on_read_batch,
            on_written=self._on_written,
            max_packet=self._max_packet,
        )

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        delay = self._reconnect_min
        lasted = False  # a connection of this bus lasted TAKEOVER_QUICK_S or more
        while not self._closing:
            self._gone = loop.create_future()
            link = self._link = self._new_link()
            try:
                await link.connect(self._connect_timeout)
            except BusError as exc:
                # the broker is away or refuses: not another client's doing
                self._quick = 0
                self._verifying = False
                if not self._closing:
                    log.warning("mqtt[%s]: %s", self.client_id, exc)
            else:
                delay = self._reconnect_min
                up_at = loop.time()
                await self._gone
                if loop.time() - up_at >= TAKEOVER_QUICK_S:
                    lasted = True
                    self._quick = 0
                    self._verifying = False
                elif not self._closing:
                    if not self._quick:
                        self._quick_since = up_at
                    self._quick += 1
                    patience = TAKEOVER_PATIENCE_S if lasted else 0.0
                    # confirmed (or not) by the broker's uptime on the next connection
                    self._verifying = (
                        self._quick >= TAKEOVER_LOSSES
                        and loop.time() - self._quick_since >= patience
                    )
            finally:
                link.close()
            if self._closing:
                break
            # Capped exponential back-off with full jitter.
            await asyncio.sleep(random.uniform(0, delay))
            delay = min(self._reconnect_max, delay * 2)

    def _taken_over(self, losses: int) -> None:
        """Another client uses this client id: stop, say so, end the ``async with`` block."""
        cid = self.client_id
        self.failure = BusError(
            f"MQTT client id {cid!r} is in use by another client: the broker {self.host}:"
            f"{self.port} closed this connection {losses} times in a row right after accepting "
            f"it, as it does when another client connects with the same id (mosquitto logs "
            f"'Client {cid} already connected, closing old connection'); not reconnecting, so "
            "that the two stop knocking each other off. Stop the other process that uses this "
            "id (a second copy of this process?), or give this one its own id"
        )
        log.error("mqtt[%s]: %s", cid, self.failure)
        self._closing = True
        owner = self._owner
        if owner is not None and not owner.done():
            self._owner_cancelled = True
            owner.cancel(f"mqtt[{cid}]: client id taken over")
