"""One connection to the MQTT broker: a paho-mqtt client driven by the asyncio loop.

Why paho directly and not aiomqtt: aiomqtt 2.5's ``Client`` acknowledges every incoming QoS 1
message as soon as paho has read it (it has no public manual-ack switch), and its ``publish`` is a
coroutine that waits for the PUBACK, so a bus that must (a) acknowledge only after its handler ran
and (b) publish without blocking had to reach into the paho client that aiomqtt keeps private.
paho 2.x (aiomqtt's own dependency) offers all of it publicly: ``manual_ack=True`` with
:meth:`ack`, a non-blocking ``publish`` returning a receipt (``MQTTMessageInfo.is_published``),
and socket callbacks for an external event loop (the seam aiomqtt itself is built on).

How the loop drives it (everything after :meth:`PahoLink.connect` runs on the loop's thread):

* connect: paho's blocking ``connect()`` (name lookup, TCP, TLS handshake, the CONNECT packet)
  runs in the default executor; then the socket's reader is added to the loop and the CONNACK is
  awaited (``on_connect``).
* read: when the socket is readable, ``loop_read`` runs until the socket is drained (at most
  :data:`READ_BATCH` packets per turn, so timers still run under a flood). Incoming messages
  reach ``on_message`` right there, without a queue or a task switch.
* write: paho queues every packet; the first one of a loop turn schedules one ``loop_write``
  (``call_soon``), which writes them all, with the socket corked (``TCP_CORK``, where the system
  has it) so that they leave in as few TCP segments as possible; the socket's writer is added
  only while the kernel buffer is full.
* keepalive: ``loop_misc`` once a second (pings; declares the link dead when the broker stops
  answering).

paho never calls ``on_publish`` here: building its arguments costs ~20 us per QoS 0 message.
Acknowledgements are read from the receipts instead, after each read batch
(``on_read_batch``).
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
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

from mlthon.basics.errors import BusError, BusRefused

log = logging.getLogger(__name__)

#: Most packets read per readable event before the loop gets a turn.
READ_BATCH = 256

_PEEK = socket.MSG_PEEK | socket.MSG_DONTWAIT
_CORK: int | None = getattr(socket, "TCP_CORK", None)  # Linux

MessageHandler = Callable[[paho.Client, Any, paho.MQTTMessage], None]


class PahoLink:
    """One MQTT 3.1.1 connection (a fresh paho client per connection).

    Args:
        host, port: the broker.
        client_id: MQTT client id.
        clean_session: False keeps the broker-side session.
        keepalive_s: MQTT keepalive.
        username, password: broker login (None: anonymous).
        will: (topic, payload), published by the broker retained at QoS 1 if the link dies.
        tls_context: TLS (None: plain TCP).
        on_message: paho's ``on_message(client, userdata, message)``; the message must be
            acknowledged with :meth:`ack` (manual acks).
        on_connected: called (session_present) when the CONNACK accepted the connection, before
            any message that follows it is read.
        on_lost: called once (reason) when an established connection ends (not after
            :meth:`close`).
        on_read_batch: called after each batch of packets read (acknowledgements came).
        on_written: called when every queued packet is written to the socket.
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
            manual_ack=True,
        )
        # The bus keeps its own window of QoS 1 messages in flight (its outbox); paho must send
        # whatever it is given at once and keep no queue of its own.
        c.max_inflight_messages_set(0)
        c.max_queued_messages_set(0)
        if username is not None:
            c.username_pw_set(username, password)
        if tls_context is not None:
            c.tls_set_context(tls_context)
        if will is not None:
            c.will_set(will[0], will[1], qos=1, retain=True)
        c.on_connect = self._paho_connect
        c.on_disconnect = self._paho_disconnect
        c.on_message = on_message
        c.on_socket_open = self._paho_socket_open
        c.on_socket_close = self._paho_socket_close
        c.on_socket_register_write = self._paho_register_write
        c.on_socket_unregister_write = self._paho_unregister_write
        self.client = c
        #: paho's publish (hot path: the bus calls it directly).
        self.publish = c.publish
        #: paho's acknowledgement of an incoming QoS 1 message.
        self.ack = c.ack
        self._sock: Any = None
        self._fd = -1
        self._attached = False
        self._writer_added = False
        self._write_soon = False
        self._connack: asyncio.Future[bool] = self._loop.create_future()
        self._up = False
        self._closed = False
        self._misc: asyncio.Task[None] | None = None
        self._sock_closed = asyncio.Event()

    # --- life cycle ------------------------------------------------------------------------------

    async def connect(self, timeout_s: float = 10.0) -> bool:
        """Open the connection; return once the broker accepted it (session present?).

        Raises:
            BusError: the broker cannot be reached, refused the connection, or did not answer
                within ``timeout_s``.
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
        if self._up and not self._closed:
            self._up = False
            self.client.disconnect()
            self._write()
            # paho closes the socket once DISCONNECT is written.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout_s):
                    await self._sock_closed.wait()
        self.close()

    def close(self, reason: str = "link closed") -> None:
        """Close the socket now (no goodbye); no callback follows."""
        self._closed = True
        self._up = False
        self._sock_closed.set()
        sock = self.client.socket()
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
        while not self._closed:
            await asyncio.sleep(1.0)
            if self.client.loop_misc() != MQTTErrorCode.MQTT_ERR_SUCCESS:
                return

    # --- I/O -------------------------------------------------------------------------------------

    def _read(self) -> None:
        client = self.client
        sock = self._sock
        if sock is None or self._closed:
            return
        tls = isinstance(sock, ssl.SSLSocket)
        try:
            for _ in range(READ_BATCH):
                if client.loop_read() != MQTTErrorCode.MQTT_ERR_SUCCESS or self._closed:
                    break
                if self._sock is None:  # paho closed it (the callbacks ran)
                    break
                if tls:
                    if not sock.pending():
                        break
                else:
                    try:
                        if not sock.recv(1, _PEEK):
                            break
                    except (BlockingIOError, InterruptedError):
                        break
            else:
                if tls:  # bytes TLS has decrypted already wake no selector: come back for them
                    self._loop.call_soon(self._read)
        except OSError as exc:
            self._lost(f"read failed: {exc}")
        if not self._closed:
            self._on_read_batch()

    def _schedule_write(self) -> None:
        if not self._write_soon:
            self._write_soon = True
            self._loop.call_soon(self._write)

    def _write(self) -> None:
        self._write_soon = False
        sock = self._sock
        if self._closed or sock is None:
            return
        client = self.client
        try:
            if _CORK is None:
                client.loop_write()
            else:
                # paho sends each packet with a send() of its own; corked, the kernel puts them
                # in as few segments as it can and sends them at once when uncorked (on
                # loopback every segment costs the receiver's processing too).
                sock.setsockopt(socket.IPPROTO_TCP, _CORK, 1)
                try:
                    client.loop_write()
                finally:
                    if self._sock is not None:
                        sock.setsockopt(socket.IPPROTO_TCP, _CORK, 0)
        except OSError as exc:
            self._lost(f"write failed: {exc}")
            return
        if self._closed or client.socket() is None:
            return
        if client.want_write():
            if not self._writer_added:
                self._writer_added = True
                self._loop.add_writer(self._fd, self._write)
        else:
            self._on_written()

    def subscribe(self, patterns: list[tuple[str, int]]) -> bool:
        """Queue one SUBSCRIBE for ``patterns`` ((pattern, qos) pairs); False if the link is
        down."""
        rc, _mid = self.client.subscribe(patterns)
        return rc == MQTTErrorCode.MQTT_ERR_SUCCESS

    def unsubscribe(self, patterns: list[str]) -> bool:
        """Queue one UNSUBSCRIBE for ``patterns``; False if the link is down."""
        rc, _mid = self.client.unsubscribe(patterns)
        return rc == MQTTErrorCode.MQTT_ERR_SUCCESS

    def want_write(self) -> bool:
        """True while packets wait to be written to the socket."""
        return self._sock is not None and self.client.want_write()

    def _lost(self, reason: str) -> None:
        was_up = self._up
        self._up = False
        if not self._closed:
            self.close(reason)
        if was_up:
            self._on_lost(reason)

    # --- paho callbacks --------------------------------------------------------------------------

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

    def _paho_unregister_write(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        if self._writer_added:
            self._writer_added = False
            self._loop.remove_writer(self._fd)

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
        self._up = True
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
