"""Sanity checks of bus messages whose fields decode but may not make sense.

msgspec already checks shapes and types at decode; these functions check values, with the rules
of :mod:`mlthon.basics.sanity`, and name the field that is wrong (``OrderExecution.fill_qty:
'NaN' is not finite``).

* :func:`decoded_problem` runs inside :func:`mlthon.infra.bus.codec.decode` for the messages
  nobody answers (reports, statuses, heartbeats, funding): a bad one is dropped there, logged
  with its topic, and never reaches the env or the accounting check.
* :func:`request_problem` is for order-entry requests, which must each get one answer: the
  gateway calls it before handling a request and answers a bad one with its reject
  (``InvalidRequest``, the reason naming the field) instead of dropping it.

Market-data levels are not checked here (that would cost on every level of every message): they
are integer ticks and lots (wire version 2) made by the feed, which checks each venue text once,
when it first converts it (a value that is not sane never becomes ticks); a receiver checks each
distinct tick and lot count once too, when it first makes its ``Price`` / ``Qty``
(:class:`~mlthon.basics.values.TickPrices`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mlthon.basics.mlt_enum import MARKET_ORDER_TYPES
from mlthon.basics.sanity import cl_id_problem, decimal_problem
from mlthon.infra.bus import messages as m
from mlthon.infra.bus.topics import check_name

MAX_TEXT = 4096  # a reason, a detail: anything longer is not a message for a human
MAX_REQ_ID = 64
MAX_ECHOED_ID = 65_536  # a reject's echo of whatever id its request carried

_Check = Callable[[Any], "str | None"]


def _dec(
    kind: str, field: str, text: object, *, positive: bool = False, signed: bool = False
) -> str | None:
    why = decimal_problem(text, positive=positive, signed=signed)
    return None if why is None else f"{kind}.{field}: {why}"


def _cl(kind: str, field: str, cl_id: object) -> str | None:
    why = cl_id_problem(cl_id)
    return None if why is None else f"{kind}.{field}: {why}"


def _text(kind: str, field: str, text: str, limit: int = MAX_TEXT) -> str | None:
    if len(text) > limit:
        return f"{kind}.{field}: is {len(text)} characters long (at most {limit})"
    return None


def _first(*problems: str | None) -> str | None:
    for p in problems:
        if p is not None:
            return p
    return None


def _order_wire(kind: str, w: m.OrderWire) -> str | None:
    return _first(
        _cl(kind, "cl_id", w.cl_id),
        _text(kind, "exch_id", w.exch_id, 128),
        _dec(kind, "price", w.price),
        _dec(kind, "qty", w.qty),
        _dec(kind, "leaves_qty", w.leaves_qty),
        _dec(kind, "filled_qty", w.filled_qty),
    )


_DECODED: dict[type[Any], _Check] = {
    m.NewOrderAck: lambda x: _first(
        _cl("NewOrderAck", "cl_id", x.cl_id),
        _text("NewOrderAck", "exch_id", x.exch_id, 128),
        _dec("NewOrderAck", "price", x.price),
        _dec("NewOrderAck", "qty", x.qty, positive=True),
        _dec("NewOrderAck", "leaves_qty", x.leaves_qty),
    ),
    # A reject echoes the request's id as it came, sane or not (an InvalidRequest for an empty
    # or 10 kB id): its sender must get it, so only its size is bounded.
    m.NewOrderReject: lambda x: _first(
        _text("NewOrderReject", "cl_id", x.cl_id, MAX_ECHOED_ID),
        _text("NewOrderReject", "reason", x.reason),
    ),
    m.ModifyOrderAck: lambda x: _first(
        _cl("ModifyOrderAck", "cl_id", x.cl_id),
        _dec("ModifyOrderAck", "new_price", x.new_price),
        _dec("ModifyOrderAck", "new_qty", x.new_qty, positive=True),
        _dec("ModifyOrderAck", "leaves_qty", x.leaves_qty),
    ),
    m.ModifyOrderReject: lambda x: _first(
        _text("ModifyOrderReject", "cl_id", x.cl_id, MAX_ECHOED_ID),
        _text("ModifyOrderReject", "reason", x.reason),
    ),
    m.CancelOrderAck: lambda x: _cl("CancelOrderAck", "cl_id", x.cl_id),
    m.CancelOrderReject: lambda x: _first(
        None if x.cl_id is None else _text("CancelOrderReject", "cl_id", x.cl_id, MAX_ECHOED_ID),
        _text("CancelOrderReject", "reason", x.reason),
    ),
    m.CancelAllReject: lambda x: _text("CancelAllReject", "reason", x.reason),
    m.OrderExecution: lambda x: _first(
        _cl("OrderExecution", "cl_id", x.cl_id),
        None if x.exec_id else "OrderExecution.exec_id: is empty",
        _text("OrderExecution", "exec_id", x.exec_id, 128),
        _dec("OrderExecution", "price", x.price, positive=True),
        _dec("OrderExecution", "fill_qty", x.fill_qty, positive=True),
        _dec("OrderExecution", "leaves_qty", x.leaves_qty),
        _dec("OrderExecution", "fee", x.fee, signed=True),
    ),
    m.OrderCancelled: lambda x: _first(
        _cl("OrderCancelled", "cl_id", x.cl_id), _text("OrderCancelled", "reason", x.reason)
    ),
    m.RequestReject: lambda x: _text("RequestReject", "detail", x.detail),
    m.WalletInfo: lambda x: _first(
        _text("WalletInfo", "coin", x.coin, 32),
        _dec("WalletInfo", "total", x.total, signed=True),
        _dec("WalletInfo", "available", x.available, signed=True),
    ),
    m.PositionInfo: lambda x: _dec("PositionInfo", "position", x.position, signed=True),
    m.FundingInfo: lambda x: _dec("FundingInfo", "rate", x.rate, signed=True),
    m.OrderStatusInfo: lambda x: _order_wire("OrderStatusInfo.order", x.order),
    m.OrdersInfo: lambda x: _first(*(_order_wire("OrdersInfo.orders", w) for w in x.orders)),
    m.GatewayStatus: lambda x: _text("GatewayStatus", "detail", x.detail),
    m.FeedStatus: lambda x: _text("FeedStatus", "detail", x.detail),
    m.FeedHeartbeat: lambda x: (
        None
        if 0 < x.limit_ms <= 3_600_000
        else f"FeedHeartbeat.limit_ms: {x.limit_ms} is not between 1 and 3600000"
    ),
    m.FundingUpdate: lambda x: _first(
        _dec("FundingUpdate", "rate", x.rate, signed=True),
        None if not x.mark else _dec("FundingUpdate", "mark", x.mark, positive=True),
    ),
}


def decoded_problem(msg: Any) -> str | None:
    """What is insane in a decoded message nobody answers (a report, a status...), or None."""
    check = _DECODED.get(type(msg))
    return None if check is None else check(msg)


def _strat(kind: str, strat: str) -> str | None:
    try:
        check_name(strat, "strat")
    except ValueError as exc:
        return f"{kind}.strat: {exc}"
    return None


def _req_id(kind: str, req_id: str) -> str | None:
    return _text(kind, "req_id", req_id, MAX_REQ_ID)


def _new_order(x: m.NewOrder) -> str | None:
    market = x.ord_type in MARKET_ORDER_TYPES
    return _first(
        _strat("NewOrder", x.strat),
        _cl("NewOrder", "cl_id", x.cl_id),
        _dec("NewOrder", "price", x.price, positive=not market),
        _dec("NewOrder", "qty", x.qty, positive=True),
        None
        if x.stop_price is None
        else _dec("NewOrder", "stop_price", x.stop_price, positive=True),
    )


_REQUESTS: dict[type[Any], _Check] = {
    m.NewOrder: _new_order,
    m.ModifyOrder: lambda x: _first(
        _strat("ModifyOrder", x.strat),
        _cl("ModifyOrder", "cl_id", x.cl_id),
        None
        if x.new_price is None
        else _dec("ModifyOrder", "new_price", x.new_price, positive=True),
        None if x.new_qty is None else _dec("ModifyOrder", "new_qty", x.new_qty, positive=True),
        "ModifyOrder: neither new_price nor new_qty"
        if x.new_price is None and x.new_qty is None
        else None,
    ),
    m.CancelOrder: lambda x: _first(
        _strat("CancelOrder", x.strat), _cl("CancelOrder", "cl_id", x.cl_id)
    ),
    m.CancelAll: lambda x: _strat("CancelAll", x.strat),
    m.FetchAccount: lambda x: _first(
        _strat("FetchAccount", x.strat), _req_id("FetchAccount", x.req_id)
    ),
    m.FetchWallet: lambda x: _first(
        _strat("FetchWallet", x.strat),
        None
        if x.coin and len(x.coin) <= 32 and x.coin.isalnum()
        else f"FetchWallet.coin: {x.coin[:40]!r} is not a coin name",
        _req_id("FetchWallet", x.req_id),
    ),
    m.FetchPosition: lambda x: _first(
        _strat("FetchPosition", x.strat), _req_id("FetchPosition", x.req_id)
    ),
    m.FetchFunding: lambda x: _first(
        _strat("FetchFunding", x.strat), _req_id("FetchFunding", x.req_id)
    ),
    m.FetchOrderStatus: lambda x: _first(
        _strat("FetchOrderStatus", x.strat),
        _cl("FetchOrderStatus", "cl_id", x.cl_id),
        _req_id("FetchOrderStatus", x.req_id),
    ),
    m.FetchOrders: lambda x: _first(
        _strat("FetchOrders", x.strat), _req_id("FetchOrders", x.req_id)
    ),
}


def request_problem(msg: Any) -> str | None:
    """What is insane in an order-entry request, or None (the gateway answers a bad request with
    its reject, ``InvalidRequest``, this text as the reason)."""
    check = _REQUESTS.get(type(msg))
    return None if check is None else check(msg)
