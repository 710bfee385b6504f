"""Binance USD-M futures: the :class:`~mlthon.gateways.live.model.VenueApi` of the venue, and
the factory of its :class:`~mlthon.gateways.live.gateway.LiveGateway`.

Endpoints used (weights in brackets): ``GET /fapi/v1/time`` [1], ``GET /fapi/v1/exchangeInfo``
[1], ``POST/PUT/DELETE/GET /fapi/v1/order`` [1/1/1/1], ``GET /fapi/v1/openOrders`` [40 without
symbol], ``GET /fapi/v1/userTrades`` [5], ``GET /fapi/v2/balance`` [5], ``GET
/fapi/v2/positionRisk`` [5], ``GET /fapi/v1/premiumIndex`` [1], ``POST/PUT /fapi/v1/listenKey``
[1]. Local budgets (:data:`~mlthon.gateways.binance_usdm.parse.BUDGETS`, limits from
``exchangeInfo`` unless ``[gateway.rate_limits]`` sets them): ``weight-1m`` 2400 per minute per
IP, ``orders-1m`` 1200 and ``orders-10s`` 300 per account (new and amended orders).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from decimal import Decimal
from typing import TypeVar

import msgspec

from mlthon.basics.errors import GatewayError
from mlthon.basics.instrument import Instrument
from mlthon.basics.mlt_enum import Environment, Exchange, GtwRejectCode
from mlthon.gateways.binance_usdm import parse
from mlthon.gateways.binance_usdm.rest import BinanceRest
from mlthon.gateways.binance_usdm.wire import (
    Balance,
    ExchangeInfo,
    ListenKey,
    Order,
    PositionRisk,
    PremiumIndex,
    ServerTime,
    UserTrade,
)
from mlthon.gateways.binance_usdm.ws import decode_user_frame, user_stream_url
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

EXCHANGE = Exchange.BinanceUsdm

# (REST base, websocket base) per environment.
URLS: dict[Environment, tuple[str, str]] = {
    Environment.Mainnet: ("https://fapi.binance.com", "wss://fstream.binance.com"),
    Environment.Testnet: ("https://testnet.binancefuture.com", "wss://fstream.binancefuture.com"),
    Environment.Demo: ("https://demo-fapi.binance.com", "wss://demo-fstream.binance.com"),
}

_info = msgspec.json.Decoder(ExchangeInfo)
_order = msgspec.json.Decoder(Order)
_orders = msgspec.json.Decoder(list[Order])
_trades = msgspec.json.Decoder(list[UserTrade])
_balances = msgspec.json.Decoder(list[Balance])
_positions = msgspec.json.Decoder(list[PositionRisk])
_premium = msgspec.json.Decoder(PremiumIndex)
_listen = msgspec.json.Decoder(ListenKey)
_time = msgspec.json.Decoder(ServerTime)


T = TypeVar("T")


def _decode(dec: msgspec.json.Decoder[T], body: bytes, what: str) -> T:
    try:
        return dec.decode(body)
    except msgspec.DecodeError as exc:  # ValidationError derives from DecodeError
        raise VenueUnavailable(f"binance {what}: unexpected answer: {exc}") from exc


class BinanceUsdmApi(VenueApi):
    """Binance USD-M futures over signed REST and the user-data stream.

    Args:
        config: the live configuration (environment, URL overrides, timeouts, budgets).
        creds: the API key and secret.
        now_ns: the clock (the scheduler's).

    Raises:
        ConfigError: ``[gateway.rate_limits]`` names a budget Binance does not have.
    """

    def __init__(
        self, config: LiveGatewayConfig, creds: Credentials, now_ns: Callable[[], int]
    ) -> None:
        rest_url, ws_url = URLS[config.environment]
        self.rest_url = config.rest_url or rest_url
        self.ws_url = config.ws_url or ws_url
        self.config = config
        self._now_ns = now_ns
        self._weight_limit = parse.WEIGHT_LIMIT_1M
        self._order_limit = parse.ORDER_LIMIT_1M
        self._key = creds.api_key
        self.clock = VenueClock(now_ns)
        self.budgets = RateBudgets.from_config(
            parse.BUDGETS, config.rate_limits, now_ns, config.source
        )
        self.rest = BinanceRest(
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

    def _on_headers(self, headers: Mapping[str, str]) -> None:
        for name, used in parse.headers_to_budget_usage(headers).items():
            self.budgets.observe(name, used)
        usage = parse.headers_to_rate_usage(
            headers, self._now_ns(), self._weight_limit, self._order_limit
        )
        if usage is not None:
            self.last_rate = usage

    async def server_time_ms(self) -> int:
        """``GET /fapi/v1/time``: ``serverTime``."""
        body = await self.rest.keyed("GET", "/fapi/v1/time")
        return _decode(_time, body, "server time").serverTime

    async def open(self) -> None:
        """Open the HTTP session."""
        await self.rest.open()

    async def close(self) -> None:
        """Close the HTTP session."""
        await self.rest.close()

    async def load_instruments(self, wanted: list[Instrument]) -> list[Instrument]:
        """Refresh the grids from ``exchangeInfo`` (and read the rate budgets)."""
        info = _decode(_info, await self.rest.keyed("GET", "/fapi/v1/exchangeInfo"), "info")
        self._weight_limit = parse.weight_limit(info)
        self._order_limit = parse.order_limit(info)
        self.budgets.set_limit("weight-1m", self._weight_limit)
        self.budgets.set_limit("orders-1m", self._order_limit)
        self.budgets.set_limit("orders-10s", parse.order_limit_10s(info))
        loaded = parse.exchange_info_to_instruments(info, wanted)
        missing = {i.name for i in wanted} - {i.name for i in loaded}
        if missing:
            log.warning("binance: instruments not listed by the venue: %s", sorted(missing))
        return loaded

    async def place(self, order: LiveOrder) -> VenueOrder:
        """``POST /fapi/v1/order``."""
        params = parse.new_order_params(
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
        body = await self.rest.signed("POST", "/fapi/v1/order", params)
        return parse.order_to_venue_order(_decode(_order, body, "new order"))

    async def amend(self, order: LiveOrder, price: Decimal, qty: Decimal) -> VenueOrder:
        """``PUT /fapi/v1/order`` (limit orders: price and quantity)."""
        params = {
            "symbol": order.instrument.name,
            "origClientOrderId": order.venue_cid,
            "side": "BUY" if order.side.name == "Buy" else "SELL",
            "quantity": parse.fmt(qty),
            "price": parse.fmt(price),
        }
        body = await self.rest.signed("PUT", "/fapi/v1/order", params)
        return parse.order_to_venue_order(_decode(_order, body, "modify order"))

    async def cancel(self, order: LiveOrder) -> VenueOrder | None:
        """``DELETE /fapi/v1/order``."""
        params = {"symbol": order.instrument.name, "origClientOrderId": order.venue_cid}
        body = await self.rest.signed("DELETE", "/fapi/v1/order", params)
        return parse.order_to_venue_order(_decode(_order, body, "cancel order"))

    async def query_order(self, order: LiveOrder) -> VenueOrder | None:
        """``GET /fapi/v1/order``; None on ``-2013`` (no such order)."""
        params = {"symbol": order.instrument.name, "origClientOrderId": order.venue_cid}
        try:
            body = await self.rest.signed("GET", "/fapi/v1/order", params)
        except VenueRejected as exc:
            if exc.code is GtwRejectCode.UnknownOrder:
                return None
            raise
        return parse.order_to_venue_order(_decode(_order, body, "query order"))

    async def open_orders(self, instruments: list[Instrument]) -> list[VenueOrder]:
        """``GET /fapi/v1/openOrders`` (all symbols, filtered to ``instruments``)."""
        names = {i.name.upper() for i in instruments}
        body = await self.rest.signed("GET", "/fapi/v1/openOrders")
        return [
            parse.order_to_venue_order(o)
            for o in _decode(_orders, body, "open orders")
            if o.symbol.upper() in names
        ]

    async def order_fills(self, order: LiveOrder) -> list[Fill]:
        """``GET /fapi/v1/userTrades?orderId=`` (needs the venue id: queried if unknown)."""
        exch_id = order.exch_id
        if not exch_id:
            vo = await self.query_order(order)
            if vo is None:
                return []
            exch_id = vo.exch_id
        params = {"symbol": order.instrument.name, "orderId": exch_id}
        body = await self.rest.signed("GET", "/fapi/v1/userTrades", params)
        trades = _decode(_trades, body, "user trades")
        return [parse.user_trade_to_fill(t, order.venue_cid) for t in trades]

    async def account_id(self) -> str:
        """Binance has no user id on ``/fapi``: the masked API key, once the key is checked."""
        await self.rest.signed("GET", "/fapi/v2/balance")
        return f"binance-usdm:{mask(self._key)}"

    async def wallet(self, coin: str) -> tuple[Decimal, Decimal]:
        """``GET /fapi/v2/balance``: (balance, availableBalance) of ``coin`` (0 if absent)."""
        body = await self.rest.signed("GET", "/fapi/v2/balance")
        for b in _decode(_balances, body, "balance"):
            if b.asset.upper() == coin.upper():
                return Decimal(b.balance), Decimal(b.availableBalance)
        return Decimal(0), Decimal(0)

    async def position(self, instrument: Instrument) -> Decimal:
        """``GET /fapi/v2/positionRisk``: the sum of ``positionAmt`` (hedge mode: net)."""
        body = await self.rest.signed("GET", "/fapi/v2/positionRisk", {"symbol": instrument.name})
        return sum(
            (Decimal(p.positionAmt) for p in _decode(_positions, body, "positions")), Decimal(0)
        )

    async def funding(self, instrument: Instrument) -> tuple[Decimal, int]:
        """``GET /fapi/v1/premiumIndex``: (lastFundingRate, nextFundingTime ns)."""
        body = await self.rest.keyed("GET", "/fapi/v1/premiumIndex", {"symbol": instrument.name})
        p = _decode(_premium, body, "premium index")
        return Decimal(p.lastFundingRate), p.nextFundingTime * parse.MS

    async def run_private_stream(
        self,
        on_connected: Callable[[], Awaitable[None]],
        on_events: Callable[[list[StreamEvent]], None],
    ) -> None:
        """Get a listen key, open ``/ws/<key>``, keep the key alive, pass the order updates on."""
        key = _decode(_listen, await self.rest.keyed("POST", "/fapi/v1/listenKey"), "listen key")
        url = user_stream_url(self.ws_url, key.listenKey)
        # aiohttp pings every 30 s and drops a connection whose pong does not come
        async with ws_connect(
            url, timeout_s=self.config.request_timeout_s, heartbeat_s=30.0
        ) as conn:
            keepalive = asyncio.get_running_loop().create_task(
                self._keepalive(), name="gateway[BinanceUsdm].keepalive"
            )
            try:
                await on_connected()
                while True:
                    raw = await conn.receive()
                    if raw is None:
                        return
                    try:
                        events = decode_user_frame(raw)
                    except msgspec.DecodeError as exc:
                        log.warning("binance: bad user-data frame %r: %s", raw[:200], exc)
                        continue
                    if events:
                        on_events(events)
            finally:
                keepalive.cancel()
                await asyncio.wait({keepalive})

    async def _keepalive(self) -> None:
        while True:
            await asyncio.sleep(self.config.keepalive_s)
            try:
                await self.rest.keyed("PUT", "/fapi/v1/listenKey")
            except GatewayError as exc:
                # the next attempt may succeed; an expired key ends the stream by itself
                log.warning("binance: listen-key keep-alive failed: %s", exc)


def build_gateway(
    bus: BusBase,
    scheduler: Scheduler,
    topics: Topics,
    config: LiveGatewayConfig,
    instruments: list[Instrument],
    creds: Credentials | None = None,
) -> LiveGateway:
    """The Binance USD-M gateway (keys from ``config`` unless ``creds`` is given).

    Raises:
        ConfigError: no keys configured.
    """
    c = creds or config.credentials()
    log.info("binance: %s gateway, key %s", config.environment.name, mask(c.api_key))
    api = BinanceUsdmApi(config, c, scheduler.now_ns)
    return LiveGateway(bus, scheduler, topics, config, api, instruments)
