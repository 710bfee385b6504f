"""The MQTT bus: :class:`BusBase` over a real broker (mosquitto), with aiomqtt 2.x.

* Publishing never blocks the reactor: messages go into an ordered outbox that one writer task
  drains. Subscribes and unsubscribes go through the same outbox, so a ``subscribe`` followed by a
  ``publish`` reaches the broker in that order (the login handshake relies on it).
* While the broker is away, QoS 1 messages wait in a bounded outbox (the oldest are dropped past
  the bound, counted and logged) and QoS 0 messages are dropped and counted. The bus reconnects
  with capped exponential back-off and jitter, restores its subscriptions, then flushes the outbox.
* Every incoming payload is decoded and validated (:func:`~mlthon.infra.bus.codec.decode`); a
  malformed or unknown message is logged with its topic and the start of its payload, counted, and
  dropped. Handlers are called from the reader task, one at a time.
* Nagle's algorithm is switched off on the client socket (``TCP_NODELAY``): with it on, a QoS 1
  request/response round trip takes tens of milliseconds instead of a few hundred microseconds.

Only this module and the Telegram bridge touch aiomqtt/paho; their errors become
:class:`~mlthon.basics.BusError` here.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import random
import socket
import ssl
from collections import deque
from typing import Any

import aiomqtt

from mlthon.basics.errors import MalformedMessage
from mlthon.infra.bus.bus import BusBase, Handler, Subscription, SubscriptionTable
from mlthon.infra.bus.codec import decode, encode
from mlthon.infra.bus.messages import Msg

log = logging.getLogger(__name__)

_NODELAY = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]
_ids = itertools.count(1)

_PUB = 0
_SUB = 1
_UNSUB = 2


class MqttBus(BusBase):
    """A bus over an MQTT broker.

    Args:
        host: broker host.
        port: broker port.
        client_id: MQTT client id (default: ``mlthon-<pid>-<n>``).
        username: broker user, if the broker wants one.
        password: its password (never logged).
        max_outbox: bound of the outbox kept while disconnected.
        reconnect_min_s: first back-off delay.
        reconnect_max_s: back-off cap.
        keepalive_s: MQTT keepalive (the broker declares the client gone after 1.5x this).
        will: (topic, message) the broker publishes, retained, if the client disappears
            without disconnecting (a crash, a kill -9, a network cut).
        clean_session: False keeps the broker-side session (subscriptions, QoS 1 messages
            queued while away) across reconnects; needs a stable ``client_id``.
        tls_context: connect with TLS using this context (None: plain TCP).
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
        reconnect_min_s: float = 0.1,
        reconnect_max_s: float = 5.0,
        keepalive_s: int = 10,
        will: tuple[str, Msg] | None = None,
        clean_session: bool = True,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        super().__init__()
        self.host = host
        self.port = port
        self.client_id = client_id or f"mlthon-{os.getpid()}-{next(_ids)}"
        self._username = username
        self._password = password
        self._keepalive = keepalive_s
        # Last will: published (retained, QoS 1) by the broker if this client vanishes.
        self._will = (
            aiomqtt.Will(will[0], encode(will[1]), qos=1, retain=True) if will is not None else None
        )
        self._clean_session = clean_session
        self._tls_context = tls_context
        self._max_outbox = max_outbox
        self._reconnect_min = reconnect_min_s
        self._reconnect_max = reconnect_max_s
        self._table = SubscriptionTable()
        self._patterns: dict[str, int] = {}
        self._outbox: deque[tuple[int, str, bytes, int, bool]] = deque()
        self._wake = asyncio.Event()
        self._client: aiomqtt.Client | None = None
        self._connected = False
        self._closing = False
        self._runner: asyncio.Task[None] | None = None
        self._inflight: set[asyncio.Task[Any]] = set()
        self._paho: Any = None
        self._unacked: deque[tuple[Any, tuple[int, str, bytes, int, bool]]] = deque()
        self._first_connect = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        # Counters, for status pages and tests.
        self.received = 0
        self.sent = 0
        self.malformed = 0
        self.dropped_qos0 = 0
        self.dropped_outbox = 0
        self.connects = 0
        self.handler_errors = 0

    # --- BusBase ---------------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._connected

    def publish(self, topic: str, msg: Msg, *, qos: int = 0, retain: bool = False) -> None:
        if not self._connected and qos == 0 and not retain:
            self.dropped_qos0 += 1
            return
        self.publish_raw(topic, encode(msg), qos=qos, retain=retain)

    def publish_raw(
        self, topic: str, payload: bytes, *, qos: int = 0, retain: bool = False
    ) -> None:
        """Publish bytes as they are (tests use it to send malformed messages)."""
        item = (_PUB, topic, payload, qos, retain)
        paho = self._paho
        if paho is not None and self._connected and not self._outbox:
            # Fast path: hand the packet to paho now (it is written on the loop's next turn);
            # no task switch. QoS 1 packets are remembered until acknowledged and sent again
            # after a reconnect if they were not (at-least-once).
            info = paho.publish(topic, payload, qos, retain)
            if info.rc == 0:
                self.sent += 1
                if qos:
                    self._unacked.append((info, item))
                    if len(self._unacked) > 1024:
                        self._prune_unacked()
                return
        self._enqueue(item)

    def _prune_unacked(self) -> None:
        unacked = self._unacked
        while unacked and unacked[0][0].is_published():
            unacked.popleft()

    def subscribe(self, pattern: str, handler: Handler, *, qos: int = 0) -> Subscription:
        sub = Subscription(pattern, handler, qos)
        self._table.add(sub)
        if pattern not in self._patterns or self._patterns[pattern] < qos:
            self._patterns[pattern] = qos
            if self._connected:
                self._enqueue((_SUB, pattern, b"", qos, False))
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        if self._closing:
            sub.active = False
            return
        if self._table.remove(sub):
            self._patterns.pop(sub.pattern, None)
            if self._connected:
                self._enqueue((_UNSUB, sub.pattern, b"", 0, False))

    def _enqueue(self, item: tuple[int, str, bytes, int, bool]) -> None:
        outbox = self._outbox
        if len(outbox) >= self._max_outbox:
            outbox.popleft()
            self.dropped_outbox += 1
            if self.dropped_outbox in (1, 10, 100, 1000) or self.dropped_outbox % 10000 == 0:
                log.warning(
                    "mqtt[%s]: outbox full (%d); %d oldest messages dropped so far",
                    self.client_id,
                    self._max_outbox,
                    self.dropped_outbox,
                )
        outbox.append(item)
        self._idle.clear()
        self._wake.set()

    # --- life cycle ------------------------------------------------------------------------------

    async def __aenter__(self) -> MqttBus:
        self._closing = False
        self._runner = asyncio.get_running_loop().create_task(
            self._run(), name=f"mqtt[{self.client_id}].run"
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def wait_connected(self, timeout_s: float = 10.0) -> None:
        """Wait until the broker connection is up (raises TimeoutError)."""
        if self._connected:
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

    async def flush(self, timeout_s: float = 5.0) -> bool:
        """Wait until the outbox is empty and QoS 1 publishes are acknowledged.

        Returns False (and logs what is left) if that did not happen within ``timeout_s``, or
        at once if the broker is not connected.
        """
        if not self._connected:
            log.warning(
                "mqtt[%s]: flush while disconnected: %d messages wait in the outbox",
                self.client_id,
                len(self._outbox),
            )
            return False
        try:
            async with asyncio.timeout(timeout_s):
                await self._idle.wait()
                while self._unacked:
                    self._prune_unacked()
                    if self._unacked:
                        await asyncio.sleep(0.001)
        except TimeoutError:
            log.warning(
                "mqtt[%s]: flush timed out after %.1fs: %d queued, %d unacknowledged",
                self.client_id,
                timeout_s,
                len(self._outbox),
                len(self._unacked),
            )
            return False
        return True

    async def close(self) -> None:
        """Disconnect and stop reconnecting."""
        self._closing = True
        self._wake.set()
        runner = self._runner
        if runner is not None:
            runner.cancel()
            # aiomqtt's acknowledgement waits can swallow a cancellation that races with the
            # acknowledgement itself; never wait forever for them.
            done, _ = await asyncio.wait({runner}, timeout=3.0)
            if not done:
                log.warning(
                    "mqtt[%s]: connection task did not stop within 3s; left behind", self.client_id
                )
                runner.cancel()
            elif not runner.cancelled() and runner.exception() is not None:
                log.warning(
                    "mqtt[%s]: connection task ended with %r", self.client_id, runner.exception()
                )
            self._runner = None
        # A deliberate close is not a lost connection: listeners are not told.
        self._connected = False

    def _set_connected(self, up: bool) -> None:
        if up == self._connected:
            return
        self._connected = up
        self._notify_connection(up)

    async def _run(self) -> None:
        delay = self._reconnect_min
        while not self._closing:
            try:
                client = aiomqtt.Client(
                    self.host,
                    self.port,
                    identifier=self.client_id,
                    username=self._username,
                    password=self._password,
                    keepalive=self._keepalive,
                    will=self._will,
                    clean_session=self._clean_session,
                    socket_options=_NODELAY,
                    max_queued_outgoing_messages=None,
                    timeout=10,
                    tls_context=self._tls_context,
                )
                # QoS 1 messages are acknowledged only after their handler ran, so a process
                # killed in between gets them again (at-least-once end to end).
                client._client.manual_ack_set(True)
                async with client:
                    self._client = client
                    # subscribe() may add patterns while we await here (not enqueued: not yet
                    # connected): go round until every pattern is subscribed at its QoS.
                    done: dict[str, int] = {}
                    while todo := [(p, q) for p, q in self._patterns.items() if done.get(p) != q]:
                        for pattern, qos in todo:
                            await client.subscribe(pattern, qos)
                            done[pattern] = qos
                    # QoS 1 messages handed to paho but not acknowledged before the connection
                    # dropped go out again first (they may be duplicates: receivers de-dup by id).
                    resend = [item for info, item in self._unacked if not info.is_published()]
                    self._unacked.clear()
                    self._outbox.extendleft(reversed(resend))
                    # aiomqtt keeps its paho client private; publishing through it directly
                    # saves a task switch per message (see publish_raw).
                    self._paho = client._client
                    self.connects += 1
                    delay = self._reconnect_min
                    log.info("mqtt[%s]: connected to %s:%d", self.client_id, self.host, self.port)
                    self._set_connected(True)
                    self._first_connect.set()
                    async with asyncio.TaskGroup() as tg:
                        tg.create_task(self._reader(client), name=f"mqtt[{self.client_id}].read")
                        tg.create_task(self._writer(client), name=f"mqtt[{self.client_id}].write")
            except* aiomqtt.MqttError as eg:
                self._client = None
                self._paho = None
                self._connection_failed(eg.exceptions[0])
            if self._closing:
                break
            # Capped exponential back-off with full jitter.
            await asyncio.sleep(random.uniform(0, delay))
            delay = min(self._reconnect_max, delay * 2)

    def _connection_failed(self, err: BaseException) -> None:
        self._paho = None
        if self._closing:
            return
        if self._connected:
            log.warning("mqtt[%s]: connection lost: %s", self.client_id, err)
        else:
            log.warning(
                "mqtt[%s]: cannot connect to %s:%d: %s", self.client_id, self.host, self.port, err
            )
        self._set_connected(False)

    async def _reader(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            topic = message.topic.value
            payload = message.payload
            if not isinstance(payload, bytes | bytearray):
                payload = b"" if payload is None else str(payload).encode()
            self.received += 1
            try:
                msg = decode(topic, payload)
            except MalformedMessage as exc:
                self.malformed += 1
                log.warning("mqtt[%s]: dropped %s", self.client_id, exc)
            else:
                self._dispatch(topic, msg)
            if message.qos and self._paho is not None:
                self._paho.ack(message.mid, message.qos)

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

    async def _writer(self, client: aiomqtt.Client) -> None:
        outbox = self._outbox
        while True:
            while not outbox:
                self._wake.clear()
                await self._wake.wait()
            kind, topic, payload, qos, retain = outbox[0]
            if kind == _PUB:
                if qos == 0:
                    await client.publish(topic, payload, qos=0, retain=retain)
                else:
                    # paho queues the packet synchronously when the coroutine starts, so
                    # starting tasks in order keeps the order on the wire; the acknowledgement
                    # is awaited concurrently.
                    task = asyncio.get_running_loop().create_task(
                        client.publish(topic, payload, qos=qos, retain=retain)
                    )
                    self._inflight.add(task)
                    self._idle.clear()
                    task.add_done_callback(self._publish_done)
                    await asyncio.sleep(0)
                self.sent += 1
            elif kind == _SUB:
                await client.subscribe(topic, qos)
            else:
                await client.unsubscribe(topic)
            outbox.popleft()
            self._check_idle()

    def _check_idle(self) -> None:
        if not self._outbox and not self._inflight:
            self._idle.set()

    def _publish_done(self, task: asyncio.Task[Any]) -> None:
        self._inflight.discard(task)
        self._check_idle()
        if not task.cancelled() and task.exception() is not None:
            log.warning("mqtt[%s]: QoS 1 publish failed: %s", self.client_id, task.exception())
