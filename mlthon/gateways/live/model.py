"""Venue-neutral values and the venue seam of the live gateways.

A venue folder implements :class:`VenueApi` (signed REST and the private stream) and turns its
payloads into the values below with its pure ``parse`` functions; :class:`LiveGateway` does the
rest (book-keeping, reports, de-duplication, reconciliation, status).

Errors a :class:`VenueApi` raises (all :class:`~mlthon.basics.errors.GatewayError`, defined in
:mod:`mlthon.venues.errors` and re-exported here)::

    GatewayError
    ├── VenueRejected      the venue refused the request (code, venue_code, reason, http_status)
    ├── RateLimited        a budget is spent or the IP is banned (retry_after_s)
    ├── VenueTimeout       no answer in time: the request's outcome is unknown
    └── VenueUnavailable   connection failure, 5xx, maintenance (maintenance flag)
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from decimal import Decimal

import attrs

from mlthon.basics.instrument import Instrument
from mlthon.basics.mlt_enum import (
    TIF,
    CancelCode,
    ExecInstructions,
    GtwRejectCode,
    OrderStatus,
    OrderType,
    Side,
)
from mlthon.basics.order_state import OrderLifecycle
from mlthon.gateways.live.budget import RateBudgets
from mlthon.gateways.live.venue_clock import ClockRejected, VenueClock
from mlthon.venues.errors import VenueRejected, VenueTimeout, VenueUnavailable


@attrs.frozen
class RateUsage:
    """One budget's usage as the venue reported it in response headers.

    Attributes:
        limit: the budget.
        used: what is spent.
        reset_ts: when the window resets (ns).
        name: which budget (``weight-1m``, ``orders-1m``, an endpoint...).
    """

    limit: int
    used: int
    reset_ts: int
    name: str = ""


@attrs.frozen
class VenueOrder:
    """An order as the venue reports it (REST answer, open-orders list, stream update).

    Attributes:
        venue_cid: the client order id sent to the venue.
        exch_id: the venue's order id.
        symbol: the venue's symbol.
        status: its state, mapped to ours (``Cancelled`` covers expired orders).
        price / qty / filled: the order's price, size and cumulative filled size.
        reason: the venue's text for a cancel or reject, if any.
        cancel_code_hint: ``"ioc"`` if the venue expired it as IOC/FOK/post-only, else "".
        ts: venue time (ns).
        reject_code: set when a cancellation before any ack is really a rejection (Bybit
            cancels a crossing post-only order after accepting it): the gateway then answers
            ``NewOrderReject`` with this code.
    """

    venue_cid: str
    exch_id: str
    symbol: str
    status: OrderStatus
    price: Decimal
    qty: Decimal
    filled: Decimal
    reason: str = ""
    cancel_code_hint: str = ""
    ts: int = 0
    reject_code: GtwRejectCode | None = None


@attrs.frozen
class Fill:
    """One execution of one of our orders.

    Attributes:
        venue_cid / exch_id / symbol: which order.
        exec_id: the venue's unique execution (trade) id, used to de-duplicate.
        side: the order's side.
        price / qty: the fill.
        fee / fee_coin: the commission.
        maker: True for a passive fill.
        ts: venue time (ns).
    """

    venue_cid: str
    exch_id: str
    symbol: str
    exec_id: str
    side: Side
    price: Decimal
    qty: Decimal
    fee: Decimal
    fee_coin: str
    maker: bool
    ts: int


@attrs.frozen
class OrderEvent:
    """A private-stream order update: the order's state and, for an execution, the fill."""

    order: VenueOrder
    fill: Fill | None = None


@attrs.frozen
class StatusEvent:
    """A private-stream notice that changes the gateway's status (maintenance...)."""

    maintenance: bool
    detail: str


StreamEvent = OrderEvent | StatusEvent

__all__ = [
    "ClockRejected",
    "Fill",
    "LiveOrder",
    "OrderEvent",
    "RateUsage",
    "StatusEvent",
    "StreamEvent",
    "VenueApi",
    "VenueOrder",
    "VenueRejected",
    "VenueTimeout",
    "VenueUnavailable",
]


@attrs.define(kw_only=True, eq=False)
class LiveOrder(OrderLifecycle[Decimal]):
    """The gateway's view of one order (owned by :class:`LiveGateway`).

    Its status, size and filled quantity are those of
    :class:`~mlthon.basics.order_state.OrderLifecycle` and change only through its transitions
    (a status never goes back; a cancellation that the venue reports with more filled than the
    fills seen so far waits for them).

    Attributes:
        strat / cl_id: who placed it and its id for that strategy.
        venue_cid: the client order id sent to the venue.
        instrument: the instrument.
        side / price / qty / ord_type / tif / exec_instr / reduce_only / stop_price: the request.
        exch_id: the venue's id once known.
        filled: cumulative filled size (of the fills reported).
        status: its state.
        acked: a NewOrderAck was sent.
        cancel_pending: a cancel request of ours is in flight (``"user"`` or ``"all"``).
        cancel_seen: the stream reported the cancellation while ``cancel_pending`` was set.
        venue_filled: the most the venue said had filled (order views: REST, stream).
        closing: the venue cancelled the order; its ``OrderCancelled`` (unsolicited, code,
            reason) waits for the final figure or the fills it announced.
    """

    strat: str
    cl_id: str
    venue_cid: str
    instrument: Instrument
    side: Side
    price: Decimal
    qty: Decimal
    ord_type: OrderType
    tif: TIF
    exec_instr: ExecInstructions
    reduce_only: bool = False
    stop_price: Decimal | None = None
    exch_id: str = ""
    filled: Decimal = Decimal(0)
    status: OrderStatus = OrderStatus.PendingNew
    acked: bool = False
    cancel_pending: str = ""
    cancel_seen: bool = False
    venue_filled: Decimal = Decimal(0)
    closing: tuple[bool, CancelCode, str] | None = None
    created_ts: int = 0
    lock: asyncio.Lock = attrs.field(factory=asyncio.Lock, repr=False)

    @property
    def closed(self) -> bool:
        """It can no longer trade (filled, cancelled or rejected)."""
        return not self.is_open


class VenueApi(ABC):
    """The I/O seam of one venue: every method is a signed request or the private stream.

    Every method raises the errors of this module's tree (and nothing from aiohttp).
    ``last_rate`` holds the usage reported by the latest REST answer (None if it had none).

    Attributes:
        clock: the venue's clock (local time + measured offset) that signs requests.
        budgets: the local rate budgets every request is taken from before it is sent
            (:class:`~mlthon.gateways.live.budget.BudgetExhausted` when one is short).
        on_clock_reject: called with the error when the venue refuses a request's timestamp
            (before the error is raised to the caller); the gateway sets it.
    """

    last_rate: RateUsage | None = None
    clock: VenueClock
    budgets: RateBudgets
    on_clock_reject: Callable[[ClockRejected], None] | None = None

    @abstractmethod
    async def server_time_ms(self) -> int:
        """The venue's clock (ms since the epoch), from its time endpoint."""

    async def sync_clock(self) -> int:
        """Measure the venue's clock offset (:meth:`server_time_ms` around the local clock) and
        sign requests with it from now on; returns the offset in ms."""
        sent = self.clock.local_ns()
        server = await self.server_time_ms()
        return self.clock.update(server, sent, self.clock.local_ns())

    def clock_rejected(self, exc: ClockRejected) -> None:
        """Tell the gateway (``on_clock_reject``) that the venue refused a timestamp."""
        if self.on_clock_reject is not None:
            self.on_clock_reject(exc)

    @abstractmethod
    async def open(self) -> None:
        """Open the HTTP session."""

    @abstractmethod
    async def close(self) -> None:
        """Close the HTTP session (and anything else open)."""

    @abstractmethod
    async def load_instruments(self, wanted: list[Instrument]) -> list[Instrument]:
        """The ``wanted`` instruments with the venue's current grids (ids kept); those the
        venue does not list are left out."""

    @abstractmethod
    async def place(self, order: LiveOrder) -> VenueOrder:
        """Send a new order."""

    @abstractmethod
    async def amend(self, order: LiveOrder, price: Decimal, qty: Decimal) -> VenueOrder:
        """Change an open order's price and size (raise ``VenueRejected`` with
        ``UnsupportedOperation`` if the venue cannot)."""

    @abstractmethod
    async def cancel(self, order: LiveOrder) -> VenueOrder | None:
        """Cancel an order; the venue's final view of it if the answer carries one."""

    @abstractmethod
    async def query_order(self, order: LiveOrder) -> VenueOrder | None:
        """The venue's view of an order (None if it does not know it)."""

    @abstractmethod
    async def open_orders(self, instruments: list[Instrument]) -> list[VenueOrder]:
        """Every open order on the account for these instruments."""

    @abstractmethod
    async def order_fills(self, order: LiveOrder) -> list[Fill]:
        """Every execution of one order, oldest first."""

    @abstractmethod
    async def account_id(self) -> str:
        """The account's user id (or another stable identifier); also the maintenance probe."""

    @abstractmethod
    async def wallet(self, coin: str) -> tuple[Decimal, Decimal]:
        """(total, available) of ``coin``."""

    @abstractmethod
    async def position(self, instrument: Instrument) -> Decimal:
        """The signed position (negative: short)."""

    @abstractmethod
    async def funding(self, instrument: Instrument) -> tuple[Decimal, int]:
        """(current funding rate, next funding time ns)."""

    @abstractmethod
    async def run_private_stream(
        self,
        on_connected: Callable[[], Awaitable[None]],
        on_events: Callable[[list[StreamEvent]], None],
    ) -> None:
        """Connect and authenticate the private stream, await ``on_connected()``, then pass
        every decoded update to ``on_events`` until the connection ends (keep-alive and pings
        included). Returns or raises ``VenueUnavailable`` when the connection is lost."""
