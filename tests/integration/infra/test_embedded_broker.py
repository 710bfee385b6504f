"""The embedded amqtt broker (`mlthon run` without mosquitto) gives mlthon's bus what it relies
on: QoS 1 delivery, retained messages for late subscribers, and messages kept for a persistent
session while its process is away."""

from __future__ import annotations

import pytest

from mlthon.infra.bus import messages as m
from mlthon.infra.bus.mqtt import MqttBus
from mlthon.infra.embedded_broker import EmbeddedBroker, embedded_broker_available
from tests.conftest import wait_until

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not embedded_broker_available(), reason="the broker extra is not installed"),
]


@pytest.fixture
def broker():
    with EmbeddedBroker() as b:
        yield b


async def test_retained_and_qos1_messages_reach_their_subscribers(broker):
    async with MqttBus(broker.host, broker.port, client_id="pub") as pub:
        await pub.wait_connected()
        pub.publish("t/status", m.StopAck(strat="retained"), qos=1, retain=True)
        assert await pub.flush()
        got: list[tuple[str, str]] = []
        async with MqttBus(broker.host, broker.port, client_id="sub") as sub:
            await sub.wait_connected()
            sub.subscribe("t/#", lambda t, x: got.append((t, x.strat)), qos=1)
            assert await sub.flush()
            pub.publish("t/req", m.StopAck(strat="live"), qos=1)
            await wait_until(lambda: len(got) == 2, 30, "the retained and the live message")
    assert got == [("t/status", "retained"), ("t/req", "live")]


async def test_a_persistent_session_gets_what_was_published_while_it_was_away(broker):
    got: list[str] = []
    away = MqttBus(broker.host, broker.port, client_id="strategy", clean_session=False)
    away.subscribe("rpt/#", lambda t, x: got.append(x.strat), qos=1)
    async with away:
        await away.wait_connected()
        assert await away.flush()
    async with MqttBus(broker.host, broker.port, client_id="gateway") as gw:
        await gw.wait_connected()
        for i in range(3):
            gw.publish("rpt/s", m.StopAck(strat=f"fill{i}"), qos=1)
        assert await gw.flush()
    back = MqttBus(broker.host, broker.port, client_id="strategy", clean_session=False)
    back.subscribe("rpt/#", lambda t, x: got.append(x.strat), qos=1)
    async with back:
        await wait_until(lambda: len(got) == 3, 30, "the messages kept while away")
    assert got == ["fill0", "fill1", "fill2"]
