"""A short-lived watcher for the CLI: connect, gather the retained statuses, answer.

:func:`watch` connects an :class:`~mlthon.infra.bus.mqtt.MqttBus` (under a unique client id, with
the credentials and TLS of :func:`~mlthon.infra.security.bus_client_options`: the same options as
every other client), starts a :class:`~mlthon.infra.ops.board.StatusBoard`, waits ``settle_s`` for
the retained statuses to arrive and hands the board over. A broker that cannot be reached raises
:class:`BrokerUnreachable`; one that refuses the login (a secured broker: no or wrong
credentials) raises :class:`BrokerRefused`, which says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator
from typing import Any

from mlthon.basics.errors import BusError, BusRefused
from mlthon.infra.bus.mqtt import MqttBus
from mlthon.infra.bus.paho_link import PahoLink
from mlthon.infra.bus.topics import Topics
from mlthon.infra.clock import LiveScheduler
from mlthon.infra.ops.board import StatusBoard
from mlthon.infra.security import ADMIN_USER, bus_client_options, unique_client_id


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


class BrokerRefused(BusError):
    """The broker answered but refused the connection (``Not authorized``: a secured broker and
    no credentials, or wrong ones).

    Attributes:
        host: the broker's host.
        port: its port.
        reason: the broker's reason (``Not authorized``, ``Bad user name or password``).
        user: the user the client logged in as (None: anonymous).
    """

    def __init__(self, host: str, port: int, reason: str, user: str | None) -> None:
        who = f"as {user!r}" if user else "without credentials"
        super().__init__(f"the broker on {host}:{port} refused the connection {who}: {reason}")
        self.host = host
        self.port = port
        self.reason = reason
        self.user = user


#: What to do when the broker refuses the login (for the CLI's messages).
CREDENTIALS_HINT = (
    f"give the admin's credentials: user {ADMIN_USER} (--user or $MLTHON_BUS_USERNAME), password "
    "in a file of mode 600 (--password-file or $MLTHON_BUS_PASSWORD_FILE; `mlthon run --secure` "
    "prints where it wrote its run's) or $MLTHON_BUS_PASSWORD, and --tls-ca if it serves TLS"
)


async def refusal(
    host: str,
    port: int,
    *,
    username: str | None = None,
    password: str | None = None,
    tls_context: ssl.SSLContext | None = None,
    timeout_s: float = 3.0,
) -> str | None:
    """Why the broker refuses a connection with these credentials (its reason, such as ``Not
    authorized``), or None if it accepts one or cannot be reached: one connection attempt."""
    link = PahoLink(
        host,
        port,
        client_id=unique_client_id("probe"),
        clean_session=True,
        keepalive_s=10,
        username=username,
        password=password,
        will=None,
        tls_context=tls_context,
        on_message=lambda *_a: None,
        on_connected=lambda _present: None,
        on_lost=lambda _reason: None,
        on_read_batch=lambda: None,
        on_written=lambda: None,
    )
    try:
        await link.connect(timeout_s)
    except BusRefused as exc:
        return exc.reason
    except BusError:
        return None
    else:
        await link.disconnect()
        return None
    finally:
        link.close()


async def connect_or_explain(bus: MqttBus, options: dict[str, Any], timeout_s: float) -> None:
    """Wait until ``bus`` is connected.

    Raises:
        BrokerRefused: the broker refuses its login (asked once more to know why).
        BrokerUnreachable: no connection within ``timeout_s`` otherwise.
    """
    try:
        await bus.wait_connected(timeout_s)
    except TimeoutError:
        reason = await refusal(bus.host, bus.port, timeout_s=min(timeout_s, 3.0), **options)
        if reason is not None:
            raise BrokerRefused(bus.host, bus.port, reason, options.get("username")) from None
        raise BrokerUnreachable(bus.host, bus.port, timeout_s) from None


@contextlib.asynccontextmanager
async def watch(
    host: str,
    port: int,
    root: str,
    *,
    settle_s: float = 0.5,
    connect_timeout_s: float = 3.0,
    stale_after_s: float | None = None,
    client_options: dict[str, Any] | None = None,
) -> AsyncIterator[StatusBoard]:
    """Yield a started board holding every retained status under ``root``.

    ``client_options`` are the bus client's ``username``, ``password`` and ``tls_context``
    (default: :func:`~mlthon.infra.security.bus_client_options` of ``mlthon-admin``).

    Raises:
        BrokerUnreachable: no connection within ``connect_timeout_s``.
        BrokerRefused: the broker refused the login.
        ConfigError: a password or CA file cannot be read.
    """
    options = client_options if client_options is not None else bus_client_options(ADMIN_USER)
    bus = MqttBus(host, port, client_id=unique_client_id("ops"), reconnect_max_s=1.0, **options)
    async with bus:
        await connect_or_explain(bus, options, connect_timeout_s)
        board = StatusBoard(bus, LiveScheduler(), Topics(root), stale_after_s=stale_after_s)
        board.start()
        try:
            await asyncio.sleep(settle_s)  # retained messages arrive right after subscribing
            board.check()
            yield board
        finally:
            board.stop(unsubscribe=False)  # the bus closes next
