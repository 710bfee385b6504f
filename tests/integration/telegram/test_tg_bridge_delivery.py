"""publish_telegram and alerts through the bridge's delivery queue to the fake Bot API."""

from __future__ import annotations

import itertools
import logging

import pytest

from mlthon.basics.mlt_enum import Exchange, FeedHandlerStatus, GtwStatus
from mlthon.infra.bus import messages as m
from mlthon.infra.bus.inproc import InProcBus
from mlthon.infra.bus.topics import Topics
from tests.conftest import wait_until
from tests.fakes.bot_api import FakeBotApi
from tests.integration.telegram.support import (
    ALPHA_CHAT,
    OPS_CHAT,
    BridgeFactory,
    FakeControl,
    OffsetClock,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]


def publish(
    bus: InProcBus, topics: Topics, text: str, priority: int = 2, strat: str = "alpha"
) -> None:
    bus.publish(
        topics.telegram(strat), m.TelegramPublish(strat=strat, text=text, priority=priority)
    )


def failed_sends(api: FakeBotApi) -> int:
    return sum(1 for c in api.calls_of("sendMessage") if c.status != 200)


async def test_publish_telegram_arrives_in_the_strategys_chat(
    api: FakeBotApi, bus: InProcBus, topics: Topics, make_bridge: BridgeFactory
) -> None:
    await make_bridge()
    publish(bus, topics, "filled 0.1 BTCUSDT @ 50000", priority=1)
    publish(bus, topics, "hello from gamma", strat="gamma")  # no chat of its own: ops chat
    await api.wait_for(lambda: len(api.sent()) == 2)
    assert api.texts(ALPHA_CHAT) == ["filled 0.1 BTCUSDT @ 50000"]
    assert api.texts(OPS_CHAT) == ["[gamma] hello from gamma"]


async def test_priority_lanes_send_errors_first_then_fills_then_status(
    api: FakeBotApi, bus: InProcBus, topics: Topics, make_bridge: BridgeFactory
) -> None:
    await make_bridge()
    # Queued together (one bus drain), before the delivery task runs again.
    for text, prio in [
        ("status a", 2),
        ("fill a", 1),
        ("status b", 2),
        ("KILLED", 0),
        ("fill b", 1),
    ]:
        publish(bus, topics, text, prio)
    await api.wait_for(lambda: len(api.texts(ALPHA_CHAT)) == 5)
    assert api.texts(ALPHA_CHAT) == ["KILLED", "fill a", "fill b", "status a", "status b"]


async def test_pacing_keeps_the_per_chat_interval(
    api: FakeBotApi, bus: InProcBus, topics: Topics, make_bridge: BridgeFactory
) -> None:
    await make_bridge(delivery={"per_chat_interval_s": 0.2})
    for i in range(3):
        publish(bus, topics, f"m{i}")
    await api.wait_for(lambda: len(api.texts(ALPHA_CHAT)) == 3)
    times = [c.at for c in api.calls_of("sendMessage")]
    assert all(b - a >= 0.18 for a, b in itertools.pairwise(times))


async def test_flood_429_retry_after_is_honoured(
    api: FakeBotApi, bus: InProcBus, topics: Topics, make_bridge: BridgeFactory
) -> None:
    await make_bridge()
    api.fail("sendMessage", 429, retry_after=1)
    publish(bus, topics, "after the flood")
    await api.wait_for(lambda: bool(api.texts(ALPHA_CHAT)))
    first, second = api.calls_of("sendMessage")
    assert first.status == 429
    assert second.at - first.at >= 0.95
    assert api.texts(ALPHA_CHAT) == ["after the flood"]


async def test_outage_then_recovery_sends_everything_marked_with_its_delay(
    api: FakeBotApi,
    bus: InProcBus,
    topics: Topics,
    clock: OffsetClock,
    make_bridge: BridgeFactory,
) -> None:
    await make_bridge()
    api.outage = {"sendMessage"}
    for i in range(3):
        publish(bus, topics, f"fill {i}", priority=1)
    await api.wait_for(lambda: failed_sends(api) >= 3)
    clock.advance(5 * 60)  # a five-minute outage
    publish(bus, topics, "fresh")
    api.outage = None
    await api.wait_for(lambda: len(api.texts(ALPHA_CHAT)) == 4)
    texts = api.texts(ALPHA_CHAT)
    assert texts[:3] == [f"(delayed 5m00s) fill {i}" for i in range(3)]
    assert texts[3] == "fresh"


async def test_long_message_is_split_under_the_limit(
    api: FakeBotApi, bus: InProcBus, topics: Topics, make_bridge: BridgeFactory
) -> None:
    await make_bridge()
    lines = [f"order {i:05d} BTCUSDT buy 0.001 @ 50000" for i in range(400)]
    publish(bus, topics, "\n".join(lines))
    await api.wait_for(lambda: len(api.texts(ALPHA_CHAT)) >= 4)
    parts = api.texts(ALPHA_CHAT)
    assert all(len(p) <= 4096 for p in parts)
    n = len(parts)
    assert [p.split(" ", 1)[0] for p in parts] == [f"({i}/{n})" for i in range(1, n + 1)]
    rebuilt = "\n".join(p.split(" ", 1)[1] for p in parts)
    assert rebuilt.splitlines() == lines


async def test_repeats_are_coalesced(
    api: FakeBotApi, bus: InProcBus, topics: Topics, make_bridge: BridgeFactory
) -> None:
    await make_bridge()
    api.outage = {"sendMessage"}
    publish(bus, topics, "first")
    await api.wait_for(lambda: failed_sends(api) >= 1)
    for _ in range(5):
        publish(bus, topics, "spread too wide", priority=2)
    api.outage = None
    await api.wait_for(lambda: len(api.texts(ALPHA_CHAT)) == 2)
    assert api.texts(ALPHA_CHAT) == ["first", "spread too wide (\u00d75)"]


async def test_full_queue_drops_oldest_low_priority_and_reports_the_count(
    api: FakeBotApi,
    bus: InProcBus,
    topics: Topics,
    make_bridge: BridgeFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    bridge = await make_bridge(delivery={"max_pending": 5})
    assert bridge.delivery is not None
    delivery = bridge.delivery
    api.outage = {"sendMessage"}
    publish(bus, topics, "KILL SWITCH", priority=0)
    await wait_until(lambda: not delivery.online, what="outage noticed")
    with caplog.at_level(logging.WARNING):
        for i in range(8):
            publish(bus, topics, f"status {i}", priority=2)
        publish(bus, topics, "fill", priority=1)
        await api.wait_for(lambda: failed_sends(api) >= 2)
        api.outage = None
        await api.wait_for(
            lambda: len(api.texts(OPS_CHAT)) == 1 and len(api.texts(ALPHA_CHAT)) == 5
        )
    assert api.texts(ALPHA_CHAT) == ["KILL SWITCH", "fill", "status 5", "status 6", "status 7"]
    assert api.texts(OPS_CHAT)[0].startswith("⚠ 5 low-priority message(s) were dropped")
    assert "5 message(s) were dropped" in caplog.text


async def test_alerts_reach_the_ops_chat(
    api: FakeBotApi,
    bus: InProcBus,
    topics: Topics,
    control: FakeControl,
    make_bridge: BridgeFactory,
) -> None:
    await make_bridge()
    gtw = topics.gtw_status(Exchange.Bybit)
    bus.publish(gtw, m.GatewayStatus(exchange=Exchange.Bybit, status=GtwStatus.ReadyToTrade))
    bus.publish(
        gtw,
        m.GatewayStatus(exchange=Exchange.Bybit, status=GtwStatus.Connecting, detail="ws closed"),
    )
    feed = topics.feed_status(Exchange.Bybit)
    bus.publish(
        feed,
        m.FeedStatus(
            ex=Exchange.Bybit.value,
            iid=1001,
            status=FeedHandlerStatus.BookInvalid,
            detail="sequence gap",
        ),
    )
    bus.publish(feed, m.FeedStatus(ex=Exchange.Bybit.value, status=FeedHandlerStatus.Disconnected))
    control.advertise("alpha", callback_errors=3)
    bus.publish(topics.strat_ctl("alpha"), m.StopEscalated(strat="alpha", detail="cancel-all sent"))
    await api.wait_for(lambda: len(api.texts(OPS_CHAT)) == 5)
    assert api.texts(OPS_CHAT) == [
        "🔴 gateway Bybit: ReadyToTrade → Connecting (ws closed)",
        "🔴 book Bybit #1001: invalid (sequence gap)",
        "🔴 feed Bybit: disconnected",
        "⚠ strategy alpha: 3 new callback error(s), 3 in total",
        "🛑 strategy alpha: stop escalated — cancel-all sent",
    ]
    bus.publish(gtw, m.GatewayStatus(exchange=Exchange.Bybit, status=GtwStatus.ReadyToTrade))
    await api.wait_for(lambda: len(api.texts(OPS_CHAT)) == 6)
    assert api.texts(OPS_CHAT)[5] == "🟢 gateway Bybit: ready to trade"


async def test_messages_wait_while_telegram_is_down_at_start(
    api: FakeBotApi, bus: InProcBus, topics: Topics, make_bridge: BridgeFactory
) -> None:
    api.outage = {"*"}
    bridge = await make_bridge(wait_ready=False)
    publish(bus, topics, "queued before the bot connected")
    await api.wait_for(lambda: len(api.calls_of("getMe")) >= 2)
    api.outage = None
    await api.wait_for(lambda: bool(api.texts(ALPHA_CHAT)))
    assert bridge.ready.is_set()
    assert api.texts(ALPHA_CHAT) == ["queued before the bot connected"]


async def test_migrated_group_gets_its_messages_at_the_new_id(
    api: FakeBotApi,
    bus: InProcBus,
    topics: Topics,
    make_bridge: BridgeFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await make_bridge()
    api.fail("sendMessage", 400, migrate_to_chat_id=-1009001)
    with caplog.at_level(logging.WARNING):
        publish(bus, topics, "to the old group")
        await api.wait_for(lambda: bool(api.texts(-1009001)))
        publish(bus, topics, "later")
        await api.wait_for(lambda: len(api.texts(-1009001)) == 2)
    assert api.texts(-1009001) == ["to the old group", "later"]
    assert f"chat {ALPHA_CHAT} migrated to -1009001" in caplog.text


async def test_refused_message_is_dropped_and_the_rest_goes_on(
    api: FakeBotApi, bus: InProcBus, topics: Topics, make_bridge: BridgeFactory
) -> None:
    bridge = await make_bridge()
    api.fail("sendMessage", 403, "Forbidden: bot was blocked by the user")
    publish(bus, topics, "blocked", priority=0)
    publish(bus, topics, "next")
    await api.wait_for(lambda: bool(api.texts(ALPHA_CHAT)))
    assert api.texts(ALPHA_CHAT) == ["next"]
    assert bridge.delivery is not None
    assert bridge.delivery.failed == 1
