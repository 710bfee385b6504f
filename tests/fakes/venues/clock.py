"""The clock of a fake venue, and the venues' rules for signed timestamps and client order ids.

A real venue checks each signed request's timestamp against its own clock: Binance refuses one
that is ``recvWindow`` behind or 1 s ahead of its server time (``-1021``), Bybit likewise
(``10002``). :class:`FakeVenueClock` is the host's wall clock plus :attr:`FakeVenueClock.offset_ms`,
so a test can serve a venue whose clock is far from the host's, or move it while a gateway runs.
"""

from __future__ import annotations

import re
import time

AHEAD_MS = 1000
"""How far ahead of the server a timestamp may be (both venues)."""

BINANCE_CID = re.compile(r"^[\.A-Z\:/a-z0-9_-]{1,36}$")
"""Binance's documented rule for ``newClientOrderId``."""
BYBIT_LINK_ID = re.compile(r"[A-Za-z0-9_-]{1,36}")
"""Bybit's documented ``orderLinkId``: at most 36 letters, digits, dashes and underscores."""


class FakeVenueClock:
    """The venue's time: the host's plus ``offset_ms``."""

    def __init__(self, offset_ms: int = 0) -> None:
        self.offset_ms = offset_ms
        self.refused = 0  # timestamps refused

    def now_ms(self) -> int:
        """The venue's time (ms since the epoch)."""
        return time.time_ns() // 1_000_000 + self.offset_ms

    def now_ns(self) -> int:
        """The venue's time (ns since the epoch)."""
        return time.time_ns() + self.offset_ms * 1_000_000

    def problem(self, timestamp: str, recv_window: str) -> str | None:
        """Why a signed request stamped ``timestamp`` (ms) is refused: ``"ahead"``, ``"behind"``
        or None if it is within the window."""
        try:
            ts, window = int(timestamp), int(recv_window or "5000")
        except ValueError:
            self.refused += 1
            return "behind"
        server = self.now_ms()
        if ts >= server + AHEAD_MS:
            self.refused += 1
            return "ahead"
        if server - ts > window:
            self.refused += 1
            return "behind"
        return None
