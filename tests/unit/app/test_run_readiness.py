"""What `mlthon run` waits for before it starts the strategy: the gateway's ReadyToTrade and the
feed's streaming status, both sent after the parts were started; a retained status of an
earlier run or a dead process's last will does not count, and a part that never comes up is
named with its last status."""

from __future__ import annotations

import asyncio

from mlthon.app.readiness import VenueReadiness
from mlthon.basics.mlt_enum import Exchange, FeedHandlerStatus, GtwStatus
from mlthon.infra.bus import messages as m
from mlthon.infra.bus.inproc import InProcBus
from mlthon.infra.bus.topics import Topics
from mlthon.infra.clock import LiveScheduler
from mlthon.infra.ops.heartbeat import feed_will, gateway_will

SIM = Exchange.Sim
SINCE = 1_000


def _gw(status: GtwStatus, ts: int, detail: str = "") -> m.GatewayStatus:
    return m.GatewayStatus(exchange=SIM, status=status, detail=detail, ts=ts)


def _feed(status: FeedHandlerStatus, ts: int) -> m.FeedStatus:
    return m.FeedStatus(ex=SIM.value, iid=0, status=status, detail="", ts=ts)


async def test_run_readiness_waits_for_fresh_ready_statuses():
    bus = InProcBus(LiveScheduler())
    topics = Topics("t")
    # What the broker kept from before: an earlier run's ready gateway, a dead feed's will.
    bus.publish(topics.gtw_status(SIM), _gw(GtwStatus.ReadyToTrade, SINCE - 1), retain=True)
    will_topic, will = feed_will(topics, SIM)
    bus.publish(will_topic, will, retain=True)
    ready = VenueReadiness(bus, topics, SIM, SINCE)
    waiter = asyncio.ensure_future(ready.wait(30, give_up=asyncio.Event()))
    await asyncio.sleep(0.05)
    assert not waiter.done()
    bus.publish(topics.gtw_status(SIM), _gw(GtwStatus.Connecting, SINCE + 1))
    bus.publish(topics.feed_status(SIM), _feed(FeedHandlerStatus.SnapshotEnd, SINCE + 2))
    await asyncio.sleep(0.05)
    assert not waiter.done()
    bus.publish(topics.gtw_status(SIM), _gw(GtwStatus.ReadyToTrade, SINCE + 3))
    assert await asyncio.wait_for(waiter, 5) == []
    ready.close()


async def test_run_readiness_names_what_never_came_up():
    bus = InProcBus(LiveScheduler())
    topics = Topics("t")
    ready = VenueReadiness(bus, topics, SIM, SINCE)
    will_topic, will = gateway_will(topics, SIM)
    bus.publish(will_topic, will)
    missing = await ready.wait(0.2, give_up=asyncio.Event())
    assert missing == [
        "the Sim gateway has not said ReadyToTrade (last: Connecting 'gateway process lost')",
        "the Sim feed has not said it is streaming (last: nothing heard)",
    ]
    stop = asyncio.Event()
    stop.set()
    assert len(await ready.wait(30, give_up=stop)) == 2  # a Ctrl-C ends the wait at once
