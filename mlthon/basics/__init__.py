"""Pure values of the strategy API: enums, exact Price/Qty, instruments, orders and errors.

Nothing here does I/O or touches asyncio.
"""

from mlthon.basics.errors import (
    BadMarketData,
    BusDisconnected,
    BusError,
    BusRefused,
    ConfigError,
    FeedError,
    GatewayError,
    InvalidArgument,
    InvalidArgumentType,
    MalformedMessage,
    MlthonError,
    OrderRejected,
    RateLimited,
    StrategyError,
)
from mlthon.basics.instrument import Instrument
from mlthon.basics.mlt_enum import (
    TIF,
    CancelCode,
    Environment,
    Exchange,
    ExecInstructions,
    FeedHandlerStatus,
    GtwRejectCode,
    GtwStatus,
    InstrumentKind,
    MDSub,
    MltEnum,
    OrderStatus,
    OrderType,
    RuntimeMode,
    Side,
    TriggerDirection,
)
from mlthon.basics.order import Order
from mlthon.basics.values import Price, Qty

__all__ = [
    "TIF",
    "BadMarketData",
    "BusDisconnected",
    "BusError",
    "BusRefused",
    "CancelCode",
    "ConfigError",
    "Environment",
    "Exchange",
    "ExecInstructions",
    "FeedError",
    "FeedHandlerStatus",
    "GatewayError",
    "GtwRejectCode",
    "GtwStatus",
    "Instrument",
    "InstrumentKind",
    "InvalidArgument",
    "InvalidArgumentType",
    "MDSub",
    "MalformedMessage",
    "MltEnum",
    "MlthonError",
    "Order",
    "OrderRejected",
    "OrderStatus",
    "OrderType",
    "Price",
    "Qty",
    "RateLimited",
    "RuntimeMode",
    "Side",
    "StrategyError",
    "TriggerDirection",
]
