"""The bus reads MQTT packets itself: packets split across reads or many in one read all arrive,
in order, and each QoS 1 one is acknowledged after its handler ran; a malformed or oversized
packet drops the link with a clear error and the bus reconnects; keepalive pings are sent and
their answers read (an unanswered ping drops the link); TLS works, including the bytes TLS keeps
decrypted, which wake no selector.

A scripted broker (:class:`ScriptedBroker`, on 127.0.0.1) sends exact bytes where mosquitto
would not; mosquitto serves the rest."""

from __future__ import annotations

import asyncio
import logging
import shutil
from typing import Any

import pytest

from mlthon.infra.broker import MosquittoBroker
from mlthon.infra.bus import messages as m
from mlthon.infra.bus import paho_link
from mlthon.infra.bus.codec import encode
from mlthon.infra.bus.mqtt import MqttBus
from mlthon.infra.bus.mqtt_packets import PacketReader, publish_head, topic_field
from mlthon.infra.security import client_tls_context
from tests.conftest import wait_until
from tests.integration.reliability.test_broker_security import _make_certs

pytestmark = pytest.mark.integration

CONNECT, SUBSCRIBE, PUBACK, PINGREQ, DISCONNECT = 0x10, 0x80, 0x40, 0xC0, 0xE0


def publish(topic: str, payload: bytes, qos: int = 0, packet_id: int = 0, *, retain: bool = False,
            dup: bool = False) -> bytes:  # fmt: skip
    head = bytearray(publish_head(topic_field(topic), len(payload), qos, retain))
    head[0] |= 8 if dup else 0
    return bytes(head) + (packet_id.to_bytes(2, "big") if qos else b"") + payload


def status(i: int) -> bytes:
    return encode(m.StopAck(strat=f"s{i}"))


class Client:
    """One connection to the scripted broker: the packets the bus sent, in order."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.packets: list[tuple[int, bytes]] = []  # (packet type, body) but PUBLISH
        self.closed = asyncio.Event()

    def kinds(self, kind: int) -> list[bytes]:
        return [body for first, body in self.packets if first & 0xF0 == kind]

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()


class ScriptedBroker:
    """Accepts connections, answers CONNECT with CONNACK, SUBSCRIBE with SUBACK (unless
    ``answer_subscribes`` is False) and PINGREQ with PINGRESP (unless ``answer_pings`` is False),
    closes on DISCONNECT; the test sends the rest itself."""

    def __init__(self, *, answer_pings: bool = True, answer_subscribes: bool = True) -> None:
        self.answer_pings = answer_pings
        self.answer_subscribes = answer_subscribes
        self.clients: list[Client] = []
        self.port = 0
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> ScriptedBroker:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for c in self.clients:
            c.writer.close()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        client = Client(reader, writer)
        self.clients.append(client)

        def on_packet(first: int, body: bytes) -> None:
            client.packets.append((first & 0xF0, body))
            kind = first & 0xF0
            if kind == CONNECT:
                writer.write(b"\x20\x02\x00\x00")
            elif kind == SUBSCRIBE and self.answer_subscribes:
                writer.write(b"\x90\x03" + body[:2] + b"\x01")
            elif kind == PINGREQ and self.answer_pings:
                writer.write(b"\xd0\x00")
            elif kind == DISCONNECT:
                writer.close()

        packets = PacketReader(lambda *_a: None, on_packet)
        try:
            while data := await reader.read(65536):
                packets.feed(data)
        except ConnectionError:
            pass
        finally:
            client.closed.set()

    async def client(self, n: int = 1, timeout: float = 10.0) -> Client:
        """The ``n``-th connection, once its CONNECT came."""
        await wait_until(
            lambda: len(self.clients) >= n and self.clients[n - 1].kinds(CONNECT), timeout,
            f"connection {n}",
        )  # fmt: skip
        return self.clients[n - 1]


class Recorder:
    """Subscribed to everything: what the handlers saw, and the PUBACKs sent by then."""

    def __init__(self, bus: MqttBus, broker: ScriptedBroker) -> None:
        self.seen: list[tuple[str, str]] = []
        self.acks_then: list[int] = []
        self.broker = broker
        bus.subscribe("#", self.on_msg, qos=1)

    def on_msg(self, topic: str, msg: Any) -> None:
        self.seen.append((topic, msg.strat))
        self.acks_then.append(len(self.broker.clients[-1].kinds(PUBACK)))


def _bus(port: int, **kw: Any) -> MqttBus:
    return MqttBus("127.0.0.1", port, reconnect_min_s=0.05, reconnect_max_s=0.2, **kw)


async def test_mqtt_bus_packets_split_across_reads_arrive_once_and_qos1_is_acked_after(caplog):
    # QoS 0 and 1, retained, DUP; cut inside the fixed header, the length, the topic, the id
    stream = [
        publish("a/x", status(0)),
        publish("a/y", status(1), 1, 11),
        publish("a/z", status(2) + b" " * 300, 1, 12, retain=True),  # two length bytes
        publish("a/w", status(3), 1, 13, dup=True),
    ]
    async with ScriptedBroker() as broker, _bus(broker.port) as bus:
        rec = Recorder(bus, broker)
        client = await broker.client()
        await wait_until(lambda: client.kinds(SUBSCRIBE), 30, "the SUBSCRIBE")
        link = bus._link
        assert link is not None
        for packet in stream:
            for cut in (1, 2, 3, 6):
                await client.send(packet[:cut])
                await wait_until(lambda: link._reader.buffered > 0, 30, "the first part read")
                await client.send(packet[cut:])
                await wait_until(lambda: link._reader.buffered == 0, 30, "the rest read")
        await wait_until(lambda: len(client.kinds(PUBACK)) == 12, 30, "12 PUBACKs")
    topics = ["a/x", "a/y", "a/z", "a/w"]
    assert rec.seen == [(t, f"s{i}") for i, t in enumerate(topics) for _ in range(4)]
    ids = [int.from_bytes(body, "big") for body in client.kinds(PUBACK)]
    assert ids == [i for i in (11, 12, 13) for _ in range(4)]
    # each PUBACK left after its message was handled: the broker had not got it by then
    acks_then = [n for (t, _), n in zip(rec.seen, rec.acks_then, strict=True) if t != "a/x"]
    assert all(n <= k for k, n in enumerate(acks_then)), acks_then
    assert bus.malformed == 0 and bus.connects == 1


async def test_mqtt_bus_many_packets_in_one_read_arrive_in_order_each_acked_once():
    n = 3000
    data = b"".join(publish(f"b/{i % 7}", status(i), i % 2, 1 + i // 2 if i % 2 else 0)
                    for i in range(n))  # fmt: skip
    async with ScriptedBroker() as broker, _bus(broker.port) as bus:
        rec = Recorder(bus, broker)
        client = await broker.client()
        await wait_until(lambda: client.kinds(SUBSCRIBE), 30, "the SUBSCRIBE")
        await client.send(data)
        await wait_until(lambda: len(client.kinds(PUBACK)) == n // 2, 30, "the PUBACKs")
    assert [s for _, s in rec.seen] == [f"s{i}" for i in range(n)]
    assert [int.from_bytes(b, "big") for b in client.kinds(PUBACK)] == list(range(1, n // 2 + 1))


async def test_mqtt_bus_flush_waits_for_the_answer_to_each_subscribe():
    """After ``flush`` the broker routes what others publish on a pattern subscribed before it:
    the SUBACK has come. A flush that gets no SUBACK returns False at its deadline."""
    async with ScriptedBroker(answer_subscribes=False) as broker, _bus(broker.port) as bus:
        await bus.wait_connected()
        client = await broker.client()
        bus.subscribe("d/#", lambda _t, _x: None, qos=1)
        flushed = asyncio.ensure_future(bus.flush(timeout_s=30))
        await wait_until(lambda: client.kinds(SUBSCRIBE), 30, "the SUBSCRIBE")
        await asyncio.sleep(0.05)  # flush must not return on the SUBSCRIBE's mere writing
        assert not flushed.done()
        packet_id = client.kinds(SUBSCRIBE)[-1][:2]
        await client.send(b"\x90\x03" + packet_id + b"\x01")
        assert await asyncio.wait_for(flushed, 10)
        bus.subscribe("e/#", lambda _t, _x: None)
        assert not await bus.flush(timeout_s=0.2)


MALFORMED = {
    "length of five bytes": b"\x30\xff\xff\xff\xff\x01",
    "QoS 3": b"\x36\x05\x00\x01t\x00\x01",
    "topic past the end": b"\x30\x03\x00\x09t",
    "reserved type": b"\xf0\x00",
    "CONNACK again": b"\x20\x02\x00\x00",
    "short PUBACK": b"\x40\x01\x00",
}


@pytest.mark.parametrize("bad", MALFORMED.values(), ids=MALFORMED.keys())
async def test_mqtt_bus_malformed_packet_drops_the_link_with_a_clear_error_and_reconnects(
    bad, caplog
):
    async with ScriptedBroker() as broker, _bus(broker.port) as bus:
        rec = Recorder(bus, broker)
        first = await broker.client()
        await wait_until(lambda: first.kinds(SUBSCRIBE), 30, "the SUBSCRIBE")
        await first.send(publish("c/ok", status(1)) + bad + publish("c/after", status(2)))
        async with asyncio.timeout(10):
            await first.closed.wait()  # the bus dropped the link
        second = await broker.client(2)
        await wait_until(lambda: second.kinds(SUBSCRIBE), 30, "the SUBSCRIBE again")
        await second.send(publish("c/next", status(3)))
        await wait_until(lambda: len(rec.seen) == 2, 30, "the message on the new link")
    assert rec.seen == [("c/ok", "s1"), ("c/next", "s3")]
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert any("malformed MQTT packet from the broker" in r.getMessage() for r in errors), errors
    assert bus.connects == 2


async def test_mqtt_bus_oversized_packet_drops_the_link_before_its_bytes_come(caplog):
    async with ScriptedBroker() as broker, _bus(broker.port, max_packet=1 << 20) as bus:
        first = await broker.client()
        await wait_until(lambda: bus.connected, 30, "the connection")
        await first.send(b"\x30\x80\x80\x80\x01")  # a PUBLISH of 2 MiB announced; none sent
        async with asyncio.timeout(10):
            await first.closed.wait()
        await broker.client(2)
    assert any("over the bound of 1,048,576" in r.getMessage() for r in caplog.records)


async def test_mqtt_bus_unanswered_pings_drop_the_link_and_answered_ones_keep_it():
    async with ScriptedBroker(answer_pings=False) as mute, _bus(mute.port, keepalive_s=1) as bus:
        first = await mute.client()
        async with asyncio.timeout(20):
            await first.closed.wait()
        assert first.kinds(PINGREQ)
        await mute.client(2)
    async with ScriptedBroker() as broker, _bus(broker.port, keepalive_s=1) as bus:
        client = await broker.client()
        await wait_until(lambda: len(client.kinds(PINGREQ)) >= 4, 30, "four pings")
        assert bus.connected and bus.connects == 1 and len(broker.clients) == 1
    assert client.kinds(DISCONNECT)  # a clean goodbye on close


async def test_mqtt_bus_keepalive_over_mosquitto_pings_and_stays_connected(topic_root, tmp_path):
    with MosquittoBroker(workdir=tmp_path, extra_conf="log_type all") as broker:
        bus = MqttBus(broker.host, broker.port, client_id=f"{topic_root}-ka", keepalive_s=1)
        async with bus:
            await bus.wait_connected()

            def pongs() -> int:
                log = (tmp_path / "mosquitto.log").read_text()
                return log.count(f"Sending PINGRESP to {bus.client_id}")

            await wait_until(lambda: pongs() >= 3, 30, "three ping round trips")
            assert bus.connected and bus.connects == 1


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl binary")
@pytest.mark.parametrize("read_size", [paho_link.READ_SIZE, 1000])
async def test_mqtt_bus_over_tls_gets_bursts_of_any_size_complete_and_in_order(
    topic_root, tmp_path, monkeypatch, read_size
):
    """Messages of up to 200 KB over TLS, read in the link's own size and in reads smaller than
    a TLS record (16 KiB): what TLS holds decrypted after a read wakes no selector, and must
    still be read without more bytes coming."""
    monkeypatch.setattr(paho_link, "READ_SIZE", read_size)
    tls = _make_certs(tmp_path)
    ctx = client_tls_context(tmp_path / "ca.pem")
    sizes = [10, 700, 16_000, 16_384, 40_000, 65_536, 200_000]
    got: list[tuple[str, int]] = []
    with MosquittoBroker(workdir=tmp_path, tls=tls) as broker:
        # no keepalive ping within the test's deadlines: nothing else wakes a stuck reader
        sub = MqttBus(broker.host, broker.port, tls_context=ctx, keepalive_s=60)
        pub = MqttBus(broker.host, broker.port, tls_context=ctx, keepalive_s=60)
        async with sub, pub:
            await sub.wait_connected()
            await pub.wait_connected()
            sub.subscribe(f"{topic_root}/#", lambda t, x: got.append((t, len(x.detail))), qos=1)
            # The probe goes out on the subscriber's own connection, so the broker has the
            # SUBSCRIBE before it; from ``pub`` it could overtake the SUBSCRIBE and be lost.
            sub.publish(f"{topic_root}/probe", m.StratStatus(strat="p", state="x"), qos=1)
            await wait_until(lambda: got, 30, "the probe")
            expected = []
            for rnd in range(3):
                for i, size in enumerate(sizes * 3):
                    topic = f"{topic_root}/q{(i + rnd) % 2}"
                    msg = m.StratStatus(strat="p", state="x", detail="d" * size)
                    pub.publish(topic, msg, qos=(i + rnd) % 2)
                    expected.append((topic, size))
                await wait_until(lambda: len(got) == 1 + len(expected), 60, "the burst")
            assert await pub.flush()
    assert got[1:] == expected
