"""At-least-once over MQTT survives a dropped link: a QoS 1 burst reaches a persistent
subscriber complete, in order, whether the link is cut (a TCP proxy resets it) or the broker
restarts (persistence on), even when the link drops again while the backlog of the first drop is
being sent."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from mlthon.infra.broker import MosquittoBroker
from mlthon.infra.bus import messages as m
from mlthon.infra.bus.mqtt import MqttBus
from tests.conftest import wait_until
from tests.fakes.tcp_proxy import TcpProxy

pytestmark = pytest.mark.integration

N = 2000


def _msg(i: int) -> m.TradeUpdate:
    return m.TradeUpdate(ex=1, iid=7, ts=i, seq=i, tr=[])


async def _subscribed(bus: MqttBus, topic: str, handler: Callable[[int], None]) -> None:
    """Subscribe ``bus`` at QoS 1 and return once the broker routes ``topic`` to it (a probe the
    bus sends itself comes back: same connection, so after the SUBSCRIBE)."""
    probed = asyncio.Event()

    def on_msg(_t: str, msg: m.TradeUpdate) -> None:
        if msg.seq < 0:
            probed.set()
        else:
            handler(msg.seq)

    bus.subscribe(topic, on_msg, qos=1)
    bus.publish(topic, _msg(-1), qos=1)
    async with asyncio.timeout(30):
        await probed.wait()


class Burst:
    """Publishes 0..N-1 at QoS 1, a few per loop turn."""

    def __init__(self, bus: MqttBus, topic: str) -> None:
        self.bus = bus
        self.topic = topic
        self.next = 0

    async def send(self, k: int) -> None:
        end = min(N, self.next + k)
        while self.next < end:
            self.bus.publish(self.topic, _msg(self.next), qos=1)
            self.next += 1
            if self.next % 25 == 0:
                await asyncio.sleep(0)


def _check_complete_and_ordered(got: list[int]) -> None:
    firsts = list(dict.fromkeys(got))  # first arrival of each (repeats are allowed)
    assert sorted(firsts) == list(range(N)), f"missing: {sorted(set(range(N)) - set(got))[:20]}"
    assert firsts == list(range(N)), "a message arrived before an earlier one"


async def test_mqtt_bus_qos1_burst_through_a_cut_link_arrives_complete_and_in_order(
    broker, topic_root
):
    topic = f"{topic_root}/burst"
    got: list[int] = []
    with TcpProxy(broker.port) as proxy:
        sub = MqttBus("127.0.0.1", proxy.port, client_id=f"{topic_root}-sub", clean_session=False)
        pub = MqttBus("127.0.0.1", proxy.port, client_id=f"{topic_root}-pub")
        async with sub, pub:
            await sub.wait_connected()
            await pub.wait_connected()
            await _subscribed(sub, topic, got.append)
            burst = Burst(pub, topic)
            await burst.send(500)
            assert proxy.cut() == 2  # both links reset mid-burst, acks in flight
            await wait_until(lambda: not pub.connected and not sub.connected, 30, "the cut")
            await burst.send(500)  # while the link is down: kept in the outbox
            proxy.resume()
            await wait_until(lambda: pub.connects == 2, 30, "the publisher's reconnect")
            proxy.cut()  # again, while the backlog of the first cut is on its way
            await burst.send(500)
            proxy.resume()
            await burst.send(500)
            await wait_until(lambda: len(set(got)) >= N, 60, f"{N} messages ({len(set(got))})")
            assert await pub.flush(30)
    _check_complete_and_ordered(got)


async def test_mqtt_bus_qos1_burst_across_broker_restarts_arrives_complete_and_in_order(
    topic_root, tmp_path
):
    topic = f"{topic_root}/burst"
    got: list[int] = []
    with MosquittoBroker(persistence=True, workdir=tmp_path) as broker:
        sub = MqttBus(broker.host, broker.port, client_id=f"{topic_root}-sub", clean_session=False)
        pub = MqttBus(broker.host, broker.port, client_id=f"{topic_root}-pub")
        async with sub, pub:
            await sub.wait_connected()
            await pub.wait_connected()
            await _subscribed(sub, topic, got.append)
            burst = Burst(pub, topic)
            await burst.send(500)
            restart = asyncio.create_task(asyncio.to_thread(broker.restart))
            while not restart.done():  # publishing goes on while the broker is away
                await burst.send(5)
                await asyncio.sleep(0.01)
            await restart
            await wait_until(lambda: pub.connects == 2, 30, "the publisher's reconnect")
            await asyncio.to_thread(broker.restart)  # while the backlog is on its way
            await burst.send(N)
            await wait_until(lambda: len(set(got)) >= N, 60, f"{N} messages ({len(set(got))})")
            assert await pub.flush(30)
    _check_complete_and_ordered(got)


async def test_mqtt_bus_keeps_call_order_behind_a_full_window(mosquitto, topic_root):
    """QoS 0 and QoS 1 publishes and a subscribe reach the broker in call order, even while
    QoS 1 messages wait for the window (one path for everything)."""
    got: list[int] = []
    own: list[int] = []
    async with (
        MqttBus(mosquitto.host, mosquitto.port) as sub,
        MqttBus(mosquitto.host, mosquitto.port, max_inflight=1) as pub,
    ):
        await sub.wait_connected()
        await pub.wait_connected()
        await _subscribed(sub, f"{topic_root}/mixed", got.append)
        for i in range(300):
            pub.publish(f"{topic_root}/mixed", _msg(i), qos=i % 2)
        # Behind 150 QoS 1 messages: the subscribe goes out before the publish that follows.
        pub.subscribe(f"{topic_root}/own", lambda _t, x: own.append(x.seq), qos=1)
        pub.publish(f"{topic_root}/own", _msg(1), qos=1)
        await wait_until(lambda: own == [1], 30, "the bus's own message")
        await wait_until(lambda: len(got) == 300, 30, "300 messages")
        assert got == list(range(300))
