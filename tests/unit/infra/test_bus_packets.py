"""MQTT packets cut from a byte stream however it comes (split anywhere, many at once), with
remaining lengths of one to four bytes, QoS 0 and 1, the retained and DUP flags; a stream that
breaks the protocol raises BadPacket, never anything else."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlthon.basics.errors import BusError
from mlthon.infra.bus.mqtt_packets import (
    MAX_REMAINING,
    BadPacket,
    PacketReader,
    packet_id_of,
    puback_packet,
    publish_head,
    remaining_length,
    subscribe_packet,
    topic_field,
    unsubscribe_packet,
)


def publish(topic: str, payload: bytes, qos: int = 0, packet_id: int = 0, *, retain: bool = False,
            dup: bool = False) -> bytes:  # fmt: skip
    head = bytearray(publish_head(topic_field(topic), len(payload), qos, retain))
    if dup:
        head[0] |= 8
    return bytes(head) + (packet_id.to_bytes(2, "big") if qos else b"") + payload


class Sink:
    """Records what a reader hands on."""

    def __init__(self, max_packet: int = 1 << 26) -> None:
        self.got: list[tuple[Any, ...]] = []
        self.reader = PacketReader(self.on_publish, self.on_packet, max_packet)

    def on_publish(self, topic: bytes, payload: bytes, qos: int, pid: int, retain: bool,
                   dup: bool) -> None:  # fmt: skip
        self.got.append(("pub", topic, payload, qos, pid, retain, dup))

    def on_packet(self, first: int, body: bytes) -> None:
        self.got.append(("pkt", first, body))


STREAM = [
    (publish("a/b", b"zero"), ("pub", b"a/b", b"zero", 0, 0, False, False)),
    (publish("a/c", b"one", 1, 7), ("pub", b"a/c", b"one", 1, 7, False, False)),
    (publish("r", b"kept", 1, 65535, retain=True), ("pub", b"r", b"kept", 1, 65535, True, False)),
    (publish("d", b"again", 1, 9, dup=True), ("pub", b"d", b"again", 1, 9, False, True)),
    (publish("e", b"", retain=True), ("pub", b"e", b"", 0, 0, True, False)),  # clears "e"
    (puback_packet(300), ("pkt", 0x40, b"\x01\x2c")),
    (b"\x90\x03\x00\x05\x01", ("pkt", 0x90, b"\x00\x05\x01")),  # SUBACK, QoS 1 granted
    (b"\xd0\x00", ("pkt", 0xD0, b"")),  # PINGRESP
]


def test_packet_reader_stream_split_at_every_byte_hands_each_packet_on_once():
    sink = Sink()
    for packet, _ in STREAM:
        for k in range(len(packet)):
            sink.reader.feed(packet[k : k + 1])
    assert sink.got == [expected for _, expected in STREAM]
    assert sink.reader.buffered == 0


def test_packet_reader_many_packets_in_one_feed_in_order():
    sink = Sink()
    sink.reader.feed(b"".join(p for p, _ in STREAM) * 50)
    assert sink.got == [expected for _, expected in STREAM] * 50


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.sampled_from(range(len(STREAM))), min_size=1, max_size=30),
    st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=20),
)
def test_packet_reader_any_cut_of_the_stream_gives_the_same_packets(picks, cuts):
    data = b"".join(STREAM[k][0] for k in picks)
    sink = Sink()
    pos = 0
    for k in range(10_000):
        if pos >= len(data):
            break
        step = cuts[k % len(cuts)]
        sink.reader.feed(data[pos : pos + step])
        pos += step
    assert sink.got == [STREAM[k][1] for k in picks]


@pytest.mark.parametrize(
    ("size", "length_bytes"),
    [(3, 1), (127, 1), (128, 2), (16_383, 2), (16_384, 3), (2_097_151, 3), (2_097_152, 4)],
)
def test_packet_reader_remaining_length_of_1_to_4_bytes_is_read(size, length_bytes):
    payload = (bytes(range(256)) * (size // 256 + 1))[: size - 3]  # after the topic field "t"
    packet = publish("t", payload)
    assert packet[1 : 1 + length_bytes] == remaining_length(size)
    assert len(packet) == 1 + length_bytes + size
    sink = Sink()
    half = len(packet) // 2
    sink.reader.feed(packet[:half])
    assert sink.got == []
    sink.reader.feed(packet[half:] + b"\xd0\x00")
    assert sink.got == [("pub", b"t", payload, 0, 0, False, False), ("pkt", 0xD0, b"")]


def test_packet_reader_a_big_packet_in_small_reads_is_joined_once():
    payload = b"x" * 3_000_000
    packet = publish("big", payload, 1, 4)
    sink = Sink()
    for k in range(0, len(packet), 65_536):
        sink.reader.feed(packet[k : k + 65_536])
    assert sink.got == [("pub", b"big", payload, 1, 4, False, False)]


def test_remaining_length_over_the_protocol_bound_is_refused():
    assert remaining_length(MAX_REMAINING) == b"\xff\xff\xff\x7f"
    with pytest.raises(ValueError, match="at most"):
        remaining_length(MAX_REMAINING + 1)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\x30\xff\xff\xff\xff\x01", "remaining length longer than four bytes"),
        (b"\x30\x80\x80\x80\x80", "remaining length longer than four bytes"),
        (b"\x30" + remaining_length(1 << 20), "over the bound"),  # refused before the bytes
        (b"\x36\x05\x00\x01t\x00\x01", "PUBLISH at QoS 3"),
        (b"\x34\x05\x00\x01t\x00\x01", "PUBLISH at QoS 2"),
        (b"\x30\x03\x00\x09t", "PUBLISH shorter than its header"),  # topic overruns
        (b"\x32\x03\x00\x01t", "PUBLISH shorter than its header"),  # no packet id
        (b"\x30\x01\x00", "PUBLISH shorter than its header"),
        (b"\x00\x00", "reserved packet type 0"),
        (b"\xf0\x00", "reserved packet type 15"),
    ],
)
def test_packet_reader_malformed_stream_raises_bad_packet(data, reason):
    sink = Sink(max_packet=1 << 16)
    ok = publish("ok", b"before")
    with pytest.raises(BadPacket, match=reason) as info:
        sink.reader.feed(ok + data)
    assert isinstance(info.value, BusError)
    assert reason in info.value.reason
    assert sink.got == [("pub", b"ok", b"before", 0, 0, False, False)]  # what came before


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_packet_reader_arbitrary_bytes_raise_only_bad_packet(data):
    sink = Sink(max_packet=1 << 12)
    with contextlib.suppress(BadPacket):
        sink.reader.feed(data)


def test_packet_reader_handler_that_raises_loses_no_later_packet():
    got: list[bytes] = []

    def on_publish(topic: bytes, payload: bytes, *_: Any) -> None:
        got.append(payload)
        if payload == b"2":
            raise RuntimeError("handler bug")

    reader = PacketReader(on_publish, lambda *_: None)
    with pytest.raises(RuntimeError):
        reader.feed(b"".join(publish("t", str(i).encode()) for i in range(1, 5)))
    reader.feed(publish("t", b"5"))
    assert got == [b"1", b"2", b"3", b"4", b"5"]


def test_control_packets_are_what_mqtt_3_1_1_says():
    assert puback_packet(0x1234) == b"\x40\x02\x12\x34"
    assert subscribe_packet(10, [("a/#", 1), ("b", 0)]) == (
        b"\x82\x0c\x00\x0a" + b"\x00\x03a/#\x01" + b"\x00\x01b\x00"
    )
    assert unsubscribe_packet(11, ["a/#"]) == b"\xa2\x07\x00\x0b\x00\x03a/#"
    assert publish("a", b"xy", 1, 5, retain=True) == b"\x33\x07\x00\x01a\x00\x05xy"
    assert packet_id_of(0x90, b"\x00\x05\x01\x80") == 5
    with pytest.raises(BadPacket, match="PUBACK of 3 bytes"):
        packet_id_of(0x40, b"\x00\x05\x00")


@pytest.mark.parametrize("topic", ["", "a/+", "a/#"])
def test_topic_field_refuses_wildcards_and_empty_topics(topic):
    with pytest.raises(ValueError, match="cannot publish"):
        topic_field(topic)
