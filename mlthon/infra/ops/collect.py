"""A short-lived watcher for the CLI: connect, gather the retained statuses, answer.

:func:`watch` connects an :class:`~mlthon.infra.bus.mqtt.MqttBus`, starts a
:class:`~mlthon.infra.ops.board.StatusBoard`, waits ``settle_s`` for the retained statuses to
arrive and hands the board over; the broker being unreachable raises :class:`BrokerUnreachable`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator

from mlthon.basics.errors import BusError
from mlthon.infra.bus.mqtt import MqttBus
from mlthon.infra.bus.topics import Topics
from mlthon.infra.clock import LiveScheduler
from mlthon.infra.ops.board import StatusBoard


class BrokerUnreachable(BusError):
    """The broker did not accept a connection in time.

    Attributes:
        host: the broker's host.
        port: its port.
    """

    def __init__(self, host: str, port: int, timeout_s: float) -> None:
        super().__init__(f"no MQTT broker answered on {host}:{port} within {timeout_s:.1f}s")
        self.host = host
        self.port = port


@contextlib.asynccontextmanager
async def watch(
    host: str,
    port: int,
    root: str,
    *,
    settle_s: float = 0.5,
    connect_timeout_s: float = 3.0,
    stale_after_s: float | None = None,
) -> AsyncIterator[StatusBoard]:
    """Yield a started board holding every retained status under ``root``.

    Raises:
        BrokerUnreachable: no connection within ``connect_timeout_s``.
    """
    bus = MqttBus(host, port, client_id=f"ops-{os.getpid()}-{id(object())}", reconnect_max_s=1.0)
    async with bus:
        try:
            await bus.wait_connected(connect_timeout_s)
        except TimeoutError:
            raise BrokerUnreachable(host, port, connect_timeout_s) from None
        board = StatusBoard(bus, LiveScheduler(), Topics(root), stale_after_s=stale_after_s)
        board.start()
        try:
            await asyncio.sleep(settle_s)  # retained messages arrive right after subscribing
            board.check()
            yield board
        finally:
            board.stop(unsubscribe=False)  # the bus closes next
