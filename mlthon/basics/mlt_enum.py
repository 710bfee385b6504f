"""Every enumeration of the strategy API.

All of them derive from :class:`MltEnum`, so a strategy can test ``isinstance(x, MltEnum)`` and
every member has a stable integer value that travels on the wire. Member names follow the MLThon
reference (CamelCase, e.g. ``Side.Buy``), which is why this module is exempt from the PEP 8 naming
rule.
"""

from __future__ import annotations

from enum import Enum
from typing import Any, Self


class MltEnum(Enum):
    """Base of every mlthon enumeration: integer values, looked up by value or by name."""

    # Members are singletons compared by identity: hashed by identity too, in C (``Enum``'s own
    # hash is a Python function hashing the name, paid on every dict key and tuple key holding
    # a member: ``(exchange, instrument_id)`` on the market-data path).
    __hash__ = object.__hash__

    def __init__(self, *args: object) -> None:
        # ``name`` and ``value`` as the member's own attributes, read in C (see _OwnAttribute).
        vars(self)["name"] = self._name_
        vars(self)["value"] = self._value_

    def __setattr__(self, key: str, value: object) -> None:
        if key in ("name", "value"):
            raise AttributeError(f"{key} of {self!r} cannot be set")
        super().__setattr__(key, value)

    @classmethod
    def from_name(cls, name: str) -> Self:
        """Return the member called ``name``, ignoring case.

        Raises:
            ValueError: no member has that name; the message lists the valid names.
        """
        wanted = name.strip().lower()
        for member in cls:
            if member.name.lower() == wanted:
                return member
        valid = ", ".join(m.name for m in cls)
        raise ValueError(f"{cls.__name__} has no member {name!r}; valid: {valid}")

    def __str__(self) -> str:
        return self.name


class _OwnAttribute:
    """Stands in for Enum's ``name`` and ``value`` on :class:`MltEnum`: a descriptor that only
    reads (so the member's own attribute, set in ``__init__``, is found first, in C). Enum's
    own are Python functions, paid on every ``side.name`` (a topic, a log line, a table row)."""

    def __init__(self, attr: str) -> None:
        self.attr = attr

    def __get__(self, member: object, owner: type | None = None) -> Any:
        if member is None:
            raise AttributeError(self.attr.strip("_"))
        return getattr(member, self.attr)


# Set after the class is made: in its body they would be taken for members by some tools.
type.__setattr__(MltEnum, "name", _OwnAttribute("_name_"))
type.__setattr__(MltEnum, "value", _OwnAttribute("_value_"))


class Exchange(MltEnum):
    """A trading venue. ``Sim`` is the simulated exchange of mlthon itself."""

    Unset = 0
    Sim = 1
    BinanceUsdm = 2
    BinanceCoinm = 3
    BinanceSpot = 4
    Bybit = 5
    Bitfinex = 6
    Bitmex = 7
    Deribit = 8
    Coinbase = 9
    Huobi = 10
    Hyperliquid = 11
    Blade = 12
    Blockchain = 13
    Cme = 14


class Side(MltEnum):
    """Order side, or the taker side of a public trade (``Unset`` when the venue does not say)."""

    Unset = 0
    Buy = 1
    Sell = 2

    @property
    def opposite(self) -> Side:
        """The other side (``Unset`` stays ``Unset``)."""
        if self is Side.Buy:
            return Side.Sell
        if self is Side.Sell:
            return Side.Buy
        return Side.Unset


class OrderType(MltEnum):
    """How an order is priced."""

    Unset = 0
    Limit = 1
    Market = 2
    StopLimit = 3
    StopMarket = 4


#: The order types that wait for a trigger price.
STOP_ORDER_TYPES = frozenset({OrderType.StopLimit, OrderType.StopMarket})
#: The order types with no limit price (priced by the market when they execute).
MARKET_ORDER_TYPES = frozenset({OrderType.Market, OrderType.StopMarket})


class TIF(MltEnum):
    """Time in force."""

    Unset = 0
    GTC = 1
    IOC = 2
    FOK = 3


class ExecInstructions(MltEnum):
    """Execution instructions. ``PostOnly`` orders are rejected if they would take liquidity."""

    Unset = 0
    PostOnly = 1


class TriggerDirection(MltEnum):
    """Where a stop order's trigger price lies relative to the market when it is placed."""

    Unset = 0
    Up = 1
    Down = 2


class OrderStatus(MltEnum):
    """Life-cycle state of an order."""

    Unset = 0
    PendingNew = 1
    New = 2
    PartiallyFilled = 3
    Filled = 4
    Cancelled = 5
    Rejected = 6
    Untriggered = 7

    @property
    def is_open(self) -> bool:
        """True while the order can still trade."""
        return self in (
            OrderStatus.PendingNew,
            OrderStatus.New,
            OrderStatus.PartiallyFilled,
            OrderStatus.Untriggered,
        )


class GtwStatus(MltEnum):
    """State of an order-entry gateway, as reported by ``on_gateway_status``."""

    Unset = 0
    ReadyToTrade = 1
    Connecting = 2
    Maintenance = 3


class FeedHandlerStatus(MltEnum):
    """State of a market-data feed, as reported by ``on_feed_handler_status``.

    Extensions of the reference (mlthon's additions):

    * ``BookInvalid``: one instrument's book can no longer be trusted (sequence gap, crossed
      book); a ``SnapshotStart`` / ``SnapshotEnd`` pair for that instrument follows once it has
      been resynchronised.
    * ``Stale``: the whole feed has been silent (no market data, no heartbeat) for longer than
      its heartbeat limit; its books are kept but may be out of date.
    * ``Resumed``: data flow again from a feed that was ``Stale``; for one instrument (a status
      with its id), its book is no longer crossed (after ``BookCrossed``).
    * ``BookCrossed``: one instrument's order-level (L3) book is crossed (best bid at or above
      best ask: an auction or a pre-open, where the venue does not trade continuously). The book
      is kept, valid and updated; ``Resumed`` for that instrument says when it uncrosses (a
      ``SnapshotStart``, ``BookInvalid`` or ``Disconnected`` ends it too). A price-level book
      that crosses is ``BookInvalid`` instead.
    """

    Unset = 0
    SnapshotStart = 1
    SnapshotEnd = 2
    Disconnected = 3
    BookInvalid = 4
    Stale = 5
    Resumed = 6
    BookCrossed = 7


class GtwRejectCode(MltEnum):
    """Why a gateway (or the env, before sending) refused a request."""

    Unset = 0
    GtwNotReady = 1000
    UnknownInstrument = 1001
    InvalidPrice = 1002
    InvalidQty = 1003
    InsufficientBalance = 1004
    UnknownOrder = 1005
    PostOnlyWouldCross = 1006
    RateLimitExceeded = 1007
    DuplicateClientId = 1008
    StrategyStopped = 1009
    InvalidRequest = 1010
    ExchangeError = 1011
    Timeout = 1012
    NotLoggedIn = 1013
    ReduceOnlyWouldIncrease = 1014
    FokNotFilled = 1015
    UnsupportedOperation = 1016
    # The request waited longer than the gateway's time-to-live (sent at ``ts``) before it
    # could be handled: it was not executed.
    RequestExpired = 1017
    # The gateway is past its capacity and sheds load rather than queueing: nothing executed.
    GatewayOverloaded = 1018
    # The venue refused the request's timestamp (Binance -1021, Bybit 10002): the host's clock and
    # the venue's disagree; the gateway measures the offset again (not ReadyToTrade until then).
    ClockOffset = 1019
    # The env's risk layer refused the request before it was sent (``docs/risk.md``): a limit of
    # the strategy's ``[risk]`` table, or its trading state; the reason names the limit and the
    # figures ("max_order_qty 0.5 < 0.8 BTCUSDT").
    RiskLimit = 1020


class TradingState(MltEnum):
    """What the env's risk layer lets a strategy send (``docs/risk.md``; an mlthon extension).

    ``Active``: every order inside the limits. ``ReduceOnly``: only orders that shrink the
    position. ``Halted``: nothing (cancels still pass); the strategy's open orders were cancelled.
    """

    Active = 1
    ReduceOnly = 2
    Halted = 3


class CancelCode(MltEnum):
    """Why an order was cancelled."""

    Unset = 0
    CanceledByUser = 1
    SelfTradePrevention = 2
    ImmediateOrCancel = 3
    CancelAll = 4
    ExchangeCancel = 5
    StopEscalation = 6


class InstrumentKind(MltEnum):
    """Spot pair, or a perpetual/future margined in the quote (linear) or the base (inverse)."""

    Spot = 0
    Linear = 1
    Inverse = 2


class MDSub(MltEnum):
    """A market-data subscription kind, for ``IStratEnv.subscribe``."""

    OrderBook = 0
    LevelBook = 1
    PriceLevelBook = 2
    BBO = 3
    PublicTrades = 4
    Funding = 5


class RuntimeMode(MltEnum):
    """Where a strategy runs."""

    Backtest = 0
    Paper = 1
    Live = 2
    LiveTestnet = 3


class Environment(MltEnum):
    """Which of a venue's environments a live gateway connects to."""

    Testnet = 0
    Demo = 1
    Mainnet = 2
