"""One connection to the MQTT broker, driven by the asyncio loop: paho-mqtt opens it, the link
speaks MQTT on it from the CONNACK on.

Why paho opens it: its blocking ``connect()`` does the name lookup, TCP, the TLS handshake
(hostname check included) and the CONNECT packet (credentials, last will), and its CONNACK
handling gives the broker's refusal in words (``Not authorized``), all through its public API.

Why the link reads and writes the packets after that itself: paho reads one packet per
``loop_read`` step with four ``recv`` calls (type byte, two length bytes, the rest), then builds
an ``MQTTMessage``, runs its topic matcher under a lock: about 15 us of CPU per incoming message,
the largest cost of a strategy process at 10,000 messages/s, against about 1 us for one ``recv``
of up to 64 KiB and packets cut in Python (``bench/bench_live.py --read-path``). paho has no
public way to be fed bytes read by someone else, and its outgoing side keeps state that only its
own reader clears (a QoS 1 publish stays in its store until paho reads the PUBACK; a PINGREQ is
answered only when paho reads the PINGRESP, else its keepalive drops the link): taking the
incoming side means taking the outgoing side too. Both are small for MQTT 3.1.1 at QoS 0 and 1
(:mod:`mlthon.infra.bus.mqtt_packets`).

How the loop drives it (everything after :meth:`PahoLink.connect` runs on the loop's thread):

* connect: paho's ``connect()`` runs in the default executor; then the socket's reader is added
  to the loop, paho writes the CONNECT and reads the CONNACK (``on_connect``); from then on paho
  is not called again and the link owns the socket.
* read: when the socket is readable, one ``recv`` of up to :data:`READ_SIZE` bytes (with TLS, as
  many as the TLS layer holds decrypted, up to that size: those bytes wake no selector, so the
  link comes back for what is left on the loop's next turn). The bytes are cut into packets
  (:class:`~mlthon.infra.bus.mqtt_packets.PacketReader`); each incoming PUBLISH reaches
  ``on_message(topic, payload, qos, packet_id, retain, dup)`` right there, without a queue, a
  message object or a task switch; PUBACKs mark the receipts of QoS 1 publishes, SUBACKs are
  checked (a refused subscription is logged), PINGRESPs answer the keepalive. Then
  ``on_read_batch``.
* write: every packet is appended to one output buffer; the first one of a loop turn schedules
  one write (``call_soon``), which sends the whole buffer with one ``send`` (one TCP segment for
  many packets); the socket's writer is added only while the kernel buffer is full. Nothing is
  written from inside a read batch: the acknowledgements of a batch leave after
  ``on_read_batch`` ran.
* keepalive: once a second, a PINGREQ when nothing was sent or nothing came for ``keepalive_s``;
  the link is declared dead when a PINGREQ stays unanswered and nothing at all comes for
  ``keepalive_s``.
* a malformed or oversized packet from the broker drops the link with a
  :class:`~mlthon.infra.bus.mqtt_packets.BadPacket` (logged as an error, reported to
  ``on_lost``); the bus reconnects.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
from collections.abc import Callable
from typing import Any

from paho.mqtt import client as paho
from paho.mqtt.enums import CallbackAPIVersion

from mlthon.basics.errors import BusError, BusRefused
from mlthon.infra.bus.mqtt_packets import (
    DISCONNECT_PACKET,
    MAX_PACKET,
    PINGREQ_PACKET,
    PINGRESP,
    PUBACK,
    SUBACK,
    UNSUBACK,
    BadPacket,
    PacketReader,
    packet_id_of,
    packet_name,
    puback_packet,
    publish_head,
    subscribe_packet,
    topic_field,
    unsubscribe_packet,
)

log = logging.getLogger(__name__)

#: Most bytes read per readable event before the loop gets a turn.
READ_SIZE = 64 * 1024
#: Most topics whose encoded field a link keeps (the topics a process publishes on repeat).
TOPIC_CACHE = 10_000

#: ``on_message(topic, payload, qos, packet_id, retain, dup)``: topic as the broker sent it
#: (UTF-8 bytes), ``packet_id`` 0 at QoS 0.
MessageHandler = Callable[[bytes, bytes, int, int, bool, bool], None]

_WOULD_BLOCK = (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError)


class Receipt:
    """What :meth:`PahoLink.publish` returns: :meth:`is_published` turns True when the broker
    acknowledged the message (QoS 1; at once for QoS 0). A receipt of a lost link never does."""

    __slots__ = ("done", "packet_id")

    def __init__(self, packet_id: int, done: bool = False) -> None:
        self.packet_id = packet_id
        self.done = done

    def is_published(self) -> bool:
        return self.done


#: The receipt of every QoS 0 publish handed to a live link.
SENT = Receipt(0, True)


class PahoLink:
    """One MQTT 3.1.1 connection (a fresh paho client opens each one).

    Args:
        host, port: the broker.
        client_id: MQTT client id.
        clean_session: False keeps the broker-side session.
        keepalive_s: MQTT keepalive (0: none).
        username, password: broker login (None: anonymous).
        will: (topic, payload), published by the broker retained at QoS 1 if the link dies.
        tls_context: TLS (None: plain TCP).
        on_message: called for each incoming PUBLISH (:data:`MessageHandler`); a QoS 1 message
            must be acknowledged with :meth:`ack`.
        on_connected: called (session_present) when the CONNACK accepted the connection, before
            any message that follows it is read.
        on_lost: called once (reason) when an established connection ends (not after
            :meth:`close`).
        on_read_batch: called after each batch of packets read (acknowledgements came).
        on_written: called when every queued packet is written to the socket.
        max_packet: incoming packets bigger than this drop the link.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        client_id: str,
        clean_session: bool,
        keepalive_s: int,
        username: str | None,
        password: str | None,
        will: tuple[str, bytes] | None,
        tls_context: ssl.SSLContext | None,
        on_message: MessageHandler,
        on_connected: Callable[[bool], None],
        on_lost: Callable[[str], None],
        on_read_batch: Callable[[], None],
        on_written: Callable[[], None],
        max_packet: int = MAX_PACKET,
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._host = host
        self._port = port
        self._keepalive = keepalive_s
        self._name = f"mqtt[{client_id}]"
        self._on_connected = on_connected
        self._on_lost = on_lost
        self._on_read_batch = on_read_batch
        self._on_written = on_written
        c = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=clean_session,
            protocol=paho.MQTTv311,
            reconnect_on_failure=False,
        )
        if username is not None:
            c.username_pw_set(username, password)
        if tls_context is not None:
            c.tls_set_context(tls_context)
        if will is not None:
            c.will_set(will[0], will[1], qos=1, retain=True)
        c.on_connect = self._paho_connect
        c.on_disconnect = self._paho_disconnect
        c.on_socket_open = self._paho_socket_open
        c.on_socket_close = self._paho_socket_close
        c.on_socket_register_write = self._paho_register_write
        self.client = c
        self._reader = PacketReader(on_message, self._on_packet, max_packet)
        self._sock: Any = None
        self._tls = tls_context is not None
        self._fd = -1
        self._attached = False
        self._own = False  # past the CONNACK: the link reads and writes the packets itself
        self._out = bytearray()  # packets waiting to be written, in order
        self._writer_added = False
        self._write_soon = False
        self._topics: dict[str, bytes] = {}  # topic -> its encoded field
        self._last_id = 0
        self._inflight: dict[int, Receipt] = {}  # QoS 1 publishes waiting for their PUBACK
        # SUBSCRIBEs (their patterns) and UNSUBSCRIBEs waiting for their answer
        self._subscribing: dict[int, list[str]] = {}
        self._last_in = 0.0
        self._last_out = 0.0
        self._ping_at = 0.0  # when the unanswered PINGREQ left (0: none)
        self._connack: asyncio.Future[bool] = self._loop.create_future()
        self._up = False
        self._closed = False
        self._goodbye = False  # DISCONNECT queued: nothing more is read or sent
        self._misc: asyncio.Task[None] | None = None
        self._sock_closed = asyncio.Event()
        self._written = asyncio.Event()

    # --- life cycle ------------------------------------------------------------------------------

    async def connect(self, timeout_s: float = 10.0) -> bool:
        """Open the connection; return once the broker accepted it (session present?).

        Raises:
            BusError: the broker cannot be reached, refused the connection
                (:class:`~mlthon.basics.errors.BusRefused`), or did not answer within
                ``timeout_s``.
        """
        self.client.connect_timeout = timeout_s
        fut = self._loop.run_in_executor(None, self._connect_blocking)
        try:
            await fut
        except asyncio.CancelledError:
            # The executor thread goes on; close whatever it opens.
            fut.add_done_callback(lambda _f: self.close())
            raise
        except (OSError, ValueError) as exc:
            self.close()
            raise BusError(f"cannot connect to {self._host}:{self._port}: {exc}") from exc
        if self._closed:
            raise BusError("link closed while connecting")
        self._attach()
        try:
            async with asyncio.timeout(timeout_s):
                return await self._connack
        except TimeoutError:
            self.close()
            raise BusError(
                f"no CONNACK from {self._host}:{self._port} within {timeout_s}s"
            ) from None
        except BusError:
            self.close()
            raise

    def _connect_blocking(self) -> None:
        # In the executor thread: paho opens the socket and queues CONNECT (written once the
        # loop attaches the socket).
        self.client.connect(self._host, self._port, self._keepalive)

    def _attach(self) -> None:
        sock = self.client.socket()
        if sock is None:
            raise BusError(f"cannot connect to {self._host}:{self._port}: no socket")
        self._sock = sock
        self._fd = sock.fileno()  # removed by number: a closed socket has none
        self._attached = True
        self._loop.add_reader(self._fd, self._read)
        self._misc = self._loop.create_task(self._keepalive_loop(), name=f"{self._name}.keepalive")
        if self.client.want_write():
            self._schedule_write()

    async def disconnect(self, timeout_s: float = 1.0) -> None:
        """Say goodbye to the broker (DISCONNECT: it drops the will) and close."""
        if self._up and not self._closed and self._own:
            self._up = False
            self._goodbye = True
            self._out += DISCONNECT_PACKET
            self._write()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout_s):
                    while self._out and not self._closed:
                        self._written.clear()
                        await self._written.wait()
                    sock = self._sock
                    if sock is not None and not self._closed:
                        # The broker closes its side once it read the DISCONNECT: wait for that
                        # rather than close first (closing on unread bytes resets the
                        # connection, and the broker could lose the DISCONNECT and publish the
                        # will).
                        with contextlib.suppress(OSError):
                            sock.shutdown(socket.SHUT_WR)
                        await self._sock_closed.wait()
        self.close()

    def close(self, reason: str = "link closed") -> None:
        """Close the socket now (no goodbye); no callback follows."""
        self._closed = True
        self._up = False
        self._sock_closed.set()
        self._written.set()
        sock = self._sock if self._sock is not None else self.client.socket()
        self._detach()
        self._sock = None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()
        if self._misc is not None:
            self._misc.cancel()
            self._misc = None
        if not self._connack.done():
            self._connack.set_exception(
                BusError(f"connection to {self._host}:{self._port} ended before CONNACK: {reason}")
            )
            self._connack.exception()  # retrieved: nobody may wait for it

    def _detach(self) -> None:
        """Forget the socket in the loop (before it is closed)."""
        if not self._attached:
            return
        self._attached = False
        self._loop.remove_reader(self._fd)
        if self._writer_added:
            self._writer_added = False
            self._loop.remove_writer(self._fd)

    async def _keepalive_loop(self) -> None:
        keepalive = self._keepalive
        while not self._closed:
            await asyncio.sleep(1.0)
            if not self._own or not keepalive or self._goodbye:
                continue
            now = self._loop.time()
            if self._ping_at:
                # Unanswered: dead once nothing at all came for a keepalive (a backlog of
                # messages ahead of the PINGRESP still shows the broker alive).
                if now - self._ping_at >= keepalive and now - self._last_in >= keepalive:
                    self._lost(f"no answer from the broker within {keepalive}s (keepalive)")
                    return
            elif now - self._last_out >= keepalive or now - self._last_in >= keepalive:
                self._ping_at = now
                self._queue(PINGREQ_PACKET)

    # --- reading ---------------------------------------------------------------------------------

    def _read(self) -> None:
        sock = self._sock
        if sock is None or self._closed:
            return
        if not self._own:
            # Up to the CONNACK, paho reads (one packet per call on a fresh client).
            try:
                self.client.loop_read()
            except OSError as exc:
                self._lost(f"read failed: {exc}")
                return
            if not self._own or self._closed or self._sock is None:
                return
            # Bytes that came with the CONNACK (TLS keeps them decrypted: no selector wakes).
            if not (self._tls and sock.pending()):
                return
        try:
            data = sock.recv(READ_SIZE)
        except _WOULD_BLOCK:
            return
        except OSError as exc:
            self._lost(f"read failed: {exc}")
            return
        if not data:
            self._lost("the broker closed the connection")
            return
        if self._tls and len(data) < READ_SIZE and sock.pending():
            data = self._read_pending(sock, data)
        self._last_in = self._loop.time()
        if not self._goodbye:
            try:
                self._reader.feed(data)
            except BadPacket as exc:
                log.error("%s: %s; dropping the connection", self._name, exc)
                self._lost(str(exc))
                return
            finally:
                if not self._closed:
                    self._on_read_batch()
        if self._tls and not self._closed and sock.pending():
            self._loop.call_soon(self._read)

    def _read_pending(self, sock: ssl.SSLSocket, data: bytes) -> bytes:
        """``data`` and what TLS holds decrypted already, up to :data:`READ_SIZE` (TLS hands
        out one record, at most 16 KiB, per ``recv``)."""
        parts = [data]
        size = len(data)
        with contextlib.suppress(*_WOULD_BLOCK):
            while size < READ_SIZE and sock.pending():
                more = sock.recv(READ_SIZE - size)
                if not more:
                    break
                parts.append(more)
                size += len(more)
        return b"".join(parts)

    def _on_packet(self, first: int, body: bytes) -> None:
        """Every incoming packet but PUBLISH."""
        kind = first & 0xF0
        if kind == PUBACK:
            receipt = self._inflight.pop(packet_id_of(first, body), None)
            if receipt is not None:
                receipt.done = True
        elif kind == PINGRESP:
            self._ping_at = 0.0
        elif kind == SUBACK:
            packet_id = packet_id_of(first, body)
            patterns = self._subscribing.pop(packet_id, [])
            refused = [p for p, code in zip(patterns, body[2:], strict=False) if code & 0x80]
            if refused:
                log.warning(
                    "%s: the broker refused the subscription to %s (its ACL?)",
                    self._name,
                    ", ".join(refused),
                )
        elif kind == UNSUBACK:
            self._subscribing.pop(packet_id_of(first, body), None)
        else:
            raise BadPacket(
                f"unexpected {packet_name(first)} after the CONNACK", bytes((first,)) + body[:15]
            )

    # --- writing ---------------------------------------------------------------------------------

    def _queue(self, packet: bytes) -> None:
        self._out += packet
        if not self._write_soon:
            self._write_soon = True
            self._loop.call_soon(self._write)

    def _schedule_write(self) -> None:
        if not self._write_soon:
            self._write_soon = True
            self._loop.call_soon(self._write)

    def _write(self) -> None:
        self._write_soon = False
        sock = self._sock
        if self._closed or sock is None:
            return
        if not self._own:
            # Up to the CONNACK, paho writes (the CONNECT).
            try:
                self.client.loop_write()
            except OSError as exc:
                self._lost(f"write failed: {exc}")
            return
        out = self._out
        if out:
            try:
                sent = sock.send(out)
            except _WOULD_BLOCK:
                sent = 0
            except OSError as exc:
                self._lost(f"write failed: {exc}")
                return
            if sent:
                del out[:sent]
                self._last_out = self._loop.time()
        if out:
            if not self._writer_added:
                self._writer_added = True
                self._loop.add_writer(self._fd, self._write)
            return
        if self._writer_added:
            self._writer_added = False
            self._loop.remove_writer(self._fd)
        self._written.set()
        self._on_written()

    def _next_id(self) -> int:
        """A packet id not in use by a QoS 1 publish or a (UN)SUBSCRIBE still waiting."""
        packet_id = self._last_id
        while True:
            packet_id = packet_id % 65535 + 1
            if packet_id not in self._inflight and packet_id not in self._subscribing:
                self._last_id = packet_id
                return packet_id

    def publish(
        self, topic: str, payload: bytes, qos: int = 0, retain: bool = False
    ) -> Receipt | None:
        """Queue a PUBLISH; its receipt (:data:`SENT` at QoS 0), or None if the link is not up.

        Raises:
            ValueError: a wildcard or empty topic, or a packet over MQTT's size limit.
        """
        if not self._up:
            return None
        field = self._topics.get(topic)
        if field is None:
            field = topic_field(topic)
            if len(self._topics) >= TOPIC_CACHE:
                self._topics.clear()
            self._topics[topic] = field
        out = self._out
        out += publish_head(field, len(payload), qos, retain)
        if qos:
            packet_id = self._next_id()
            out += packet_id.to_bytes(2, "big")
            receipt = self._inflight[packet_id] = Receipt(packet_id)
        else:
            receipt = SENT
        out += payload
        if not self._write_soon:
            self._write_soon = True
            self._loop.call_soon(self._write)
        return receipt

    def ack(self, packet_id: int) -> None:
        """Acknowledge incoming QoS 1 message ``packet_id`` (written behind everything queued
        before; nothing if the link is down)."""
        if self._up:
            self._queue(puback_packet(packet_id))

    def subscribe(self, patterns: list[tuple[str, int]]) -> bool:
        """Queue one SUBSCRIBE for ``patterns`` ((pattern, qos) pairs); False if the link is
        down."""
        if not self._up:
            return False
        packet_id = self._next_id()
        self._subscribing[packet_id] = [p for p, _ in patterns]
        self._queue(subscribe_packet(packet_id, patterns))
        return True

    def unsubscribe(self, patterns: list[str]) -> bool:
        """Queue one UNSUBSCRIBE for ``patterns``; False if the link is down."""
        if not self._up:
            return False
        packet_id = self._next_id()
        self._subscribing[packet_id] = []
        self._queue(unsubscribe_packet(packet_id, patterns))
        return True

    def subscribing(self) -> bool:
        """True while a SUBSCRIBE or UNSUBSCRIBE waits for the broker's answer."""
        return bool(self._subscribing)

    def want_write(self) -> bool:
        """True while packets wait to be written to the socket."""
        if self._sock is None:
            return False
        return bool(self._out) if self._own else self.client.want_write()

    def _lost(self, reason: str) -> None:
        was_up = self._up
        self._up = False
        if not self._closed:
            self.close(reason)
        if was_up:
            self._on_lost(reason)

    # --- paho callbacks (up to the CONNACK) ------------------------------------------------------

    def _paho_socket_open(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        # In the executor thread, before CONNECT is queued. Nagle off: with it on, a QoS 1
        # request/response round trip takes tens of milliseconds instead of a few hundred us.
        with contextlib.suppress(OSError, AttributeError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _paho_socket_close(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        if not self._attached:  # not ours yet (a failed connect, in the executor thread)
            return
        self._detach()
        self._sock = None
        self._sock_closed.set()

    def _paho_register_write(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        # During connect (executor thread) the socket is not attached yet: _attach writes.
        if self._attached:
            self._schedule_write()

    def _paho_connect(
        self,
        client: paho.Client,
        userdata: Any,
        flags: paho.ConnectFlags,
        reason: Any,
        properties: Any,
    ) -> None:
        if self._connack.done():
            return
        if reason.is_failure:
            self._connack.set_exception(BusRefused(f"{self._host}:{self._port}", str(reason)))
            return
        # From here on the link reads and writes the packets (paho wrote only the CONNECT).
        self._own = True
        self._up = True
        self._last_in = self._last_out = self._loop.time()
        self._on_connected(bool(flags.session_present))
        self._connack.set_result(bool(flags.session_present))

    def _paho_disconnect(
        self,
        client: paho.Client,
        userdata: Any,
        flags: paho.DisconnectFlags,
        reason: Any,
        properties: Any,
    ) -> None:
        self._lost(f"disconnected ({reason})")
