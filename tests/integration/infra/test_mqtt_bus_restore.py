"""After a lost connection the bus restores itself: its retained statuses are published again
(over a broker restart that lost them, and over the last will the broker published when the link
broke), unless a newer one waits already; its subscriptions are made again exactly once per
connect, and each handler runs once per message."""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from typing import Any

import pytest

from mlthon.basics import Exchange
from mlthon.basics.mlt_enum import GtwStatus
from mlthon.infra.broker import MosquittoBroker
from mlthon.infra.bus import messages as m
from mlthon.infra.bus.mqtt import MqttBus
from mlthon.infra.bus.topics import Topics
from mlthon.infra.ops.heartbeat import gateway_will
from tests.conftest import wait_until
from tests.fakes.tcp_proxy import TcpProxy

pytestmark = pytest.mark.integration


def _status(detail: str) -> m.GatewayStatus:
    return m.GatewayStatus(exchange=Exchange.Sim, status=GtwStatus.ReadyToTrade, detail=detail)


async def _retained(host: str, port: int, topic: str) -> Any:
    """What a fresh subscriber gets on ``topic`` (the retained message)."""
    seen: list[Any] = []
    async with MqttBus(host, port) as fresh:
        await fresh.wait_connected()
        fresh.subscribe(topic, lambda _t, x: seen.append(x), qos=1)
        await wait_until(lambda: seen, 30, f"the retained message on {topic}")
    return seen[-1]


async def test_mqtt_bus_retained_status_is_published_again_after_a_broker_restart(
    broker, topic_root
):
    topic, will = gateway_will(Topics(topic_root), Exchange.Sim)
    ready = _status("ready")
    gw = MqttBus(
        broker.host,
        broker.port,
        client_id=f"{topic_root}-gw",
        clean_session=False,
        will=(topic, will),
    )
    async with gw:
        await gw.wait_connected()
        gw.publish(topic, ready, qos=1, retain=True)
        assert await gw.flush()
        await asyncio.to_thread(broker.restart)  # no persistence: every retained message is gone
        await wait_until(lambda: gw.connects == 2, 30, "the reconnect")
        assert await gw.flush()
        assert await _retained(broker.host, broker.port, topic) == ready


async def test_mqtt_bus_status_replaces_the_last_will_after_a_cut_link(broker, topic_root):
    topic, will = gateway_will(Topics(topic_root), Exchange.Sim)
    ready = _status("ready")
    seen: list[Any] = []
    with TcpProxy(broker.port) as proxy:
        observer = MqttBus(broker.host, broker.port)
        gw = MqttBus(
            "127.0.0.1", proxy.port, client_id=f"{topic_root}-gw", clean_session=False,
            will=(topic, will),
        )  # fmt: skip
        async with observer, gw:
            await observer.wait_connected()
            observer.subscribe(topic, lambda _t, x: seen.append(x), qos=1)
            await gw.wait_connected()
            gw.publish(topic, ready, qos=1, retain=True)
            await wait_until(lambda: seen == [ready], 30, "the status")
            proxy.cut()
            await wait_until(lambda: seen[-1] == will, 30, "the broker's last will")
            proxy.resume()
            await wait_until(lambda: seen[-1] == ready, 30, "the status again")
            assert seen == [ready, will, ready]
            assert await _retained(broker.host, broker.port, topic) == ready


async def test_mqtt_bus_newer_status_sent_while_away_is_not_overtaken_by_the_older(
    broker, topic_root
):
    topic, will = gateway_will(Topics(topic_root), Exchange.Sim)
    done = f"{topic_root}/done"
    seen: list[Any] = []
    with TcpProxy(broker.port) as proxy:
        observer = MqttBus(broker.host, broker.port)
        gw = MqttBus("127.0.0.1", proxy.port, client_id=f"{topic_root}-gw", will=(topic, will))
        async with observer, gw:
            await observer.wait_connected()
            observer.subscribe(topic, lambda _t, x: seen.append(x), qos=1)
            observer.subscribe(done, lambda _t, x: seen.append("done"), qos=1)
            await gw.wait_connected()
            gw.publish(topic, _status("first"), qos=1, retain=True)
            await wait_until(lambda: seen, 30, "the first status")
            proxy.cut()
            await wait_until(lambda: seen[-1] == will, 30, "the broker's last will")
            gw.publish(topic, _status("second"), qos=1, retain=True)  # waits in the outbox
            proxy.resume()
            await wait_until(lambda: gw.connects == 2, 30, "the reconnect")
            gw.publish(done, _status("done"), qos=1)
            await wait_until(lambda: seen[-1] == "done", 30, "the end marker")
    assert seen == [_status("first"), will, _status("second"), "done"]


async def test_mqtt_bus_after_reconnects_subscribes_once_and_runs_each_handler_once(
    topic_root, tmp_path
):
    root = topic_root
    client_id = f"{root}-sub"
    calls: Counter[str] = Counter()

    def counting(name: str) -> Any:
        return lambda _t, _x: calls.update([name])

    conf = "log_type subscribe"
    with (
        MosquittoBroker(workdir=tmp_path, extra_conf=conf) as broker,
        TcpProxy(broker.port) as proxy,
    ):
        sub = MqttBus("127.0.0.1", proxy.port, client_id=client_id, clean_session=False)
        pub = MqttBus(broker.host, broker.port)
        async with sub, pub:
            await sub.wait_connected()
            await pub.wait_connected()
            sub.subscribe(f"{root}/a/#", counting("wild"), qos=1)
            sub.subscribe(f"{root}/a/x", counting("exact"), qos=1)
            sub.subscribe(f"{root}/a/#", counting("wild again"))  # same pattern, second handler
            sub.subscribe(f"{root}/end", counting("end"), qos=1)

            async def probe(n: int) -> None:
                # The subscriptions are in place when the broker routes the bus's own message
                # back (same connection: after the SUBSCRIBE).
                sub.publish(f"{root}/end", _status("probe"), qos=1)
                await wait_until(lambda: calls["end"] == n, 30, f"probe {n}")

            def subscribes(pattern: str) -> int:
                log = (tmp_path / "mosquitto.log").read_text()
                line = rf"^\d+: {re.escape(client_id)} \d {re.escape(pattern)}$"
                return len(re.findall(line, log, flags=re.MULTILINE))

            await probe(1)
            for k in (2, 3):
                proxy.cut()
                await wait_until(lambda: not sub.connected, 30, "the cut")
                proxy.resume()
                await wait_until(lambda k=k: sub.connects == k, 30, f"connect {k}")
                # cut again only once the broker has this connection's SUBSCRIBE (a cut right
                # after the CONNACK could drop it on its way: that connection would have none)
                await wait_until(
                    lambda k=k: subscribes(f"{root}/end") == k, 30, f"the SUBSCRIBE of connect {k}"
                )
            await asyncio.to_thread(broker.restart)
            await wait_until(lambda: sub.connects == 4, 30, "connect 4")
            await probe(2)
            for i in range(100):
                pub.publish(f"{root}/a/x", _status(str(i)), qos=1)
            pub.publish(f"{root}/end", _status("end"), qos=1)
            await wait_until(lambda: calls["end"] == 3, 30, "the end marker")
    assert calls == {"wild": 100, "exact": 100, "wild again": 100, "end": 3}
    log = (tmp_path / "mosquitto.log").read_text()
    subscribed = Counter(
        re.findall(rf"^\d+: {re.escape(client_id)} \d (\S+)$", log, flags=re.MULTILINE)
    )
    # Made once on the first connection, then once per reconnect (3); the restarted broker
    # appends to the same log. The second handler of a/# subscribed it again on the first
    # connection (so that the broker sends it the retained messages), never after a reconnect.
    assert subscribed == {f"{root}/a/#": 5, f"{root}/a/x": 4, f"{root}/end": 4}


async def test_mqtt_bus_a_late_second_handler_gets_the_retained_message(broker, topic_root):
    """A second handler of a pattern the bus subscribed already (a Telegram bridge beside the
    control service on one connection) still gets the retained status: the bus subscribes the
    pattern again, and the broker sends it its retained messages."""
    topic = f"{topic_root}/status/x"
    first: list[Any] = []
    late: list[Any] = []
    async with MqttBus(broker.host, broker.port) as pub, MqttBus(broker.host, broker.port) as sub:
        await pub.wait_connected()
        await sub.wait_connected()
        pub.publish(topic, _status("retained"), qos=1, retain=True)
        await pub.flush()
        sub.subscribe(f"{topic_root}/status/#", lambda _t, x: first.append(x), qos=1)
        await wait_until(lambda: first, 30, "the first handler's retained status")
        sub.subscribe(f"{topic_root}/status/#", lambda _t, x: late.append(x), qos=1)
        await wait_until(lambda: late, 30, "the late handler's retained status")
        assert late[0].detail == "retained"
