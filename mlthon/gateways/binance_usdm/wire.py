"""Binance USD-M order-entry payloads as msgspec structs (unknown fields allowed).

Field names are Binance's; prices and sizes stay strings until ``parse`` makes Decimals.
"""

from __future__ import annotations

import msgspec


class ServerTime(msgspec.Struct):
    """``GET /fapi/v1/time``: ``{"serverTime": 1499827319559}`` (ms)."""

    serverTime: int  # noqa: N815 (venue field names)


class ErrorBody(msgspec.Struct):
    """``{"code": -2019, "msg": "Margin is insufficient."}``."""

    code: int = 0
    msg: str = ""


class Order(msgspec.Struct):
    """An order object (``POST/PUT/DELETE/GET /fapi/v1/order``, ``openOrders``)."""

    orderId: int  # noqa: N815 (venue field names)
    symbol: str
    status: str
    clientOrderId: str  # noqa: N815
    side: str
    price: str = "0"
    origQty: str = "0"  # noqa: N815
    executedQty: str = "0"  # noqa: N815
    type: str = "LIMIT"
    timeInForce: str = "GTC"  # noqa: N815
    reduceOnly: bool = False  # noqa: N815
    updateTime: int = 0  # noqa: N815
    time: int = 0


class UserTrade(msgspec.Struct):
    """``GET /fapi/v1/userTrades`` entry."""

    symbol: str
    id: int
    orderId: int  # noqa: N815
    side: str
    price: str
    qty: str
    commission: str = "0"
    commissionAsset: str = ""  # noqa: N815
    time: int = 0
    maker: bool = False


class OrderUpdateData(msgspec.Struct):
    """The ``o`` object of ``ORDER_TRADE_UPDATE``."""

    s: str
    c: str
    S: str
    o: str
    f: str
    q: str
    p: str
    x: str
    X: str
    i: int
    l: str = "0"  # noqa: E741 (venue field name)
    z: str = "0"
    L: str = "0"
    N: str | None = None
    n: str | None = None
    T: int = 0
    t: int = 0
    m: bool = False
    R: bool = False


class UserEvent(msgspec.Struct):
    """A user-data stream event: ``ORDER_TRADE_UPDATE`` (``o``: :class:`OrderUpdateData`),
    ``ACCOUNT_UPDATE``, ``ALGO_UPDATE``, ``listenKeyExpired``... (``o`` is decoded per kind)."""

    e: str = ""
    E: int = 0
    T: int = 0
    o: msgspec.Raw = msgspec.Raw(b"")
    stream: str | None = None
    data: msgspec.Raw = msgspec.Raw(b"")


class Filter(msgspec.Struct):
    """One entry of ``symbols[].filters``."""

    filterType: str  # noqa: N815
    tickSize: str | None = None  # noqa: N815
    stepSize: str | None = None  # noqa: N815
    minQty: str | None = None  # noqa: N815
    notional: str | None = None


class SymbolInfo(msgspec.Struct):
    """One ``exchangeInfo.symbols`` entry."""

    symbol: str
    status: str = "TRADING"
    baseAsset: str = ""  # noqa: N815
    quoteAsset: str = ""  # noqa: N815
    marginAsset: str = ""  # noqa: N815
    contractType: str = ""  # noqa: N815
    filters: list[Filter] = []


class RateLimitRule(msgspec.Struct):
    """One ``exchangeInfo.rateLimits`` entry."""

    rateLimitType: str  # noqa: N815
    interval: str
    intervalNum: int  # noqa: N815
    limit: int


class ExchangeInfo(msgspec.Struct):
    """``GET /fapi/v1/exchangeInfo``."""

    symbols: list[SymbolInfo]
    rateLimits: list[RateLimitRule] = []  # noqa: N815


class Balance(msgspec.Struct):
    """``GET /fapi/v2/balance`` entry."""

    asset: str
    balance: str
    availableBalance: str  # noqa: N815
    accountAlias: str = ""  # noqa: N815


class PositionRisk(msgspec.Struct):
    """``GET /fapi/v2/positionRisk`` entry."""

    symbol: str
    positionAmt: str  # noqa: N815
    positionSide: str = "BOTH"  # noqa: N815


class PremiumIndex(msgspec.Struct):
    """``GET /fapi/v1/premiumIndex?symbol=``."""

    symbol: str
    lastFundingRate: str  # noqa: N815
    nextFundingTime: int  # noqa: N815
    markPrice: str = ""  # noqa: N815


class ListenKey(msgspec.Struct):
    """``POST /fapi/v1/listenKey``."""

    listenKey: str  # noqa: N815
