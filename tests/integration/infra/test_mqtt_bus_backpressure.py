"""Back-pressure: while a bus's outbox is backed up (its answers leave slower than it makes them),
it holds incoming QoS 1 messages, unhandled and unacknowledged, so that the backlog waits at its
input instead of in the outbox; once the outbox is down to half the bound the held messages are
handled, in order, once each, as many as keep the outbox under the bound."""

from __future__ import annotations

import pytest

from mlthon.infra.broker import MosquittoBroker
from mlthon.infra.bus.messages import StopAck
from mlthon.infra.bus.mqtt import MqttBus
from tests.conftest import wait_until
from tests.fakes.tcp_proxy import TcpProxy

pytestmark = pytest.mark.integration

HOLD_AT = 10


async def test_mqtt_bus_backed_up_outbox_holds_input_until_it_drains(
    mosquitto: MosquittoBroker, topic_root: str
) -> None:
    seen: list[tuple[str, int]] = []  # (message, outbox queue length when it was handled)
    # One unacknowledged message at a time: 3,000 publishes take 3,000 round trips to leave.
    slow = MqttBus(mosquitto.host, mosquitto.port, max_inflight=1, hold_input_at=HOLD_AT)
    async with slow, MqttBus(mosquitto.host, mosquitto.port) as peer:
        slow.subscribe(
            f"{topic_root}/in",
            lambda _t, m: seen.append((m.strat, len(slow._outbox.queue))),
            qos=1,
        )
        await slow.wait_connected(30)
        await peer.wait_connected(30)
        slow.publish(f"{topic_root}/in", StopAck(strat="probe"), qos=1)  # after the SUBSCRIBE
        await wait_until(lambda: seen, 30, "the probe")
        for i in range(3000):
            slow.publish(f"{topic_root}/sink", StopAck(strat=f"out{i}"), qos=1)
        assert len(slow._outbox.queue) > 2000
        for i in range(30):
            peer.publish(f"{topic_root}/in", StopAck(strat=f"in{i}"), qos=1)
        await wait_until(lambda: len(seen) == 31, 60, f"30 messages in ({len(seen) - 1})")
        assert await slow.flush(60)
    assert [s for s, _ in seen[1:]] == [f"in{i}" for i in range(30)]
    assert slow.held >= 1
    # none was handled while more than the bound waited in the outbox
    assert max(q for _, q in seen[1:]) <= HOLD_AT, seen


async def test_mqtt_bus_held_messages_come_again_after_a_cut_link_and_are_handled_once(
    broker: MosquittoBroker, topic_root: str
) -> None:
    """A persistent session whose link drops while it holds messages: they were never
    acknowledged, so the broker sends them again; each is handled once, in order."""
    seen: list[str] = []
    with TcpProxy(broker.port) as proxy:
        slow = MqttBus(
            "127.0.0.1",
            proxy.port,
            client_id=f"{topic_root.replace('/', '_')}-slow",
            clean_session=False,
            max_inflight=1,
            hold_input_at=HOLD_AT,
        )
        async with slow, MqttBus(broker.host, broker.port) as peer:
            slow.subscribe(f"{topic_root}/in", lambda _t, m: seen.append(m.strat), qos=1)
            await slow.wait_connected(30)
            await peer.wait_connected(30)
            slow.publish(f"{topic_root}/in", StopAck(strat="probe"), qos=1)
            await wait_until(lambda: seen, 30, "the probe")
            for i in range(3000):
                slow.publish(f"{topic_root}/sink", StopAck(strat=f"out{i}"), qos=1)
            for i in range(30):
                peer.publish(f"{topic_root}/in", StopAck(strat=f"in{i}"), qos=1)
            # the broker sends only so many unacknowledged messages (mosquitto: 20)
            await wait_until(lambda: len(slow._held) >= 10, 60, "messages held")
            assert len(seen) == 1
            proxy.cut()
            await wait_until(lambda: not slow.connected, 30, "the cut")
            proxy.resume()
            await wait_until(lambda: len(seen) >= 31, 60, f"30 messages in ({len(seen) - 1})")
            assert await slow.flush(60)
    assert seen[1:] == [f"in{i}" for i in range(30)]
