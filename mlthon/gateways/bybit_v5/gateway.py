"""Bybit v5 linear perpetuals: the :class:`~mlthon.gateways.live.model.VenueApi` of the venue
and the factory of its :class:`~mlthon.gateways.live.gateway.LiveGateway`.

Endpoints used: ``GET /v5/market/time``, ``GET /v5/market/instruments-info``, ``POST
/v5/order/create|amend|cancel``, ``GET /v5/order/realtime`` and ``/history``, ``GET
/v5/execution/list``, ``GET /v5/account/wallet-balance``, ``GET /v5/position/list``, ``GET
/v5/market/tickers``, ``GET /v5/user/query-api``; the private stream ``/v5/private`` (topics
``order`` and ``execution``). Local budgets: :data:`~mlthon.gateways.bybit_v5.parse.BUDGETS`
(600 requests per 5 s per IP; per account and endpoint per second: create, amend and cancel 10,
queries 50), an endpoint's limit following its ``X-Bapi-Limit`` header unless
``[gateway.rate_limits]`` sets it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from decimal import Decimal
from typing import TypeVar

import msgspec

from mlthon.basics.instrument import Instrument
from mlthon.basics.mlt_enum import Environment, Exchange, GtwRejectCode, OrderStatus
from mlthon.gateways.bybit_v5 import parse
from mlthon.gateways.bybit_v5.rest import BybitRest
from mlthon.gateways.bybit_v5.wire import (
    ApiKeyInfo,
    Execution,
    InstrumentInfo,
    OrderAck,
    OrderRecord,
    PagedList,
    Position,
    ServerTime,
    Ticker,
    WalletAccount,
)
from mlthon.gateways.bybit_v5.ws import PING, authenticate, decode_private_frame
from mlthon.gateways.live.budget import RateBudgets
from mlthon.gateways.live.config import Credentials, LiveGatewayConfig, mask
from mlthon.gateways.live.gateway import LiveGateway
from mlthon.gateways.live.model import (
    Fill,
    LiveOrder,
    StreamEvent,
    VenueApi,
    VenueOrder,
    VenueRejected,
    VenueUnavailable,
)
from mlthon.gateways.live.venue_clock import VenueClock
from mlthon.infra.bus.bus import BusBase
from mlthon.infra.bus.topics import Topics
from mlthon.infra.clock import Scheduler
from mlthon.venues.transport import ws_connect

log = logging.getLogger(__name__)

EXCHANGE = Exchange.Bybit
CATEGORY = parse.CATEGORY

# (REST base, private websocket URL) per environment.
URLS: dict[Environment, tuple[str, str]] = {
    Environment.Mainnet: ("https://api.bybit.com", "wss://stream.bybit.com/v5/private"),
    Environment.Testnet: (
        "https://api-testnet.bybit.com",
        "wss://stream-testnet.bybit.com/v5/private",
    ),
    Environment.Demo: ("https://api-demo.bybit.com", "wss://stream-demo.bybit.com/v5/private"),
}

T = TypeVar("T")

_paged = msgspec.json.Decoder(PagedList)
_ack = msgspec.json.Decoder(OrderAck)
_instruments = msgspec.json.Decoder(list[InstrumentInfo])
_orders = msgspec.json.Decoder(list[OrderRecord])
_execs = msgspec.json.Decoder(list[Execution])
_wallets = msgspec.json.Decoder(list[WalletAccount])
_positions = msgspec.json.Decoder(list[Position])
_tickers = msgspec.json.Decoder(list[Ticker])
_apikey = msgspec.json.Decoder(ApiKeyInfo)
_time = msgspec.json.Decoder(ServerTime)

_MAX_PAGES = 20


def _decode(dec: msgspec.json.Decoder[T], raw: msgspec.Raw | bytes, what: str) -> T:
    try:
        return dec.decode(raw)
    except msgspec.DecodeError as exc:
        raise VenueUnavailable(f"bybit {what}: unexpected answer: {exc}") from exc


class BybitV5Api(VenueApi):
    """Bybit v5 (category ``linear``) over signed REST and the private stream.

    Args:
        config: the live configuration (environment, URL overrides, timeouts, budgets).
        creds: the API key and secret.
        now_ns: the clock (the scheduler's).

    Raises:
        ConfigError: ``[gateway.rate_limits]`` names a budget Bybit does not have.
    """

    ping_interval_s = 20.0

    def __init__(
        self, config: LiveGatewayConfig, creds: Credentials, now_ns: Callable[[], int]
    ) -> None:
        rest_url, ws_url = URLS[config.environment]
        self.rest_url = config.rest_url or rest_url
        self.ws_url = config.ws_url or ws_url
        self.config = config
        self._creds = creds
        self._now_ns = now_ns
        self.clock = VenueClock(now_ns)
        self.budgets = RateBudgets.from_config(
            parse.BUDGETS, config.rate_limits, now_ns, config.source
        )
        self.rest = BybitRest(
            self.rest_url,
            creds,
            self.clock,
            recv_window_ms=config.recv_window_ms,
            timeout_s=config.request_timeout_s,
            on_headers=self._on_headers,
            budgets=self.budgets,
            costs=parse.request_costs,
            on_clock_reject=self.clock_rejected,
        )

    def _on_headers(self, path: str, headers: Mapping[str, str]) -> None:
        usage = parse.headers_to_rate_usage(headers, path)
        if usage is not None:
            self.last_rate = usage
            name = parse.endpoint_budget(path)
            if name is not None:
                self.budgets.observe(name, usage.used, usage.limit)

    async def server_time_ms(self) -> int:
        """``GET /v5/market/time``: ``timeNano`` in ms."""
        raw = await self.rest.get("/v5/market/time", signed=False)
        try:
            return parse.server_time_ms(_decode(_time, raw, "server time"))
        except ValueError as exc:
            raise VenueUnavailable(f"bybit server time: {exc}") from exc

    async def open(self) -> None:
        """Open the HTTP session."""
        await self.rest.open()

    async def close(self) -> None:
        """Close the HTTP session."""
        await self.rest.close()

    async def _pages(
        self, path: str, params: dict[str, str], *, signed: bool = True
    ) -> list[bytes]:
        """Every page's ``list`` of a paginated endpoint."""
        out: list[bytes] = []
        cursor = ""
        for _ in range(_MAX_PAGES):
            p = dict(params)
            if cursor:
                p["cursor"] = cursor
            page = _decode(_paged, await self.rest.get(path, p, signed=signed), path)
            out.append(bytes(page.list))
            cursor = page.nextPageCursor or ""
            if not cursor:
                break
        return out

    async def load_instruments(self, wanted: list[Instrument]) -> list[Instrument]:
        """Refresh the grids from ``/v5/market/instruments-info?category=linear``."""
        infos: list[InstrumentInfo] = []
        for raw in await self._pages(
            "/v5/market/instruments-info", {"category": CATEGORY, "limit": "1000"}, signed=False
        ):
            got: list[InstrumentInfo] = _decode(_instruments, raw, "instruments")
            infos.extend(got)
        loaded = parse.instruments_from_info(infos, wanted)
        missing = {i.name for i in wanted} - {i.name for i in loaded}
        if missing:
            log.warning("bybit: instruments not listed by the venue: %s", sorted(missing))
        return loaded

    async def place(self, order: LiveOrder) -> VenueOrder:
        """``POST /v5/order/create``: only an acknowledgement; the stream tells the outcome."""
        body = parse.new_order_body(
            symbol=order.instrument.name,
            venue_cid=order.venue_cid,
            side=order.side,
            ord_type=order.ord_type,
            tif=order.tif,
            exec_instr=order.exec_instr,
            price=order.price,
            qty=order.qty,
            reduce_only=order.reduce_only,
        )
        ack = _decode(_ack, await self.rest.post("/v5/order/create", body), "create")
        return self._pending(order, ack)

    def _pending(self, order: LiveOrder, ack: OrderAck) -> VenueOrder:
        return VenueOrder(
            venue_cid=ack.orderLinkId or order.venue_cid,
            exch_id=ack.orderId,
            symbol=order.instrument.name,
            status=OrderStatus.PendingNew,
            price=order.price,
            qty=order.qty,
            filled=order.filled,
        )

    async def amend(self, order: LiveOrder, price: Decimal, qty: Decimal) -> VenueOrder:
        """``POST /v5/order/amend``."""
        body = {
            "category": CATEGORY,
            "symbol": order.instrument.name,
            "orderLinkId": order.venue_cid,
            "price": parse.fmt(price),
            "qty": parse.fmt(qty),
        }
        ack = _decode(_ack, await self.rest.post("/v5/order/amend", body), "amend")
        return self._pending(order, ack)

    async def cancel(self, order: LiveOrder) -> VenueOrder | None:
        """``POST /v5/order/cancel``."""
        body = {
            "category": CATEGORY,
            "symbol": order.instrument.name,
            "orderLinkId": order.venue_cid,
        }
        await self.rest.post("/v5/order/cancel", body)
        return None

    async def query_order(self, order: LiveOrder) -> VenueOrder | None:
        """``GET /v5/order/realtime`` then ``/history`` by ``orderLinkId``; None if unknown."""
        params = {
            "category": CATEGORY,
            "symbol": order.instrument.name,
            "orderLinkId": order.venue_cid,
        }
        for path in ("/v5/order/realtime", "/v5/order/history"):
            try:
                page = _decode(_paged, await self.rest.get(path, params), path)
            except VenueRejected as exc:
                if exc.code is GtwRejectCode.UnknownOrder:
                    continue
                raise
            records = _decode(_orders, page.list, path)
            if records:
                return parse.order_record_to_venue_order(records[0])
        return None

    async def open_orders(self, instruments: list[Instrument]) -> list[VenueOrder]:
        """``GET /v5/order/realtime?settleCoin=`` (every page), filtered to ``instruments``."""
        names = {i.name.upper() for i in instruments}
        coins = sorted({i.settlement for i in instruments}) or ["USDT"]
        out: list[VenueOrder] = []
        for coin in coins:
            for raw in await self._pages(
                "/v5/order/realtime", {"category": CATEGORY, "settleCoin": coin, "limit": "50"}
            ):
                out.extend(
                    parse.order_record_to_venue_order(o)
                    for o in _decode(_orders, raw, "open orders")
                    if o.symbol.upper() in names
                )
        return out

    async def order_fills(self, order: LiveOrder) -> list[Fill]:
        """``GET /v5/execution/list?orderLinkId=`` (trades only, oldest first)."""
        params = {
            "category": CATEGORY,
            "symbol": order.instrument.name,
            "orderLinkId": order.venue_cid,
            "limit": "100",
        }
        fills: list[Fill] = []
        for raw in await self._pages("/v5/execution/list", params):
            fills.extend(
                parse.execution_to_fill(e)
                for e in _decode(_execs, raw, "executions")
                if e.execType == "Trade"
            )
        return sorted(fills, key=lambda f: f.ts)

    async def account_id(self) -> str:
        """``GET /v5/user/query-api``: the ``userID`` of the key."""
        info = _decode(_apikey, await self.rest.get("/v5/user/query-api"), "query-api")
        return str(info.userID)

    async def wallet(self, coin: str) -> tuple[Decimal, Decimal]:
        """``GET /v5/account/wallet-balance?accountType=UNIFIED``: (walletBalance, available)."""
        page = _decode(
            _paged,
            await self.rest.get(
                "/v5/account/wallet-balance", {"accountType": "UNIFIED", "coin": coin}
            ),
            "wallet",
        )
        for acct in _decode(_wallets, page.list, "wallet"):
            for c in acct.coin:
                if c.coin.upper() == coin.upper():
                    total = Decimal(c.walletBalance or "0")
                    avail = (
                        Decimal(c.availableToWithdraw)
                        if c.availableToWithdraw
                        else total - Decimal(c.locked or "0")
                    )
                    return total, avail
        return Decimal(0), Decimal(0)

    async def position(self, instrument: Instrument) -> Decimal:
        """``GET /v5/position/list``: size, negative for a short (hedge mode: net)."""
        page = _decode(
            _paged,
            await self.rest.get(
                "/v5/position/list", {"category": CATEGORY, "symbol": instrument.name}
            ),
            "positions",
        )
        net = Decimal(0)
        for p in _decode(_positions, page.list, "positions"):
            size = Decimal(p.size or "0")
            net += -size if p.side == "Sell" else size
        return net

    async def funding(self, instrument: Instrument) -> tuple[Decimal, int]:
        """``GET /v5/market/tickers``: (fundingRate, nextFundingTime ns)."""
        page = _decode(
            _paged,
            await self.rest.get(
                "/v5/market/tickers",
                {"category": CATEGORY, "symbol": instrument.name},
                signed=False,
            ),
            "tickers",
        )
        for t in _decode(_tickers, page.list, "tickers"):
            if t.symbol.upper() == instrument.name.upper():
                return Decimal(t.fundingRate or "0"), int(t.nextFundingTime or 0) * parse.MS
        raise VenueRejected(GtwRejectCode.UnknownInstrument, 0, f"no ticker {instrument.name}")

    async def run_private_stream(
        self,
        on_connected: Callable[[], Awaitable[None]],
        on_events: Callable[[list[StreamEvent]], None],
    ) -> None:
        """Open ``/v5/private``, authenticate, subscribe to ``order`` and ``execution``, ping
        every 20 s and pass the updates on."""
        async with ws_connect(self.ws_url, timeout_s=self.config.request_timeout_s) as conn:
            expires = self.clock.now_ms() + int(self.config.request_timeout_s * 1000)
            await authenticate(conn, self._creds.api_key, self._creds.api_secret, expires)

            async def ping() -> None:
                while True:
                    await asyncio.sleep(self.ping_interval_s)
                    try:
                        await conn.send(PING)
                    except VenueUnavailable as exc:
                        log.warning("bybit: ping failed: %s", exc)
                        return  # the receive loop sees the closed connection

            pinger = asyncio.get_running_loop().create_task(ping(), name="gateway[Bybit].ping")
            try:
                await on_connected()
                while True:
                    raw = await conn.receive()
                    if raw is None:
                        return
                    try:
                        events = decode_private_frame(raw)
                    except msgspec.DecodeError as exc:
                        log.warning("bybit: bad private frame %r: %s", raw[:200], exc)
                        continue
                    if events:
                        on_events(events)
            finally:
                pinger.cancel()
                await asyncio.wait({pinger})


def build_gateway(
    bus: BusBase,
    scheduler: Scheduler,
    topics: Topics,
    config: LiveGatewayConfig,
    instruments: list[Instrument],
    creds: Credentials | None = None,
) -> LiveGateway:
    """The Bybit v5 gateway (keys from ``config`` unless ``creds`` is given).

    Raises:
        ConfigError: no keys configured.
    """
    c = creds or config.credentials()
    log.info("bybit: %s gateway, key %s", config.environment.name, mask(c.api_key))
    api = BybitV5Api(config, c, scheduler.now_ns)
    return LiveGateway(bus, scheduler, topics, config, api, instruments)


__all__ = ["URLS", "BybitV5Api", "build_gateway"]
