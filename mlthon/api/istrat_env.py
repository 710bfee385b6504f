"""The trading environment as a strategy sees it: :class:`IStratEnv`.

The env is handed to the strategy in ``IStrategy.on_framework_connected(env)``. Every method returns
at once; answers come back later as strategy callbacks, from the same reactor.

Errors: a call with a bad argument (wrong type, a float where an exact value is needed, NaN, a
non-positive quantity, an unknown exchange or instrument, a price off the tick, a malformed time)
raises :class:`~mlthon.basics.InvalidArgument` (a ``ValueError``; its subclass
:class:`~mlthon.basics.InvalidArgumentType` is also a ``TypeError``) *at once*, naming the parameter
and the value, and nothing is sent: these are programming errors, best caught where they are made.
Refusals that depend on the state of the system (the strategy is stopped or not logged in, the
gateway is not ready, the exchange refuses) come back as reject callbacks with a
:class:`~mlthon.basics.GtwRejectCode` and a reason.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, Protocol

from mlthon.api.portfolio import PortfolioView
from mlthon.basics.instrument import Instrument
from mlthon.basics.mlt_enum import (
    TIF,
    Exchange,
    ExecInstructions,
    MDSub,
    OrderType,
    Side,
    TradingState,
)
from mlthon.basics.mlt_enum import TriggerDirection as TriggerDirection
from mlthon.basics.values import Price, Qty

__all__ = ["BookView", "IStratEnv", "MDSub"]

PriceLike = Price | str | Any
QtyLike = Qty | str | Any


class BookView(Protocol):
    """A read-only view of the env's copy of one subscribed book."""

    @property
    def valid(self) -> bool:
        """True while the book can be trusted: after a snapshot, before any gap or disconnect, and
        not while its feed is silent (``Stale``: the last levels are kept, but may be old). An
        invalid book shows no levels (no best bid or ask, an empty top) until its next snapshot
        starts, except a ``Stale`` one."""
        ...

    def best_bid(self) -> tuple[Price, Qty] | None:
        """Best bid price and quantity, or None if the side is empty."""
        ...

    def best_ask(self) -> tuple[Price, Qty] | None:
        """Best ask price and quantity, or None if the side is empty."""
        ...

    def top(self, n: int) -> tuple[list[tuple[Price, Qty]], list[tuple[Price, Qty]]]:
        """The best ``n`` levels of each side, best first: ``(bids, asks)``."""
        ...


class IStratEnv(ABC):
    """The strategy's only way to act on the world."""

    # --- framework -----------------------------------------------------------------------------

    @abstractmethod
    def login(self, strat_name: str) -> None:
        """Log into the framework as ``strat_name`` (letters, digits, ``_ . -``). Required in
        ``on_framework_connected``; the system answers with ``on_start``, ``on_instruments`` and
        ``on_strat_params_update``."""

    @abstractmethod
    def send_stop_ack(self) -> None:
        """Tell the system the strategy has finished stopping (after ``on_stop``). From then on
        requests are refused with ``StrategyStopped`` until the next ``on_start``."""

    @abstractmethod
    def publish_telegram(self, msg: str, *, priority: int = 2) -> None:
        """Send ``msg`` to the strategy's Telegram chat. Returns at once; delivery is queued
        outside the strategy's reactor and survives Telegram outages. ``priority``: 0 for
        errors and kills (sent first), 1 for fills, 2 for status and information."""

    @abstractmethod
    def add_cmd_hook(
        self,
        cmd_name_str: str,
        callback_func: Callable[[list[str]], Any],
        *,
        help: str | None = None,
        dangerous: bool = False,
    ) -> None:
        """Run ``callback_func(params)`` whenever command ``cmd_name_str`` arrives (from
        ``mlthon cmd``, Telegram...). Names are case-insensitive; ``params`` is the list of the
        command's words after its name. ``help`` (default: the first line of the callback's
        docstring) is shown by ``/help``; ``dangerous`` commands (flatten, cancel-all) need a
        confirmation in Telegram. The callback's return value, if any, is the command's answer.
        Registering a name again replaces the callback."""

    # --- timers --------------------------------------------------------------------------------

    @abstractmethod
    def setup_timer(self, duration_ms: int, callback_func: Callable[[], Any]) -> int:
        """Call ``callback_func()`` in ``duration_ms`` milliseconds (on the env's clock: simulated
        time in a backtest), and again every ``duration_ms`` for as long as it returns True.
        Returns a timer id for :meth:`cancel_timer`."""

    @abstractmethod
    def setup_daily_callback(self, hh_mm_ss: str, callback_func: Callable[[], Any]) -> int:
        """Call ``callback_func()`` every day at ``hh_mm_ss`` ('HH:mm:ss', 24 h) in the system's
        time zone, for as long as it returns True. Correct across daylight-saving changes.
        Returns a timer id for :meth:`cancel_timer`."""

    @abstractmethod
    def cancel_timer(self, timer_id: int) -> bool:
        """Cancel a timer or daily callback; True if it was still pending."""

    @abstractmethod
    def get_time_ns(self) -> int:
        """The current time on the env's clock (simulated in backtests), ns since the epoch."""

    # --- risk (an mlthon extension; docs/risk.md) -------------------------------------------------

    @property
    def risk_state(self) -> TradingState:
        """The trading state the env's risk layer holds the strategy in: ``Active`` (every order
        inside the limits of its ``[risk]`` table goes), ``ReduceOnly`` (only orders that shrink
        the position) or ``Halted`` (no new order or modify; cancels go). Changes are told by
        ``on_risk_state``. A refusal of the risk layer is a reject with
        ``GtwRejectCode.RiskLimit`` and a reason naming the limit and the figures. Read-only:
        the limits and the state are the operator's. ``Active`` here by default."""
        return TradingState.Active

    # --- the portfolio (an mlthon extension; docs/portfolio.md) -----------------------------------

    @property
    @abstractmethod
    def portfolio(self) -> PortfolioView:
        """The strategy's positions (quantity, average price, realised and unrealised PnL, fees,
        open orders) per instrument and its balances, kept by the env from the strategy's own
        fills and the gateways' answers: read at once, nothing is sent. A gateway's
        ``PositionInfo`` that differs from the fills is an accounting alert."""

    # --- reference data ------------------------------------------------------------------------

    @abstractmethod
    def get_instruments(self) -> list[Instrument]:
        """Every instrument the strategy was given (empty before ``on_instruments``)."""

    @abstractmethod
    def get_instrument(self, exchange: Exchange, instrument_id: int) -> Instrument:
        """The instrument ``instrument_id`` of ``exchange``; raises InvalidArgument if unknown."""

    # --- market data ---------------------------------------------------------------------------

    @abstractmethod
    def subscribe(self, exchange: Exchange, instrument_id: int, md_sub: MDSub) -> None:
        """Receive ``md_sub`` market data for an instrument. The feed starts each book with
        ``SnapshotStart``, the snapshot, ``SnapshotEnd`` for that instrument. Subscribing twice is
        harmless."""

    @abstractmethod
    def unsubscribe(self, exchange: Exchange, instrument_id: int, md_sub: MDSub) -> None:
        """Stop receiving ``md_sub`` market data for an instrument."""

    @abstractmethod
    def get_book(self, exchange: Exchange, instrument_id: int) -> BookView | None:
        """The env's current copy of a subscribed book (any book subscription), or None."""

    # --- order entry ---------------------------------------------------------------------------

    @abstractmethod
    def send_new_order(
        self,
        client_id: int | None,
        exchange: Exchange,
        instrument_id: int,
        side: Side,
        price: PriceLike,
        qty: QtyLike,
        exec_instr: ExecInstructions = ExecInstructions.Unset,
        ord_type: OrderType = OrderType.Limit,
        time_in_force: TIF = TIF.GTC,
        close_position: bool = False,
        *,
        stop_price: PriceLike | None = None,
        trigger_direction: TriggerDirection = TriggerDirection.Unset,
    ) -> int:
        """Send a new order and return its client order id (an int; callbacks carry it as a
        string). ``client_id`` None lets the env choose a unique id; an explicit id must not have
        been used before. ``price`` and ``qty`` are exact values: ``Price``/``Qty``, ``Decimal``
        or ``str`` (never float); ``price`` is ignored for market orders (pass ``'0'``).
        ``close_position`` makes the order reduce-only. Stop orders (``StopLimit``/``StopMarket``)
        need ``stop_price`` and ``trigger_direction``.

        Answers: ``on_new_order_ack`` or ``on_new_order_reject``; then ``on_order_execution`` per
        fill and ``on_order_cancelled`` if it leaves the book unfilled.
        """

    @abstractmethod
    def send_modify_order(
        self,
        exchange: Exchange,
        client_ord_id: int | str,
        new_price: PriceLike | None,
        new_qty: QtyLike | None,
    ) -> None:
        """Change an order's price and/or quantity (None keeps it; at least one is needed).
        Answers: ``on_modify_order_ack`` / ``on_modify_order_reject`` (or ``on_unsupported_op``).
        """

    @abstractmethod
    def send_cancel_order(
        self, exchange: Exchange, instrument_id: int, client_ord_id: int | str
    ) -> None:
        """Cancel one order. Answers: ``on_cancel_order_ack`` then ``on_order_cancelled``, or
        ``on_cancel_order_reject``."""

    @abstractmethod
    def send_cancel_all(self, exchange: Exchange, instrument_id: int | None) -> None:
        """Cancel every order of the strategy on ``exchange`` for ``instrument_id`` (None: every
        instrument). Answers: ``on_cancel_all_ack`` and one ``on_order_cancelled`` per order, or
        ``on_cancel_all_reject``."""

    # --- queries -------------------------------------------------------------------------------

    @abstractmethod
    def fetch_account_info(self, exchange: Exchange) -> None:
        """Ask for account information. Answer: ``on_account_info``."""

    @abstractmethod
    def fetch_wallet_info(self, exchange: Exchange, coin: str) -> None:
        """Ask for a coin's balance. Answer: ``on_wallet_info``."""

    @abstractmethod
    def fetch_position_info(self, exchange: Exchange, instrument_id: int) -> None:
        """Ask for the position in a derivative. Answer: ``on_position_info``."""

    @abstractmethod
    def fetch_funding_info(self, exchange: Exchange, instrument_id: int) -> None:
        """Ask for a perpetual's funding rate. Answer: ``on_funding_info``."""

    @abstractmethod
    def fetch_order_status(
        self, exchange: Exchange, instrument_id: int, client_ord_id: int | str
    ) -> None:
        """Ask for one order's state. Answer: ``on_order_status`` (or ``on_request_reject``)."""

    @abstractmethod
    def fetch_orders_info(self, exchange: Exchange, instrument_id: int | None = None) -> None:
        """Ask for the open orders (of one instrument, or all). Answer: ``on_orders_info``."""
