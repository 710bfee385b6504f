"""Pure Binance USD-M order-entry functions: requests to parameters, answers to our values.

No I/O and no clock: times are passed in.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from decimal import Decimal
from urllib.parse import urlencode

from mlthon.basics.instrument import Instrument
from mlthon.basics.mlt_enum import (
    TIF,
    ExecInstructions,
    GtwRejectCode,
    OrderStatus,
    OrderType,
    Side,
)
from mlthon.basics.token_bucket import Budget
from mlthon.gateways.binance_usdm.wire import (
    ExchangeInfo,
    Order,
    OrderUpdateData,
    UserTrade,
)
from mlthon.gateways.live.model import Fill, OrderEvent, RateUsage, VenueOrder

MS = 1_000_000

ORDER_LIMIT_1M = 1200
ORDER_LIMIT_10S = 300
WEIGHT_LIMIT_1M = 2400
TIMESTAMP_REJECT = -1021

# The documented default budgets (exchangeInfo's rateLimits replace the limits at start).
BUDGETS = (
    Budget("weight-1m", WEIGHT_LIMIT_1M, 60.0, "weight", "per IP"),
    Budget("orders-1m", ORDER_LIMIT_1M, 60.0, "orders", "per account"),
    Budget("orders-10s", ORDER_LIMIT_10S, 10.0, "orders", "per account"),
)
# Request weight of the endpoints used (1 when not listed); openOrders costs 40 without a symbol.
WEIGHTS: dict[tuple[str, str], int] = {
    ("GET", "/fapi/v1/userTrades"): 5,
    ("GET", "/fapi/v2/balance"): 5,
    ("GET", "/fapi/v2/positionRisk"): 5,
}
_ORDERS = {("POST", "/fapi/v1/order"), ("PUT", "/fapi/v1/order")}
# response header -> budget it reports
BUDGET_HEADERS = {
    "X-MBX-USED-WEIGHT-1M": "weight-1m",
    "X-MBX-ORDER-COUNT-1M": "orders-1m",
    "X-MBX-ORDER-COUNT-10S": "orders-10s",
}

_STATUS = {
    "NEW": OrderStatus.New,
    "PARTIALLY_FILLED": OrderStatus.PartiallyFilled,
    "FILLED": OrderStatus.Filled,
    "CANCELED": OrderStatus.Cancelled,
    "EXPIRED": OrderStatus.Cancelled,
    "EXPIRED_IN_MATCH": OrderStatus.Cancelled,
    "REJECTED": OrderStatus.Rejected,
    "NEW_ADL": OrderStatus.New,
    "NEW_INSURANCE": OrderStatus.New,
}
_SIDE = {"BUY": Side.Buy, "SELL": Side.Sell}

# Binance error code -> our reject code. Codes absent here map to ExchangeError.
ERROR_CODES: dict[int, GtwRejectCode] = {
    -1003: GtwRejectCode.RateLimitExceeded,
    -1007: GtwRejectCode.Timeout,
    -1008: GtwRejectCode.RateLimitExceeded,
    -1015: GtwRejectCode.RateLimitExceeded,
    -1020: GtwRejectCode.UnsupportedOperation,
    -1021: GtwRejectCode.ClockOffset,  # timestamp outside recvWindow: the clock is resynced
    -1022: GtwRejectCode.NotLoggedIn,
    -2014: GtwRejectCode.NotLoggedIn,
    -2015: GtwRejectCode.NotLoggedIn,
    -1002: GtwRejectCode.NotLoggedIn,
    -1100: GtwRejectCode.InvalidRequest,
    -1102: GtwRejectCode.InvalidRequest,
    -1106: GtwRejectCode.InvalidRequest,
    -1111: GtwRejectCode.InvalidPrice,
    -1116: GtwRejectCode.InvalidRequest,
    -1117: GtwRejectCode.InvalidRequest,
    -1121: GtwRejectCode.UnknownInstrument,
    -2011: GtwRejectCode.UnknownOrder,
    -2013: GtwRejectCode.UnknownOrder,
    -2018: GtwRejectCode.InsufficientBalance,
    -2019: GtwRejectCode.InsufficientBalance,
    -2021: GtwRejectCode.InvalidPrice,
    -2022: GtwRejectCode.ReduceOnlyWouldIncrease,
    -4003: GtwRejectCode.InvalidQty,
    -4005: GtwRejectCode.InvalidQty,
    -4014: GtwRejectCode.InvalidPrice,
    -4015: GtwRejectCode.InvalidRequest,
    -4016: GtwRejectCode.InvalidPrice,
    -4023: GtwRejectCode.InvalidQty,
    -4131: GtwRejectCode.InvalidPrice,
    -4164: GtwRejectCode.InvalidQty,
    -5021: GtwRejectCode.FokNotFilled,
    -5022: GtwRejectCode.PostOnlyWouldCross,
    -5027: GtwRejectCode.InvalidRequest,
}


def error_to_reject_code(venue_code: int) -> GtwRejectCode:
    """Our reject code for a Binance error code (``ExchangeError`` if unknown)."""
    return ERROR_CODES.get(venue_code, GtwRejectCode.ExchangeError)


def sign_query(secret: str, params: Mapping[str, str]) -> str:
    """The query string of a SIGNED request: the parameters url-encoded in order, then
    ``&signature=`` HMAC-SHA256(secret, that string) in hex."""
    query = urlencode(list(params.items()))
    sig = hmac.new(secret.encode(), query.encode(), hashlib.sha256).hexdigest()
    return f"{query}&signature={sig}"


def fmt(d: Decimal) -> str:
    """A Decimal as Binance expects it: plain notation, no exponent."""
    return format(d, "f")


def new_order_params(
    *,
    symbol: str,
    venue_cid: str,
    side: Side,
    ord_type: OrderType,
    tif: TIF,
    exec_instr: ExecInstructions,
    price: Decimal,
    qty: Decimal,
    reduce_only: bool,
) -> dict[str, str]:
    """``POST /fapi/v1/order`` parameters (before timestamp and signature).

    Post-only is ``timeInForce=GTX``; IOC and FOK pass through; a market order has no price.
    """
    p = {
        "symbol": symbol,
        "side": "BUY" if side is Side.Buy else "SELL",
        "type": "MARKET" if ord_type is OrderType.Market else "LIMIT",
        "quantity": fmt(qty),
        "newClientOrderId": venue_cid,
        "newOrderRespType": "RESULT",
    }
    if ord_type is not OrderType.Market:
        p["price"] = fmt(price)
        if exec_instr is ExecInstructions.PostOnly:
            p["timeInForce"] = "GTX"
        else:
            p["timeInForce"] = {TIF.IOC: "IOC", TIF.FOK: "FOK"}.get(tif, "GTC")
    if reduce_only:
        p["reduceOnly"] = "true"
    return p


def order_to_venue_order(o: Order) -> VenueOrder:
    """A REST order object as our :class:`VenueOrder`."""
    expired = o.status.startswith("EXPIRED")
    return VenueOrder(
        venue_cid=o.clientOrderId,
        exch_id=str(o.orderId),
        symbol=o.symbol,
        status=_STATUS.get(o.status, OrderStatus.New),
        price=Decimal(o.price),
        qty=Decimal(o.origQty),
        filled=Decimal(o.executedQty),
        reason=f"order {o.status.lower()}" if expired else "",
        cancel_code_hint="ioc" if expired else "",
        ts=o.updateTime * MS,
    )


def exec_id(symbol: str, trade_id: int) -> str:
    """Our execution id: Binance trade ids are unique per symbol."""
    return f"{symbol}:{trade_id}"


def user_trade_to_fill(t: UserTrade, venue_cid: str) -> Fill:
    """A ``userTrades`` entry (reconciliation) as a :class:`Fill`."""
    return Fill(
        venue_cid=venue_cid,
        exch_id=str(t.orderId),
        symbol=t.symbol,
        exec_id=exec_id(t.symbol, t.id),
        side=_SIDE.get(t.side, Side.Unset),
        price=Decimal(t.price),
        qty=Decimal(t.qty),
        fee=Decimal(t.commission),
        fee_coin=t.commissionAsset,
        maker=t.maker,
        ts=t.time * MS,
    )


def order_update_to_event(o: OrderUpdateData) -> OrderEvent:
    """``ORDER_TRADE_UPDATE``: the order's state, plus a fill when ``x == TRADE`` and ``l > 0``."""
    expired = o.x == "EXPIRED" or o.X.startswith("EXPIRED")
    vo = VenueOrder(
        venue_cid=o.c,
        exch_id=str(o.i),
        symbol=o.s,
        status=_STATUS.get(o.X, OrderStatus.New),
        price=Decimal(o.p),
        qty=Decimal(o.q),
        filled=Decimal(o.z),
        reason=f"{o.f} order expired" if expired else "",
        cancel_code_hint="ioc" if expired else "",
        ts=o.T * MS,
    )
    fill = None
    last = Decimal(o.l)
    if o.x == "TRADE" and last > 0:
        fill = Fill(
            venue_cid=o.c,
            exch_id=str(o.i),
            symbol=o.s,
            exec_id=exec_id(o.s, o.t),
            side=_SIDE.get(o.S, Side.Unset),
            price=Decimal(o.L),
            qty=last,
            fee=Decimal(o.n or "0"),
            fee_coin=o.N or "",
            maker=o.m,
            ts=o.T * MS,
        )
    return OrderEvent(order=vo, fill=fill)


def exchange_info_to_instruments(info: ExchangeInfo, wanted: list[Instrument]) -> list[Instrument]:
    """The ``wanted`` instruments with tick, lot, minimum size and minimum notional of
    ``exchangeInfo`` (ids, fees and names kept); those not listed are left out."""
    import attrs

    by_sym = {s.symbol.upper(): s for s in info.symbols}
    out: list[Instrument] = []
    for inst in wanted:
        s = by_sym.get(inst.name.upper())
        if s is None:
            continue
        changes: dict[str, Decimal | str] = {}
        for f in s.filters:
            if f.filterType == "PRICE_FILTER" and f.tickSize:
                changes["tick_size"] = Decimal(f.tickSize)
            elif f.filterType == "LOT_SIZE":
                if f.stepSize:
                    changes["lot_size"] = Decimal(f.stepSize)
                if f.minQty:
                    changes["min_qty"] = Decimal(f.minQty)
            elif f.filterType == "MIN_NOTIONAL" and f.notional:
                changes["min_notional"] = Decimal(f.notional)
        if s.marginAsset:
            changes["settle_coin"] = s.marginAsset
        out.append(attrs.evolve(inst, **changes))  # type: ignore[arg-type]
    return out


def order_limit(info: ExchangeInfo) -> int:
    """The ``ORDERS`` per-minute budget of ``exchangeInfo`` (1200 if absent)."""
    for r in info.rateLimits:
        if r.rateLimitType == "ORDERS" and r.interval == "MINUTE" and r.intervalNum == 1:
            return r.limit
    return ORDER_LIMIT_1M


def order_limit_10s(info: ExchangeInfo) -> int:
    """The ``ORDERS`` per-10-second budget of ``exchangeInfo`` (300 if absent)."""
    for r in info.rateLimits:
        if r.rateLimitType == "ORDERS" and r.interval == "SECOND" and r.intervalNum == 10:
            return r.limit
    return ORDER_LIMIT_10S


def request_costs(method: str, path: str, query: str) -> dict[str, int]:
    """What a request spends of each budget (:data:`BUDGETS`): its weight, and one order of
    each order budget for a new or amended order."""
    weight = WEIGHTS.get((method, path), 1)
    if path == "/fapi/v1/openOrders" and "symbol=" not in query:
        weight = 40
    costs = {"weight-1m": weight}
    if (method, path) in _ORDERS:
        costs["orders-1m"] = costs["orders-10s"] = 1
    return costs


def headers_to_budget_usage(headers: Mapping[str, str]) -> dict[str, int]:
    """The usage of each budget the venue reports in an answer's headers."""
    out: dict[str, int] = {}
    for header, name in BUDGET_HEADERS.items():
        raw = _header(headers, header)
        if raw is not None and raw.isdigit():
            out[name] = int(raw)
    return out


def weight_limit(info: ExchangeInfo) -> int:
    """The ``REQUEST_WEIGHT`` per-minute budget of ``exchangeInfo`` (2400 if absent)."""
    for r in info.rateLimits:
        if r.rateLimitType == "REQUEST_WEIGHT" and r.interval == "MINUTE":
            return r.limit
    return WEIGHT_LIMIT_1M


def headers_to_rate_usage(
    headers: Mapping[str, str], now_ns: int, weight_budget: int, order_budget: int
) -> RateUsage | None:
    """The most used budget reported by ``X-MBX-USED-WEIGHT-1M`` and ``X-MBX-ORDER-COUNT-1M``
    (None if neither header is there). Both windows reset at the next whole minute."""
    reset = (now_ns // (60 * 10**9) + 1) * 60 * 10**9
    best: RateUsage | None = None
    for header, budget, name in (
        ("X-MBX-USED-WEIGHT-1M", weight_budget, "weight-1m"),
        ("X-MBX-ORDER-COUNT-1M", order_budget, "orders-1m"),
    ):
        raw = _header(headers, header)
        if raw is None or not raw.isdigit():
            continue
        u = RateUsage(limit=budget, used=int(raw), reset_ts=reset, name=name)
        if best is None or u.used * best.limit > best.used * u.limit:
            best = u
    return best


def _header(headers: Mapping[str, str], name: str) -> str | None:
    v = headers.get(name)
    if v is not None:
        return v
    low = name.lower()
    for k, val in headers.items():
        if k.lower() == low:
            return val
    return None
