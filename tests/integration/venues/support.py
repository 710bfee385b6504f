"""Helpers of the venue gateway tests: a live gateway on an in-process bus, reports collected."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from mlthon.basics.instrument import Instrument
from mlthon.basics.mlt_enum import Exchange, GtwStatus
from mlthon.gateways.live.config import Credentials, LiveGatewayConfig
from mlthon.gateways.live.gateway import LiveGateway
from mlthon.infra.bus.inproc import InProcBus
from mlthon.infra.bus.messages import GatewayStatus, Msg
from mlthon.infra.bus.topics import Topics
from mlthon.infra.clock import LiveScheduler
from mlthon.infra.instruments import load_instruments
from tests.conftest import wait_until

STRAT = "s1"


class Harness:
    """A gateway under test, the bus it is on, and everything it reported."""

    def __init__(self, gateway: LiveGateway, bus: InProcBus, topics: Topics) -> None:
        self.gw = gateway
        self.bus = bus
        self.topics = topics
        self.reports: list[Msg] = []
        self.statuses: list[GatewayStatus] = []
        bus.subscribe(topics.gtw_rpt(gateway.exchange, "+"), lambda t, m: self.reports.append(m))
        bus.subscribe(topics.gtw_status(gateway.exchange), lambda t, m: self.statuses.append(m))

    def send(self, msg: Msg) -> None:
        """Publish a request as a strategy would."""
        self.bus.publish(self.topics.gtw_req(self.gw.exchange, msg.strat), msg)

    def of(self, kind: type[Any], **match: object) -> list[Any]:
        """Reports of one kind whose fields equal ``match``."""
        return [
            r
            for r in self.reports
            if isinstance(r, kind) and all(getattr(r, k) == v for k, v in match.items())
        ]

    async def wait(
        self, kind: type[Any], n: int = 1, timeout: float = 30.0, **match: object
    ) -> list[Any]:
        """Wait until ``n`` reports of ``kind`` (matching) arrived; return them."""
        await wait_until(lambda: len(self.of(kind, **match)) >= n, timeout, f"{n} {kind.__name__}")
        return self.of(kind, **match)

    async def ready(self, n: int = 1, timeout: float = 30.0) -> None:
        """Wait for the ``n``-th ReadyToTrade."""
        await wait_until(
            lambda: sum(s.status is GtwStatus.ReadyToTrade for s in self.statuses) >= n,
            timeout,
            "ReadyToTrade",
        )


def instruments(exchange: Exchange) -> list[Instrument]:
    """The packaged instruments of one exchange."""
    return [i for i in load_instruments() if i.exchange is exchange]


@contextlib.asynccontextmanager
async def running(
    build: Any, config: LiveGatewayConfig, creds: Credentials, exchange: Exchange
) -> AsyncIterator[Harness]:
    """Run a gateway built by ``build(bus, scheduler, topics, config, instruments, creds)``."""
    scheduler = LiveScheduler(loop=asyncio.get_running_loop())
    bus = InProcBus(scheduler)
    topics = Topics("t")
    gw = build(bus, scheduler, topics, config, instruments(exchange), creds)
    h = Harness(gw, bus, topics)
    stop = asyncio.Event()
    task = asyncio.create_task(gw.run(stop), name="test.gateway")
    try:
        yield h
    finally:
        stop.set()
        async with asyncio.timeout(30):
            await task
