"""Signed REST calls to Bybit v5, on aiohttp. I/O only.

Errors are translated here (``retCode != 0`` is an error even with HTTP 200):

* ``10006`` / ``10018`` (too many visits), HTTP 403 (IP limit) and 429 ->
  :class:`~mlthon.basics.errors.RateLimited` (until ``X-Bapi-Limit-Reset-Timestamp``, 1 s, or
  10 min for a 403);
* ``10016`` (server error / restarting) and HTTP 5xx -> :class:`VenueUnavailable` (maintenance if
  the venue says so);
* ``10002`` (timestamp outside ``recv_window``) ->
  :class:`~mlthon.gateways.live.venue_clock.ClockRejected`, after ``on_clock_reject``;
* other codes -> :class:`VenueRejected` (code mapped by
  :func:`~mlthon.gateways.bybit_v5.parse.error_to_reject_code`);
* a missed deadline -> :class:`VenueTimeout`.

Before a request is sent, its cost is taken from the local budgets (``budgets``, ``costs``): a
short budget raises :class:`~mlthon.gateways.live.budget.BudgetExhausted` and nothing is sent.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Mapping
from typing import NoReturn
from urllib.parse import urlencode

import aiohttp
import msgspec

from mlthon.basics.errors import RateLimited
from mlthon.gateways.bybit_v5.parse import TIMESTAMP_REJECT, error_to_reject_code, sign
from mlthon.gateways.bybit_v5.wire import Envelope
from mlthon.gateways.live.budget import RateBudgets
from mlthon.gateways.live.config import Credentials
from mlthon.gateways.live.model import VenueRejected, VenueTimeout, VenueUnavailable
from mlthon.gateways.live.venue_clock import ClockRejected, VenueClock

log = logging.getLogger(__name__)

_envelope = msgspec.json.Decoder(Envelope)
_RATE_CODES = (10006, 10018)
_UNAVAILABLE = (10016,)


class BybitRest:
    """A signed-REST client.

    Args:
        base_url: e.g. ``https://api.bybit.com``.
        creds: the API key and secret.
        clock: the venue's clock (local time + offset) that stamps ``X-BAPI-TIMESTAMP``.
        recv_window_ms: ``X-BAPI-RECV-WINDOW``.
        timeout_s: per-request deadline.
        on_headers: called with each answer's path and headers (rate-limit usage).
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
        on_headers: Callable[[str, Mapping[str, str]], None] | None = None,
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
            self._session = aiohttp.ClientSession()

    async def close(self) -> None:
        """Close the HTTP session."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def get(
        self, path: str, params: Mapping[str, str] | None = None, *, signed: bool = True
    ) -> msgspec.Raw:
        """A GET; the ``result`` of a successful answer.

        Raises:
            VenueRejected, RateLimited, VenueTimeout, VenueUnavailable.
        """
        query = urlencode(list((params or {}).items()))
        return await self._request("GET", path, query, "", signed)

    async def post(self, path: str, body: Mapping[str, object]) -> msgspec.Raw:
        """A signed POST with a JSON body; the ``result`` of a successful answer.

        Raises:
            VenueRejected, RateLimited, VenueTimeout, VenueUnavailable.
        """
        return await self._request("POST", path, "", json.dumps(body, separators=(",", ":")), True)

    def _auth_headers(self, payload: str) -> dict[str, str]:
        ts = self._clock.now_ms()
        return {
            "X-BAPI-API-KEY": self._creds.api_key,
            "X-BAPI-TIMESTAMP": str(ts),
            "X-BAPI-RECV-WINDOW": str(self.recv_window_ms),
            "X-BAPI-SIGN": sign(
                self._creds.api_secret, ts, self._creds.api_key, self.recv_window_ms, payload
            ),
            "X-BAPI-SIGN-TYPE": "2",
        }

    async def _request(
        self, method: str, path: str, query: str, body: str, signed: bool
    ) -> msgspec.Raw:
        if self._session is None:
            raise VenueUnavailable("bybit: session not open")
        if self._budgets is not None and self._costs is not None:
            self._budgets.take(self._costs(method, path, query))
        url = f"{self.base_url}{path}" + (f"?{query}" if query else "")
        headers = self._auth_headers(query or body) if signed else {}
        if body:
            headers["Content-Type"] = "application/json"
        what = f"{method} {path}"
        try:
            async with asyncio.timeout(self.timeout_s):
                async with self._session.request(
                    method, url, data=body or None, headers=headers
                ) as resp:
                    raw = await resp.read()
                    rh: Mapping[str, str] = resp.headers
                    status = resp.status
        except TimeoutError as exc:
            raise VenueTimeout(what) from exc
        except aiohttp.ClientError as exc:
            raise VenueUnavailable(f"bybit {what}: {type(exc).__name__}: {exc}") from exc
        if self._on_headers is not None:
            self._on_headers(path, rh)
        if status in (403, 429):
            raise RateLimited(600.0 if status == 403 else 1.0)
        try:
            env = _envelope.decode(raw)
        except msgspec.DecodeError as exc:
            if status >= 500:
                raise VenueUnavailable(f"bybit {what}: HTTP {status}") from exc
            raise VenueUnavailable(f"bybit {what}: HTTP {status}, not JSON: {raw[:200]!r}") from exc
        if env.retCode == 0 and status < 400:
            return env.result
        self._raise(status, rh, env, what)

    def _raise(self, status: int, headers: Mapping[str, str], env: Envelope, what: str) -> NoReturn:
        code, msg = env.retCode, env.retMsg
        if code in _RATE_CODES:
            reset = headers.get("X-Bapi-Limit-Reset-Timestamp", "")
            wait = (int(reset) - self._clock.now_ms()) / 1000 if reset.isdigit() else 1.0
            log.warning("bybit %s: [%d] %s", what, code, msg)
            raise RateLimited(max(wait, 0.1))
        if status >= 500 or code in _UNAVAILABLE:
            raise VenueUnavailable(
                f"bybit {what}: HTTP {status} [{code}] {msg}",
                maintenance="maint" in msg.lower() or "restart" in msg.lower(),
            )
        if code == TIMESTAMP_REJECT:
            clock = ClockRejected(code, msg, self._clock.offset_ms, self.recv_window_ms, status)
            log.warning("bybit %s: %s", what, clock.reason)
            if self._on_clock_reject is not None:
                self._on_clock_reject(clock)
            raise clock
        raise VenueRejected(error_to_reject_code(code), code, msg, status)
