"""Bitfinex WebSocket v2 frames.

Data frames are positional JSON arrays, ``[chanId, body]``, so they are decoded generically, with
JSON numbers read as exact Decimals (``float_hook``) instead of floats. Event frames are objects.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import msgspec

frame_decoder: msgspec.json.Decoder[Any] = msgspec.json.Decoder(float_hook=Decimal)


class Subscribed(msgspec.Struct):
    """``{"event": "subscribed", "channel": "book", "chanId", "symbol", "prec", ...}``."""

    event: str
    channel: str = ""
    chanId: int = 0  # noqa: N815 (venue field name)
    symbol: str = ""
    prec: str = ""
