"""MQTT 3.1.1 packets as bytes, both ways, with no I/O (the link does the reading and writing).

* :class:`PacketReader` cuts the bytes a connection receives into packets, however they come
  (a packet split across reads, many packets in one read), and hands each incoming PUBLISH to
  ``on_publish(topic, payload, qos, packet_id, retain, dup)`` and every other packet to
  ``on_packet(first_byte, body)``. A stream that breaks the protocol raises :class:`BadPacket`.
* The ``*_packet`` functions and :func:`publish_head` build what a client sends.

Only what a client of a 3.1.1 broker meets: no MQTT 5 properties, no topic aliases; QoS 2 is
never asked for (the bus subscribes and publishes at QoS 0 and 1), so a QoS 2 PUBLISH is a
protocol error here.
"""

from __future__ import annotations

from collections.abc import Callable

from mlthon.basics.errors import BusError

# Packet types (the high nibble of the first byte).
CONNACK = 0x20
PUBLISH = 0x30
PUBACK = 0x40
PUBREC = 0x50
PUBREL = 0x60
PUBCOMP = 0x70
SUBACK = 0x90
UNSUBACK = 0xB0
PINGRESP = 0xD0

#: The most a remaining length can say (four bytes of seven bits).
MAX_REMAINING = 268_435_455
#: Default bound on an incoming packet's size: bigger ones drop the link (a broken or hostile
#: peer must not make the process buffer up to 256 MiB per packet).
MAX_PACKET = 64 * 1024 * 1024

PINGREQ_PACKET = b"\xc0\x00"
DISCONNECT_PACKET = b"\xe0\x00"

PublishHandler = Callable[[bytes, bytes, int, int, bool, bool], None]
PacketHandler = Callable[[int, bytes], None]

_NAMES = {
    0x10: "CONNECT",
    CONNACK: "CONNACK",
    PUBLISH: "PUBLISH",
    PUBACK: "PUBACK",
    PUBREC: "PUBREC",
    PUBREL: "PUBREL",
    PUBCOMP: "PUBCOMP",
    0x80: "SUBSCRIBE",
    SUBACK: "SUBACK",
    0xA0: "UNSUBSCRIBE",
    UNSUBACK: "UNSUBACK",
    0xC0: "PINGREQ",
    PINGRESP: "PINGRESP",
    0xE0: "DISCONNECT",
}


def packet_name(first_byte: int) -> str:
    """The packet type's name (``PUBLISH``...), or ``type 0``/``type 15`` for the reserved
    ones."""
    kind = first_byte & 0xF0
    return _NAMES.get(kind, f"type {kind >> 4}")


class BadPacket(BusError):
    """The broker sent bytes that are not MQTT 3.1.1: the link must be dropped.

    Attributes:
        reason: what is wrong.
        head: the first bytes of the offending packet.
    """

    def __init__(self, reason: str, head: bytes = b"") -> None:
        shown = f" (starts {head[:16].hex(' ')})" if head else ""
        super().__init__(f"malformed MQTT packet from the broker: {reason}{shown}")
        self.reason = reason
        self.head = head


def remaining_length(n: int) -> bytes:
    """``n`` as MQTT's remaining length (one to four bytes of seven bits, lowest first)."""
    if n < 128:
        return bytes((n,))
    if n < 16384:
        return bytes((n & 127 | 128, n >> 7))
    if n > MAX_REMAINING:
        raise ValueError(f"an MQTT packet holds at most {MAX_REMAINING} bytes, got {n}")
    out = bytearray()
    while True:
        n, digit = divmod(n, 128)
        out.append(digit | (128 if n else 0))
        if not n:
            return bytes(out)


def _string(text: str | bytes) -> bytes:
    raw = text.encode() if isinstance(text, str) else text
    if len(raw) > 65535:
        raise ValueError(f"an MQTT string holds at most 65535 bytes, got {len(raw)}")
    return len(raw).to_bytes(2, "big") + raw


def topic_field(topic: str) -> bytes:
    """A PUBLISH's topic field (length and UTF-8 bytes), checked: a topic one publishes on
    has no wildcard and is not empty.

    Raises:
        ValueError: a wildcard or an empty topic.
    """
    if not topic or "+" in topic or "#" in topic:
        raise ValueError(f"cannot publish on {topic!r}: empty or a wildcard")
    return _string(topic)


def publish_head(topic_field: bytes, payload_size: int, qos: int, retain: bool) -> bytes:
    """The bytes of a PUBLISH before its packet id (QoS 1) and its payload."""
    size = len(topic_field) + payload_size + (2 if qos else 0)
    return bytes((0x30 | qos << 1 | retain,)) + remaining_length(size) + topic_field


def puback_packet(packet_id: int) -> bytes:
    """The acknowledgement of incoming QoS 1 PUBLISH ``packet_id``."""
    return bytes((0x40, 2, packet_id >> 8, packet_id & 255))


def subscribe_packet(packet_id: int, patterns: list[tuple[str, int]]) -> bytes:
    """SUBSCRIBE to ``patterns`` ((pattern, qos) pairs)."""
    body = packet_id.to_bytes(2, "big") + b"".join(
        _string(pattern) + bytes((qos,)) for pattern, qos in patterns
    )
    return b"\x82" + remaining_length(len(body)) + body


def unsubscribe_packet(packet_id: int, patterns: list[str]) -> bytes:
    """UNSUBSCRIBE from ``patterns``."""
    body = packet_id.to_bytes(2, "big") + b"".join(_string(p) for p in patterns)
    return b"\xa2" + remaining_length(len(body)) + body


def packet_id_of(first_byte: int, body: bytes) -> int:
    """The packet id of a PUBACK, SUBACK or UNSUBACK body.

    Raises:
        BadPacket: the body is too short to hold one (or, for PUBACK and UNSUBACK, longer
            than one).
    """
    kind = first_byte & 0xF0
    if len(body) < 2 or (kind != SUBACK and len(body) != 2):
        raise BadPacket(f"{packet_name(first_byte)} of {len(body)} bytes", bytes((first_byte,)))
    return body[0] << 8 | body[1]


class PacketReader:
    """Cuts a stream of incoming bytes into MQTT packets (see the module docstring).

    Args:
        on_publish: called ``(topic, payload, qos, packet_id, retain, dup)`` for each PUBLISH
            (``packet_id`` 0 at QoS 0); the topic is the raw bytes the broker sent.
        on_packet: called ``(first_byte, body)`` for each other packet.
        max_packet: bigger packets raise :class:`BadPacket`.
    """

    __slots__ = ("_have", "_need", "_parts", "max_packet", "on_packet", "on_publish")

    def __init__(
        self, on_publish: PublishHandler, on_packet: PacketHandler, max_packet: int = MAX_PACKET
    ) -> None:
        self.on_publish = on_publish
        self.on_packet = on_packet
        self.max_packet = max_packet
        self._parts: list[bytes] = []  # the start of a packet that has not all come yet
        self._have = 0  # bytes in _parts
        self._need = 0  # bytes _parts must hold before cutting is worth trying again

    @property
    def buffered(self) -> int:
        """Bytes of an incomplete packet held until the rest comes."""
        return self._have

    def feed(self, data: bytes) -> None:
        """Take the next bytes of the stream; hand on every packet they complete, in order.

        A handler that raises stops the feed there; the packets after it are kept and handed on
        by the next :meth:`feed`.

        Raises:
            BadPacket: a reserved packet type, a remaining length of more than four bytes or
                over ``max_packet``, a PUBLISH whose topic or packet id overruns it, or at
                QoS 3 (or QoS 2: never asked for).
        """
        if self._parts:
            self._parts.append(data)
            self._have += len(data)
            if self._have < self._need:
                return
            data = b"".join(self._parts)
            self._parts = []
            self._have = 0
        end = len(data)
        pos = 0
        on_publish = self.on_publish
        try:
            while pos < end:
                first = data[pos]
                # The remaining length: one to four bytes, seven bits each, lowest first.
                i = pos + 1
                if i >= end:
                    break
                digit = data[i]
                i += 1
                size = digit & 127
                if digit & 128:
                    shift = 7
                    while True:
                        if i >= end:
                            break
                        digit = data[i]
                        i += 1
                        size |= (digit & 127) << shift
                        if not digit & 128:
                            break
                        shift += 7
                        if shift > 21:
                            raise BadPacket(
                                "remaining length longer than four bytes", data[pos : pos + 5]
                            )
                    if digit & 128:  # the length goes on in bytes that have not come
                        break
                stop = i + size
                if size > self.max_packet:
                    raise BadPacket(
                        f"{packet_name(first)} of {size:,} bytes, over the bound of "
                        f"{self.max_packet:,}",
                        data[pos:i],
                    )
                if stop > end:
                    break
                if first & 0xF0 == PUBLISH:
                    qos = first >> 1 & 3
                    topic_end = i + 2 + (data[i] << 8 | data[i + 1]) if size >= 2 else stop + 1
                    if qos:
                        if qos != 1:
                            raise BadPacket(f"PUBLISH at QoS {qos}", data[pos:stop])
                        start = topic_end + 2
                        if start > stop:
                            raise BadPacket("PUBLISH shorter than its header", data[pos:stop])
                        packet_id = data[topic_end] << 8 | data[topic_end + 1]
                    else:
                        start = topic_end
                        if start > stop:
                            raise BadPacket("PUBLISH shorter than its header", data[pos:stop])
                        packet_id = 0
                    pos = stop
                    on_publish(
                        data[i + 2 : topic_end],
                        data[start:stop],
                        qos,
                        packet_id,
                        bool(first & 1),
                        bool(first & 8),
                    )
                else:
                    if not 0x10 <= first < 0xF0:
                        raise BadPacket(f"reserved packet {packet_name(first)}", data[pos:stop])
                    pos = stop
                    self.on_packet(first, data[i:stop])
        finally:
            if pos < end:
                rest = data[pos:]
                self._parts = [rest]
                self._have = len(rest)
                self._need = self._wanted(rest)

    @staticmethod
    def _wanted(rest: bytes) -> int:
        """How many bytes the packet at the start of ``rest`` takes, once its length is known;
        one more than ``rest`` holds until then (or ``rest``'s size when complete packets wait:
        a handler stopped the feed)."""
        size = 0
        shift = 0
        for k in range(1, min(len(rest), 5)):
            digit = rest[k]
            size |= (digit & 127) << shift
            if not digit & 128:
                return min(len(rest), 1 + k + size)
            shift += 7
        return len(rest) + 1
