"""Bybit v5 order-entry payloads as msgspec structs (unknown fields allowed).

Field names are Bybit's; prices and sizes stay strings until ``parse`` makes Decimals.
"""

from __future__ import annotations

import msgspec


class Envelope(msgspec.Struct):
    """Every REST answer: ``retCode`` (0: success, even with HTTP 200 otherwise an error)."""

    retCode: int  # noqa: N815 (venue field names)
    retMsg: str = ""  # noqa: N815
    result: msgspec.Raw = msgspec.Raw(b"{}")
    time: int = 0


class ServerTime(msgspec.Struct):
    """``GET /v5/market/time`` result: ``timeSecond`` and ``timeNano`` (strings)."""

    timeSecond: str = "0"  # noqa: N815
    timeNano: str = "0"  # noqa: N815


class OrderAck(msgspec.Struct):
    """``/v5/order/create|amend|cancel`` result."""

    orderId: str = ""  # noqa: N815
    orderLinkId: str = ""  # noqa: N815


class OrderRecord(msgspec.Struct):
    """An order (``/v5/order/realtime``, ``/history`` and the ``order`` topic)."""

    orderId: str  # noqa: N815
    symbol: str
    side: str
    orderStatus: str  # noqa: N815
    orderLinkId: str = ""  # noqa: N815
    price: str = "0"
    qty: str = "0"
    cumExecQty: str = "0"  # noqa: N815
    orderType: str = "Limit"  # noqa: N815
    timeInForce: str = "GTC"  # noqa: N815
    rejectReason: str = ""  # noqa: N815
    cancelType: str = ""  # noqa: N815
    updatedTime: str = "0"  # noqa: N815


class Execution(msgspec.Struct):
    """An execution (``/v5/execution/list`` and the ``execution`` topic)."""

    symbol: str
    orderId: str  # noqa: N815
    execId: str  # noqa: N815
    execPrice: str  # noqa: N815
    execQty: str  # noqa: N815
    side: str
    orderLinkId: str = ""  # noqa: N815
    execType: str = "Trade"  # noqa: N815
    execFee: str = "0"  # noqa: N815
    feeCurrency: str = ""  # noqa: N815
    isMaker: bool = False  # noqa: N815
    execTime: str = "0"  # noqa: N815
    leavesQty: str = "0"  # noqa: N815
    orderQty: str = "0"  # noqa: N815


class PagedList(msgspec.Struct):
    """A paginated ``result``: ``list`` and ``nextPageCursor``."""

    list: msgspec.Raw = msgspec.Raw(b"[]")
    nextPageCursor: str | None = ""  # noqa: N815 (null on some endpoints)


class PriceFilter(msgspec.Struct):
    tickSize: str  # noqa: N815


class LotSizeFilter(msgspec.Struct):
    qtyStep: str  # noqa: N815
    minOrderQty: str = "0"  # noqa: N815
    minNotionalValue: str = "0"  # noqa: N815


class InstrumentInfo(msgspec.Struct):
    """One ``/v5/market/instruments-info`` entry."""

    symbol: str
    priceFilter: PriceFilter  # noqa: N815
    lotSizeFilter: LotSizeFilter  # noqa: N815
    status: str = "Trading"
    settleCoin: str = ""  # noqa: N815


class CoinBalance(msgspec.Struct):
    coin: str
    walletBalance: str = "0"  # noqa: N815
    availableToWithdraw: str = ""  # noqa: N815
    locked: str = "0"


class WalletAccount(msgspec.Struct):
    """One ``/v5/account/wallet-balance`` account."""

    accountType: str = ""  # noqa: N815
    coin: list[CoinBalance] = []


class Position(msgspec.Struct):
    """One ``/v5/position/list`` entry."""

    symbol: str
    side: str = ""
    size: str = "0"


class Ticker(msgspec.Struct):
    """One ``/v5/market/tickers`` entry (linear)."""

    symbol: str
    fundingRate: str = "0"  # noqa: N815
    nextFundingTime: str = "0"  # noqa: N815


class ApiKeyInfo(msgspec.Struct):
    """``/v5/user/query-api``."""

    userID: int = 0  # noqa: N815


class WsReply(msgspec.Struct):
    """A private-stream reply (``auth``, ``subscribe``, ``pong``) or a topic push."""

    op: str = ""
    success: bool | None = None
    retCode: int = 0  # noqa: N815
    retMsg: str = ""  # noqa: N815
    ret_msg: str = ""
    topic: str = ""
    data: msgspec.Raw = msgspec.Raw(b"[]")
