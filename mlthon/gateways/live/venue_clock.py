"""The venue's clock as seen from here: local time plus an offset measured against the venue.

Signed requests carry a timestamp the venue checks against its own clock (Binance: ``timestamp``
within ``recvWindow`` behind and 1 s ahead of its server time, else ``-1021``; Bybit:
``X-BAPI-TIMESTAMP`` likewise, else ``10002``). A host whose clock is off would have every order
refused, so each venue connection keeps a :class:`VenueClock`: the offset is measured against the
venue's time endpoint (Binance ``GET /fapi/v1/time`` -> ``serverTime`` ms; Bybit ``GET
/v5/market/time`` -> ``timeNano``) when the gateway starts, before every private-stream
(re)connection and after a timestamp reject, and signed requests use local time + offset.

A timestamp reject is raised as :class:`ClockRejected` (``GtwNotReady``, the reason naming the
offset in use): the gateway leaves ``ReadyToTrade`` until the offset is measured again.
"""

from __future__ import annotations

from collections.abc import Callable

from mlthon.basics.mlt_enum import GtwRejectCode
from mlthon.venues.errors import VenueRejected

MS = 1_000_000


class VenueClock:
    """Local time + the offset of one venue's clock.

    Args:
        now_ns: the local clock (the scheduler's, wall time).

    Attributes:
        offset_ms: venue time minus local time, as last measured (0 until then).
        rtt_ms: the round trip of that measurement (its uncertainty is half of it).
        synced_ns: local time of the last measurement (0: never).
        syncs: how many measurements were taken.
    """

    def __init__(self, now_ns: Callable[[], int]) -> None:
        self._now_ns = now_ns
        self.offset_ms = 0
        self.rtt_ms = 0
        self.synced_ns = 0
        self.syncs = 0

    def local_ns(self) -> int:
        """The local clock."""
        return self._now_ns()

    def now_ms(self) -> int:
        """The venue's time now, in ms: what signed requests carry."""
        return self._now_ns() // MS + self.offset_ms

    def update(self, server_ms: int, sent_ns: int, received_ns: int) -> int:
        """Take a measurement: the venue said ``server_ms`` to a request sent at ``sent_ns`` and
        answered at ``received_ns`` (local); the venue's clock is read at the midpoint. Returns
        the new offset (ms)."""
        midpoint_ms = (sent_ns + received_ns) // 2 // MS
        self.offset_ms = server_ms - midpoint_ms
        self.rtt_ms = max(received_ns - sent_ns, 0) // MS
        self.synced_ns = received_ns
        self.syncs += 1
        return self.offset_ms


class ClockRejected(VenueRejected):
    """The venue refused a signed request's timestamp (Binance ``-1021``, Bybit ``10002``).

    Attributes:
        offset_ms: the offset the request was signed with.
    """

    def __init__(
        self, venue_code: int, message: str, offset_ms: int, recv_window_ms: int, status: int = 0
    ) -> None:
        text = (
            f"{message} (the venue refused the request's timestamp: the host clock + the "
            f"measured offset {offset_ms:+d} ms is outside its {recv_window_ms} ms receive "
            "window; the gateway measures the offset again)"
        )
        super().__init__(GtwRejectCode.ClockOffset, venue_code, text, status)
        self.offset_ms = offset_ms
