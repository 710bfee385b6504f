"""The Bybit v5 private stream: auth, subscribe, ping and frame decoding. I/O through
:mod:`mlthon.venues.transport`.

Bybit drops a private connection that sends nothing for 10 minutes and recommends a
``{"op":"ping"}`` every 20 s.
"""

from __future__ import annotations

import json

import msgspec

from mlthon.basics.mlt_enum import GtwRejectCode
from mlthon.gateways.bybit_v5.parse import (
    execution_to_event,
    order_record_to_venue_order,
    ws_auth_args,
)
from mlthon.gateways.bybit_v5.wire import Execution, OrderRecord, WsReply
from mlthon.gateways.live.model import (
    OrderEvent,
    StreamEvent,
    VenueRejected,
    VenueUnavailable,
)
from mlthon.venues.transport import WsConnection

_reply = msgspec.json.Decoder(WsReply)
_orders = msgspec.json.Decoder(list[OrderRecord])
_execs = msgspec.json.Decoder(list[Execution])

TOPICS = ("order", "execution")
PING = json.dumps({"op": "ping"})


async def authenticate(conn: WsConnection, api_key: str, secret: str, expires_ms: int) -> None:
    """Send ``auth`` and ``subscribe`` and wait for both replies.

    Raises:
        VenueRejected: the venue refused the key (``NotLoggedIn``) or a topic.
        VenueUnavailable: the connection closed first.
    """
    await conn.send(json.dumps({"op": "auth", "args": ws_auth_args(api_key, secret, expires_ms)}))
    await _expect(conn, "auth")
    await conn.send(json.dumps({"op": "subscribe", "args": list(TOPICS)}))
    await _expect(conn, "subscribe")


async def _expect(conn: WsConnection, op: str) -> None:
    while True:
        raw = await conn.receive()
        if raw is None:
            raise VenueUnavailable(f"bybit private stream closed during {op}")
        try:
            r = _reply.decode(raw)
        except msgspec.DecodeError:
            continue
        if r.op != op:
            continue
        if r.success:
            return
        code = GtwRejectCode.NotLoggedIn if op == "auth" else GtwRejectCode.ExchangeError
        raise VenueRejected(code, r.retCode, r.retMsg or r.ret_msg or f"{op} refused")


def decode_private_frame(raw: bytes) -> list[StreamEvent]:
    """See :func:`_decode_private_frame`; a bad number or invalid text in a frame is a
    ``msgspec.ValidationError`` too (the stream loops skip such frames)."""
    try:
        return _decode_private_frame(raw)
    except (ArithmeticError, ValueError) as exc:  # InvalidOperation, int(), UnicodeDecodeError
        raise msgspec.ValidationError(f"bad value in frame: {exc}") from exc


def _decode_private_frame(raw: bytes) -> list[StreamEvent]:
    """The events of one private frame (``order``, ``execution`` and ``execution.fast``; pongs
    and other topics are ignored).

    Raises:
        msgspec.DecodeError / ValidationError: a malformed frame.
    """
    r = _reply.decode(raw)
    if r.topic == "order":
        return [OrderEvent(order=order_record_to_venue_order(o)) for o in _orders.decode(r.data)]
    if r.topic in ("execution", "execution.fast"):
        out: list[StreamEvent] = []
        for e in _execs.decode(r.data):
            ev = execution_to_event(e)
            if ev is not None:
                out.append(ev)
        return out
    return []
