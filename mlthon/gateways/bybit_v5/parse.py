"""Pure Bybit v5 order-entry functions: requests to bodies, answers to our values, signatures.

No I/O and no clock: times are passed in.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from decimal import Decimal

import attrs

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
from mlthon.gateways.bybit_v5.wire import Execution, InstrumentInfo, OrderRecord, ServerTime
from mlthon.gateways.live.model import Fill, OrderEvent, RateUsage, VenueOrder

MS = 1_000_000
CATEGORY = "linear"
TIMESTAMP_REJECT = 10002

# The documented default budgets (category linear, per account and endpoint per second; every
# request of the IP per 5 s). ``X-Bapi-Limit`` replaces an endpoint's limit when it answers.
BUDGETS = (
    Budget("ip-5s", 600, 5.0, "requests", "per IP"),
    Budget("order-create", 10, 1.0, "requests", "per account on /v5/order/create"),
    Budget("order-amend", 10, 1.0, "requests", "per account on /v5/order/amend"),
    Budget("order-cancel", 10, 1.0, "requests", "per account on /v5/order/cancel"),
    Budget("order-realtime", 50, 1.0, "requests", "per account on /v5/order/realtime"),
    Budget("order-history", 50, 1.0, "requests", "per account on /v5/order/history"),
    Budget("execution-list", 50, 1.0, "requests", "per account on /v5/execution/list"),
    Budget("position-list", 50, 1.0, "requests", "per account on /v5/position/list"),
    Budget("wallet-balance", 50, 1.0, "requests", "per account on /v5/account/wallet-balance"),
)
_ENDPOINT_BUDGETS = {
    "/v5/order/create": "order-create",
    "/v5/order/amend": "order-amend",
    "/v5/order/cancel": "order-cancel",
    "/v5/order/realtime": "order-realtime",
    "/v5/order/history": "order-history",
    "/v5/execution/list": "execution-list",
    "/v5/position/list": "position-list",
    "/v5/account/wallet-balance": "wallet-balance",
}

_STATUS = {
    "New": OrderStatus.New,
    "Created": OrderStatus.PendingNew,
    "PartiallyFilled": OrderStatus.PartiallyFilled,
    "Filled": OrderStatus.Filled,
    "Cancelled": OrderStatus.Cancelled,
    "PartiallyFilledCanceled": OrderStatus.Cancelled,
    "Deactivated": OrderStatus.Cancelled,
    "Rejected": OrderStatus.Rejected,
    "Untriggered": OrderStatus.Untriggered,
    "Triggered": OrderStatus.New,
}
_SIDE = {"Buy": Side.Buy, "Sell": Side.Sell}

# Bybit retCode -> our reject code. Codes absent here map to ExchangeError.
ERROR_CODES: dict[int, GtwRejectCode] = {
    10001: GtwRejectCode.InvalidRequest,
    10002: GtwRejectCode.ClockOffset,  # timestamp outside recv_window: the clock is resynced
    10003: GtwRejectCode.NotLoggedIn,
    10004: GtwRejectCode.NotLoggedIn,
    10005: GtwRejectCode.NotLoggedIn,
    10006: GtwRejectCode.RateLimitExceeded,
    10010: GtwRejectCode.NotLoggedIn,
    10018: GtwRejectCode.RateLimitExceeded,
    10029: GtwRejectCode.UnknownInstrument,
    110001: GtwRejectCode.UnknownOrder,
    110003: GtwRejectCode.InvalidPrice,
    110004: GtwRejectCode.InsufficientBalance,
    110007: GtwRejectCode.InsufficientBalance,
    110008: GtwRejectCode.UnknownOrder,
    110012: GtwRejectCode.InsufficientBalance,
    110017: GtwRejectCode.ReduceOnlyWouldIncrease,
    110020: GtwRejectCode.RateLimitExceeded,
    110045: GtwRejectCode.InsufficientBalance,
    110072: GtwRejectCode.DuplicateClientId,
    110094: GtwRejectCode.InvalidQty,
}

# rejectReason of an order cancelled right after its creation -> a rejection of the NewOrder.
REJECT_REASONS: dict[str, GtwRejectCode] = {
    "EC_PostOnlyWillTakeLiquidity": GtwRejectCode.PostOnlyWouldCross,
    "EC_CancelForNoFullFill": GtwRejectCode.FokNotFilled,
    "EC_ReduceOnlySetButNotReducing": GtwRejectCode.ReduceOnlyWouldIncrease,
}
IOC_REASONS = frozenset({"EC_NoImmediateQtyToFill"})
_NO_REASON = frozenset({"", "EC_NoError", "UNKNOWN"})


def error_to_reject_code(ret_code: int) -> GtwRejectCode:
    """Our reject code for a Bybit ``retCode`` (``ExchangeError`` if unknown)."""
    return ERROR_CODES.get(ret_code, GtwRejectCode.ExchangeError)


def sign(secret: str, timestamp_ms: int, api_key: str, recv_window_ms: int, payload: str) -> str:
    """``X-BAPI-SIGN``: HMAC-SHA256(secret, timestamp + apiKey + recvWindow + payload) in hex;
    ``payload`` is the query string (GET) or the JSON body (POST)."""
    msg = f"{timestamp_ms}{api_key}{recv_window_ms}{payload}"
    return hmac.new(secret.encode(), msg.encode(), hashlib.sha256).hexdigest()


def ws_auth_args(api_key: str, secret: str, expires_ms: int) -> list[str]:
    """``{"op":"auth","args": [...]}``: key, expiry (ms) and HMAC of ``GET/realtime<expires>``."""
    sig = hmac.new(secret.encode(), f"GET/realtime{expires_ms}".encode(), hashlib.sha256)
    return [api_key, str(expires_ms), sig.hexdigest()]


def fmt(d: Decimal) -> str:
    """A Decimal in plain notation."""
    return format(d, "f")


def new_order_body(
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
) -> dict[str, object]:
    """``POST /v5/order/create`` body: post-only is ``timeInForce=PostOnly``."""
    body: dict[str, object] = {
        "category": CATEGORY,
        "symbol": symbol,
        "side": "Buy" if side is Side.Buy else "Sell",
        "orderType": "Market" if ord_type is OrderType.Market else "Limit",
        "qty": fmt(qty),
        "orderLinkId": venue_cid,
    }
    if ord_type is OrderType.Market:
        body["timeInForce"] = "IOC"
    else:
        body["price"] = fmt(price)
        if exec_instr is ExecInstructions.PostOnly:
            body["timeInForce"] = "PostOnly"
        else:
            body["timeInForce"] = {TIF.IOC: "IOC", TIF.FOK: "FOK"}.get(tif, "GTC")
    if reduce_only:
        body["reduceOnly"] = True
    return body


def order_record_to_venue_order(o: OrderRecord) -> VenueOrder:
    """An order record (REST or the ``order`` topic) as our :class:`VenueOrder`."""
    status = _STATUS.get(o.orderStatus, OrderStatus.New)
    reject = REJECT_REASONS.get(o.rejectReason) if status is OrderStatus.Cancelled else None
    reason = next((r for r in (o.rejectReason, o.cancelType) if r not in _NO_REASON), "")
    ioc = o.rejectReason in IOC_REASONS or (
        status is OrderStatus.Cancelled and o.timeInForce in ("IOC", "FOK") and not o.cancelType
    )
    return VenueOrder(
        venue_cid=o.orderLinkId,
        exch_id=o.orderId,
        symbol=o.symbol,
        status=status,
        price=Decimal(o.price or "0"),
        qty=Decimal(o.qty or "0"),
        filled=Decimal(o.cumExecQty or "0"),
        reason=reason,
        cancel_code_hint="ioc" if ioc else "",
        ts=int(o.updatedTime or 0) * MS,
        reject_code=reject,
    )


def execution_to_fill(e: Execution) -> Fill:
    """An execution as a :class:`Fill` (``execId`` is unique)."""
    return Fill(
        venue_cid=e.orderLinkId,
        exch_id=e.orderId,
        symbol=e.symbol,
        exec_id=e.execId,
        side=_SIDE.get(e.side, Side.Unset),
        price=Decimal(e.execPrice),
        qty=Decimal(e.execQty),
        fee=Decimal(e.execFee or "0"),
        fee_coin=e.feeCurrency,
        maker=e.isMaker,
        ts=int(e.execTime or 0) * MS,
    )


def execution_to_event(e: Execution) -> OrderEvent | None:
    """An ``execution`` push as an order event with its fill (None for funding and other
    non-trade executions)."""
    if e.execType != "Trade" or not e.orderLinkId:
        return None
    fill = execution_to_fill(e)
    leaves = Decimal(e.leavesQty or "0")
    vo = VenueOrder(
        venue_cid=e.orderLinkId,
        exch_id=e.orderId,
        symbol=e.symbol,
        status=OrderStatus.Filled if leaves == 0 else OrderStatus.PartiallyFilled,
        price=fill.price,
        qty=Decimal(e.orderQty or "0"),
        filled=Decimal(0),
        ts=fill.ts,
    )
    return OrderEvent(order=vo, fill=fill)


def instruments_from_info(
    infos: list[InstrumentInfo], wanted: list[Instrument]
) -> list[Instrument]:
    """The ``wanted`` instruments with tick, lot, minimum size and notional of
    instruments-info (ids, fees and names kept); those not listed are left out."""
    by_sym = {i.symbol.upper(): i for i in infos}
    out: list[Instrument] = []
    for inst in wanted:
        s = by_sym.get(inst.name.upper())
        if s is None:
            continue
        out.append(
            attrs.evolve(
                inst,
                tick_size=Decimal(s.priceFilter.tickSize),
                lot_size=Decimal(s.lotSizeFilter.qtyStep),
                min_qty=Decimal(s.lotSizeFilter.minOrderQty or "0"),
                min_notional=Decimal(s.lotSizeFilter.minNotionalValue or "0"),
                settle_coin=s.settleCoin or inst.settle_coin,
            )
        )
    return out


def endpoint_budget(path: str) -> str | None:
    """The per-endpoint budget of ``path`` (None: only the IP budget counts it)."""
    return _ENDPOINT_BUDGETS.get(path)


def request_costs(method: str, path: str, query: str) -> dict[str, int]:
    """What a request spends of each budget (:data:`BUDGETS`): one of the IP's, one of its
    endpoint's."""
    costs = {"ip-5s": 1}
    name = _ENDPOINT_BUDGETS.get(path)
    if name is not None:
        costs[name] = 1
    return costs


def server_time_ms(t: ServerTime) -> int:
    """The venue's time in ms from ``/v5/market/time`` (``timeNano``, else ``timeSecond``)."""
    if t.timeNano.isdigit() and t.timeNano != "0":
        return int(t.timeNano) // MS
    if t.timeSecond.isdigit():
        return int(t.timeSecond) * 1000
    raise ValueError(f"no time in {t!r}")


def headers_to_rate_usage(headers: Mapping[str, str], name: str) -> RateUsage | None:
    """Usage of one endpoint's budget from ``X-Bapi-Limit`` (budget), ``X-Bapi-Limit-Status``
    (remaining) and ``X-Bapi-Limit-Reset-Timestamp`` (ms; rounded up to the next second, the
    window being a rolling second)."""
    limit = _header(headers, "X-Bapi-Limit")
    remaining = _header(headers, "X-Bapi-Limit-Status")
    reset = _header(headers, "X-Bapi-Limit-Reset-Timestamp")
    if not (limit and remaining and limit.isdigit() and remaining.isdigit()):
        return None
    reset_ms = int(reset) if reset and reset.isdigit() else 0
    reset_ns = -(-reset_ms // 1000) * 1000 * MS
    return RateUsage(
        limit=int(limit), used=int(limit) - int(remaining), reset_ts=reset_ns, name=name
    )


def _header(headers: Mapping[str, str], name: str) -> str | None:
    v = headers.get(name)
    if v is not None:
        return v
    low = name.lower()
    for k, val in headers.items():
        if k.lower() == low:
            return val
    return None
