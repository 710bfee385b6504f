"""The Binance USD-M user-data stream: its URL and frame decoding. I/O through
:mod:`mlthon.venues.transport`.

Binance pings every few minutes (aiohttp answers); a connection lives at most 24 h; the listen
key must be kept alive (``PUT /fapi/v1/listenKey``) at least every 60 min.
"""

from __future__ import annotations

import msgspec

from mlthon.gateways.binance_usdm.parse import order_update_to_event
from mlthon.gateways.binance_usdm.wire import OrderUpdateData, UserEvent
from mlthon.gateways.live.model import StreamEvent, VenueUnavailable

_event = msgspec.json.Decoder(UserEvent)
_order_update = msgspec.json.Decoder(OrderUpdateData)


def user_stream_url(ws_base: str, listen_key: str) -> str:
    """``<base>/ws/<listenKey>``."""
    return f"{ws_base.rstrip('/')}/ws/{listen_key}"


def decode_user_frame(raw: bytes) -> list[StreamEvent]:
    """See :func:`_decode_user_frame`; a bad number or invalid text in a frame is a
    ``msgspec.ValidationError`` too (the stream loops skip such frames)."""
    try:
        return _decode_user_frame(raw)
    except (ArithmeticError, ValueError) as exc:  # InvalidOperation, int(), UnicodeDecodeError
        raise msgspec.ValidationError(f"bad value in frame: {exc}") from exc


def _decode_user_frame(raw: bytes) -> list[StreamEvent]:
    """The events of one user-data frame (order updates; others are ignored).

    Raises:
        VenueUnavailable: ``listenKeyExpired`` (the stream must be reopened with a new key).
        msgspec.DecodeError / ValidationError: a malformed frame.
    """
    ev = _event.decode(raw)
    if not ev.e and ev.stream is not None and ev.data:
        ev = _event.decode(ev.data)  # a combined-stream envelope
    if ev.e == "ORDER_TRADE_UPDATE" and ev.o:
        return [order_update_to_event(_order_update.decode(ev.o))]
    if ev.e == "listenKeyExpired":
        raise VenueUnavailable("binance: listen key expired")
    return []
