"""Signed REST calls to Binance USD-M (``/fapi``), on aiohttp. I/O only.

Every aiohttp error is translated here to the error tree of :mod:`mlthon.gateways.live.model`:

* HTTP 429 (``-1003``) and 418 (IP banned) -> :class:`~mlthon.basics.errors.RateLimited` with the
  ``Retry-After`` header's delay;
* ``-1021`` (timestamp outside ``recvWindow``) ->
  :class:`~mlthon.gateways.live.venue_clock.ClockRejected`, after ``on_clock_reject``;
* other 4xx with a ``{"code","msg"}`` body -> :class:`VenueRejected` (code mapped by
  :func:`~mlthon.gateways.binance_usdm.parse.error_to_reject_code`);
* 5xx, ``-1001`` / ``-1016`` -> :class:`VenueUnavailable`;
* a missed deadline -> :class:`VenueTimeout`.

Before a request is sent, its cost is taken from the local budgets (``budgets``, ``costs``): a
short budget raises :class:`~mlthon.gateways.live.budget.BudgetExhausted` and nothing is sent.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import NoReturn

import aiohttp
import msgspec

from mlthon.basics.errors import RateLimited
from mlthon.gateways.binance_usdm.parse import (
    TIMESTAMP_REJECT,
    error_to_reject_code,
    sign_query,
)
from mlthon.gateways.binance_usdm.wire import ErrorBody
from mlthon.gateways.live.budget import RateBudgets
from mlthon.gateways.live.config import Credentials
from mlthon.gateways.live.model import VenueRejected, VenueTimeout, VenueUnavailable
from mlthon.gateways.live.venue_clock import ClockRejected, VenueClock

log = logging.getLogger(__name__)

_error = msgspec.json.Decoder(ErrorBody)
_UNAVAILABLE = (-1001, -1016)


class BinanceRest:
    """A signed-REST client.

    Args:
        base_url: e.g. ``https://fapi.binance.com``.
        creds: the API key and secret.
        clock: the venue's clock (local time + offset) that stamps ``timestamp``.
        recv_window_ms: ``recvWindow`` of signed requests.
        timeout_s: per-request deadline.
        on_headers: called with the headers of every answer (rate-limit usage).
        budgets: the local rate budgets (None: none enforced).
        costs: what a request (method, path, query) spends of each budget.
        on_clock_reject: called with a :class:`ClockRejected` before it is raised.
    """

    def __init__(
        self,
        base_url: str,
        creds: Credentials,
        clock: VenueClock,
        *,
        recv_window_ms: int = 5000,
        timeout_s: float = 10.0,
        on_headers: Callable[[Mapping[str, str]], None] | None = None,
        budgets: RateBudgets | None = None,
        costs: Callable[[str, str, str], Mapping[str, int]] | None = None,
        on_clock_reject: Callable[[ClockRejected], None] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._creds = creds
        self._clock = clock
        self.recv_window_ms = recv_window_ms
        self.timeout_s = timeout_s
        self._on_headers = on_headers
        self._budgets = budgets
        self._costs = costs
        self._on_clock_reject = on_clock_reject
        self._session: aiohttp.ClientSession | None = None

    async def open(self) -> None:
        """Create the HTTP session."""
        if self._session is None:
            self._session = aiohttp.ClientSession(
                headers={"X-MBX-APIKEY": self._creds.api_key},
            )

    async def close(self) -> None:
        """Close the HTTP session."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def signed(
        self, method: str, path: str, params: Mapping[str, str] | None = None
    ) -> bytes:
        """A SIGNED (TRADE / USER_DATA) request; the answer's body.

        Raises:
            VenueRejected, RateLimited, VenueTimeout, VenueUnavailable.
        """
        p = dict(params or {})
        p["recvWindow"] = str(self.recv_window_ms)
        p["timestamp"] = str(self._clock.now_ms())
        return await self._request(method, path, sign_query(self._creds.api_secret, p))

    async def keyed(self, method: str, path: str, params: Mapping[str, str] | None = None) -> bytes:
        """A request with the API key but no signature (listen key, market data)."""
        from urllib.parse import urlencode

        return await self._request(method, path, urlencode(list((params or {}).items())))

    async def _request(self, method: str, path: str, query: str) -> bytes:
        if self._session is None:
            raise VenueUnavailable("binance: session not open")
        if self._budgets is not None and self._costs is not None:
            self._budgets.take(self._costs(method, path, query))
        url = f"{self.base_url}{path}" + (f"?{query}" if query else "")
        what = f"{method} {path}"
        try:
            async with asyncio.timeout(self.timeout_s):
                async with self._session.request(method, url) as resp:
                    body = await resp.read()
                    headers: Mapping[str, str] = resp.headers
                    status = resp.status
        except TimeoutError as exc:
            raise VenueTimeout(what) from exc
        except aiohttp.ClientError as exc:
            raise VenueUnavailable(f"binance {what}: {type(exc).__name__}: {exc}") from exc
        if self._on_headers is not None:
            self._on_headers(headers)
        if status < 400:
            return body
        self._raise(status, headers, body, what)

    def _raise(self, status: int, headers: Mapping[str, str], body: bytes, what: str) -> NoReturn:
        try:
            err = _error.decode(body)
        except msgspec.DecodeError:
            err = ErrorBody(0, body[:200].decode(errors="replace"))
        if status in (418, 429):
            retry = headers.get("Retry-After", "")
            delay = float(retry) if retry.replace(".", "", 1).isdigit() else 60.0
            log.warning("binance %s: HTTP %d [%d] %s", what, status, err.code, err.msg)
            raise RateLimited(delay)
        if status >= 500 or err.code in _UNAVAILABLE:
            raise VenueUnavailable(
                f"binance {what}: HTTP {status} [{err.code}] {err.msg}",
                maintenance=status == 503 and "maint" in err.msg.lower(),
            )
        if err.code == TIMESTAMP_REJECT:
            offset = self._clock.offset_ms
            clock = ClockRejected(err.code, err.msg, offset, self.recv_window_ms, status)
            log.warning("binance %s: %s", what, clock.reason)
            if self._on_clock_reject is not None:
                self._on_clock_reject(clock)
            raise clock
        raise VenueRejected(error_to_reject_code(err.code), err.code, err.msg, status)
