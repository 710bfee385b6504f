"""A TCP proxy on 127.0.0.1 in front of a server (the broker), whose connections a test can cut.

It runs its own event loop in a thread, so a sync test, an async test and clients in other
processes use it alike::

    with TcpProxy(broker.port) as proxy:   # listens on 127.0.0.1:proxy.port
        ...                                # clients connect to proxy.port
        proxy.cut()                        # reset every connection, both sides; refuse new ones
        ...                                # (a client trying now is reset at once)
        proxy.resume()                     # accept again

``cut(refuse=False)`` resets the connections but lets clients back in at once (a blip).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
from typing import Any

_LINGER_0 = struct.pack("ii", 1, 0)  # close() sends RST, not FIN


class TcpProxy:
    """Forward 127.0.0.1:``port`` to ``target_host``:``target_port``.

    Attributes:
        port: the port it listens on (set by :meth:`start`).
        accepted: connections accepted and forwarded so far.
        refused: connections reset at once because the proxy was cut.
    """

    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self.target_host = target_host
        self.target_port = target_port
        self.port = 0
        self.accepted = 0
        self.refused = 0
        self._refusing = False
        self._pairs: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None

    # --- the test's side (any thread) ------------------------------------------------------------

    def start(self) -> TcpProxy:
        """Listen on a free 127.0.0.1 port (:attr:`port`) and forward."""
        ready = threading.Event()
        loop = asyncio.new_event_loop()
        self._loop = loop

        def run() -> None:
            asyncio.set_event_loop(loop)
            self._server = loop.run_until_complete(
                asyncio.start_server(self._serve, "127.0.0.1", 0)
            )
            self.port = self._server.sockets[0].getsockname()[1]
            ready.set()
            loop.run_forever()

        self._thread = threading.Thread(target=run, name=f"tcp-proxy->{self.target_port}")
        self._thread.daemon = True
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("tcp proxy did not start")
        return self

    def stop(self) -> None:
        """Close every connection and stop listening."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        self._call(self._stop())
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
        self._loop = self._thread = None

    def cut(self, *, refuse: bool = True) -> int:
        """Reset every open connection on both sides (the client and the server each see a
        connection reset); with ``refuse``, reset new connections too until :meth:`resume`.
        Returns how many connections were cut."""
        n: int = self._call(self._cut(refuse))
        return n

    def resume(self) -> None:
        """Accept and forward connections again."""
        self._refusing = False

    @property
    def connections(self) -> int:
        """Connections open now."""
        return len(self._pairs)

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _call(self, coro: Any) -> Any:
        assert self._loop is not None, "proxy not started"
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    # --- the proxy's loop ------------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self._forward(reader, writer)
        finally:
            self._tasks.discard(task)

    async def _forward(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._refusing:
            self.refused += 1
            _reset(writer)
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(self.target_host, self.target_port)
        except OSError:
            _reset(writer)
            return
        for w in (writer, up_writer):
            sock = w.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        pair = (writer, up_writer)
        self._pairs.add(pair)
        self.accepted += 1
        pumps = {
            asyncio.ensure_future(_pump(reader, up_writer)),
            asyncio.ensure_future(_pump(up_reader, writer)),
        }
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in pumps:
                task.cancel()
            self._pairs.discard(pair)
            for w in pair:
                w.close()

    async def _cut(self, refuse: bool) -> int:
        self._refusing = refuse
        pairs = list(self._pairs)
        self._pairs.clear()
        for pair in pairs:
            for w in pair:
                _reset(w)
        return len(pairs)

    async def _stop(self) -> None:
        await self._cut(refuse=True)
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=5)


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()


def _reset(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_0)
    writer.transport.abort()
