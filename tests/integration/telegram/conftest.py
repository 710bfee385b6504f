"""Fixtures: the fake Bot API, an in-process bus, a fake control service, a running bridge."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from mlthon.infra.bus import messages as m
from mlthon.infra.bus.inproc import InProcBus
from mlthon.infra.bus.topics import Topics
from mlthon.infra.clock import LiveScheduler
from mlthon.infra.telegram.bridge import TelegramBridge
from tests.fakes.bot_api import FakeBotApi
from tests.integration.telegram.support import (
    HOOKS,
    BridgeFactory,
    FakeControl,
    OffsetClock,
    make_config,
    wait_for,
)


@pytest.fixture
async def api() -> AsyncIterator[FakeBotApi]:
    async with FakeBotApi() as server:
        yield server


@pytest.fixture
def clock() -> OffsetClock:
    return OffsetClock()


@pytest.fixture
def topics() -> Topics:
    return Topics("mlt")


@pytest.fixture
async def bus(clock: OffsetClock) -> InProcBus:
    return InProcBus(LiveScheduler(clock))


@pytest.fixture
async def control(bus: InProcBus, topics: Topics) -> FakeControl:
    c = FakeControl(bus, topics)
    c.advertise("alpha", HOOKS)
    c.advertise("beta", [m.HookInfo(name="flatten", help="close every position", dangerous=True)])
    return c


@pytest.fixture
async def make_bridge(
    api: FakeBotApi, bus: InProcBus, clock: OffsetClock, topics: Topics, tmp_path: Path
) -> AsyncIterator[BridgeFactory]:
    started: list[TelegramBridge] = []

    async def factory(*, wait_ready: bool = True, **over: Any) -> TelegramBridge:
        bridge = TelegramBridge(make_config(api, tmp_path, **over), bus, topics=topics, clock=clock)
        await bridge.start()
        started.append(bridge)
        if wait_ready:
            await wait_for(bridge.ready.wait(), 30.0)
        return bridge

    yield factory
    for bridge in started:
        await bridge.stop()
