"""The strategy interface: every callback the trading environment calls.

A strategy is a class implementing :class:`IStrategy` (or, more conveniently, deriving from
:class:`Strategy`, whose callbacks all do nothing, and overriding the ones it uses). The env calls
the callbacks from one reactor, one at a time and never concurrently. A callback must not block:
it reacts and returns, and the answers to the requests it makes through :class:`IStratEnv` come
back later as other callbacks.

Start-up order, as in the MLThon reference::

    __init__()
    on_framework_connected(env)     # the strategy must call env.login(name) here
    on_start(params)                # the "start" command, sent by the system after login
    on_instruments(instruments)     # every instrument the strategy may use, at once
    on_strat_params_update(params)  # the strategy's parameters (and again on every update)
    ... market data, order callbacks, timers, command hooks ...
    on_gateway_status / on_feed_handler_status   # only on transitions, never at start-up

Stopping: ``on_stop(params)`` -> the strategy winds down and calls ``env.send_stop_ack()``; after
that the env refuses its requests (``GtwRejectCode.StrategyStopped``) until the next ``on_start``.
Losing the bus calls ``on_framework_disconnected()``; on reconnection the sequence starts again at
``on_framework_connected(env)``.

Timestamps (``recv_ts``, ``exec_ts``, ``engine_ts``, ``reset_ts``, ``next_funding_ts``) are integer
nanoseconds since the Unix epoch. Prices and quantities are exact :class:`Price` / :class:`Qty`.

**Parameter schema (an mlthon extension of the MLThon API).** A strategy may declare its
parameters: a class attribute ``Params``, an ``@attrs.frozen`` class whose fields are the
parameters, each with its type (``bool``, ``int``, ``float``, ``str`` or ``Decimal``), its default
and its bounds, given with :func:`param`::

    @attrs.frozen
    class MarketMakerParams:
        spread_ticks: int = param(4, low=1, high=1000, help="quote this many ticks wide")
        size: Decimal = param(Decimal("0.010"), low=Decimal("0.001"), help="quoted quantity")
        mode: str = param("both", choices=("both", "bid", "ask"))

    class MarketMaker(Strategy):
        Params = MarketMakerParams

The framework then checks the ``[params]`` of the strategy's file, ``--set`` and ``--grid``
words and the ``params`` command (``mlthon params``, Telegram) against it: an unknown name (a
typo such as ``treshold``) is an error naming it and listing the known ones; a value of the wrong
type, not finite or out of bounds is an error; a parameter left out takes its default. The
strategy gets every parameter in ``on_strat_params_update(params)``, a dict (decimals as their
text, as on the wire); ``self.Params(**params)`` makes the typed object. A strategy without
``Params`` keeps the free-form ``[params]`` (a value keeps the type it has in the file).

**Batched book callback (an mlthon extension of the MLThon API).** Besides the per-level
callbacks (``on_add_price_level`` ...), a strategy subscribed to ``PriceLevelBook`` may take each
venue message's level changes in one call, :meth:`IStrategy.on_book_update`, with a list of
:data:`BookChange` tuples ``(action, side, price, qty)``::

    def on_book_update(self, exchange, instrument_id, changes, recv_ts):
        for action, side, price, qty in changes:
            if action is BookAction.Delete:
                ...

It is optional and costs nothing when not implemented: left at :class:`Strategy`'s do-nothing
body, it is never called (nor are the per-level callbacks a strategy leaves at theirs). A strategy
implementing both gets both, the per-level calls of a message first. The book
(``env.get_book``) holds the whole message when it is called.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from decimal import Decimal
from enum import IntEnum
from typing import TYPE_CHECKING, Any, ClassVar

import attrs

from mlthon.basics.instrument import Instrument
from mlthon.basics.mlt_enum import (
    TIF,
    CancelCode,
    Exchange,
    ExecInstructions,
    FeedHandlerStatus,
    GtwRejectCode,
    GtwStatus,
    OrderStatus,
    OrderType,
    Side,
    TradingState,
)
from mlthon.basics.order import Order
from mlthon.basics.values import Price, Qty

if TYPE_CHECKING:
    from mlthon.api.istrat_env import IStratEnv


#: The metadata key under which :func:`param` keeps a parameter's bounds.
PARAM_META = "mlthon.param"


class BookAction(IntEnum):
    """What happened to a price level, in a :data:`BookChange` (the values of the bus's book
    actions)."""

    Add = 0
    Modify = 1
    Delete = 2


#: One level change of :meth:`IStrategy.on_book_update`: ``(action, side, price, qty)``; ``qty``
#: is the level's new total (zero for ``BookAction.Delete``).
BookChange = tuple[BookAction, Side, Price, Qty]


@attrs.frozen
class ParamBounds:
    """What :func:`param` declares besides the default (kept in the attrs field's metadata).

    Attributes:
        low: the smallest value allowed (None: no bound); numbers and decimals only.
        high: the largest value allowed (None: no bound).
        choices: the values allowed (None: any); texts only.
        help: one line shown by ``mlthon params`` errors and listings.
    """

    low: int | float | Decimal | None = None
    high: int | float | Decimal | None = None
    choices: tuple[str, ...] | None = None
    help: str = ""

    def problem(self, value: object) -> str | None:
        """Why ``value`` is out of these bounds, or None."""
        if self.choices is not None and value not in self.choices:
            return f"must be one of {list(self.choices)}, got {value!r}"
        if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
            if self.low is not None and value < self.low:
                return f"must be >= {self.low}, got {value}"
            if self.high is not None and value > self.high:
                return f"must be <= {self.high}, got {value}"
        return None


def _check_bounds(instance: Any, attribute: Any, value: Any) -> None:
    bounds = attribute.metadata.get(PARAM_META)
    why = bounds.problem(value) if bounds is not None else None
    if why is not None:
        raise ValueError(f"{attribute.name} {why}")


def _to_decimal(value: Any) -> Any:
    # The wire carries decimals as text; a bad text is left for the schema check to name.
    if isinstance(value, str | int) and not isinstance(value, bool):
        try:
            return Decimal(value)
        except ArithmeticError:
            return value
    return value


def _to_float(value: Any) -> Any:
    return float(value) if isinstance(value, int) and not isinstance(value, bool) else value


def param(
    default: Any,
    *,
    low: int | float | Decimal | None = None,
    high: int | float | Decimal | None = None,
    choices: Sequence[str] | None = None,
    help: str = "",
) -> Any:
    """One parameter of a strategy's ``Params`` class: its default and bounds (inclusive).

    An mlthon extension of the MLThon API (see the module docstring). A ``Decimal`` parameter
    also takes its text (``"0.010"``), a ``float`` one an integer, so ``Params(**params)`` works
    on the dict ``on_strat_params_update`` receives.

    Args:
        default: the value when the config says nothing; its type is the field's annotation.
        low: the smallest value allowed (numbers and decimals).
        high: the largest value allowed.
        choices: the values allowed (texts).
        help: what the parameter does, in one line.
    """
    bounds = ParamBounds(low, high, tuple(choices) if choices is not None else None, help)
    converter = None
    if isinstance(default, Decimal):
        converter = _to_decimal
    elif isinstance(default, float):
        converter = _to_float
    return attrs.field(
        default=default,
        validator=_check_bounds,
        converter=converter,
        metadata={PARAM_META: bounds},
    )


class IStrategy(ABC):
    """The interface of a strategy runnable in the trading environment.

    Attributes:
        Params: the strategy's parameter schema (an mlthon extension; see the module docstring),
            or None for free-form parameters.
    """

    Params: ClassVar[type | None] = None

    # --- framework and lifecycle ---------------------------------------------------------------

    @abstractmethod
    def on_framework_connected(self, env: IStratEnv) -> None:
        """Called when the strategy is connected to the trading framework (and again after every
        reconnection). ``env`` is the strategy's only way to act; keep it. The strategy MUST call
        ``env.login(name)`` here: nothing else happens until it does."""

    @abstractmethod
    def on_framework_disconnected(self) -> None:
        """Called when the connection to the framework is lost. The env keeps reconnecting and
        calls :meth:`on_framework_connected` again when it succeeds."""

    @abstractmethod
    def on_start(self, params: str) -> None:
        """Called when the system starts the strategy: right after login, and on every later
        ``start`` command. ``params`` is the text given to the start command (may be empty).
        Market-data subscriptions and orders may be made from here on."""

    @abstractmethod
    def on_stop(self, params: str) -> None:
        """Called when the strategy must stop trading (the ``stop`` command). Cancel orders,
        flatten if needed, then call ``env.send_stop_ack()``; a stop left unacknowledged escalates
        to a cancel-all on every gateway."""

    def on_instruments(self, instruments: Iterable[Instrument]) -> None:
        """Called once after ``on_start`` with every instrument the strategy may use. The default
        does nothing (the env also keeps them: ``env.get_instrument``)."""
        return None

    def on_strat_params_update(self, strat_params: dict[str, Any]) -> None:
        """Called after ``on_instruments`` with the strategy's parameters (from its config file),
        and again whenever they are updated (``mlthon params``, ``/params``). The default does
        nothing."""
        return None

    # --- status --------------------------------------------------------------------------------

    @abstractmethod
    def on_gateway_status(self, exchange: Exchange, status: GtwStatus, detail: str) -> None:
        """Called when the order gateway of ``exchange`` changes state (``ReadyToTrade``,
        ``Connecting``, ``Maintenance``). Only send orders while it is ``ReadyToTrade``; other
        orders are rejected with ``GtwNotReady``."""

    @abstractmethod
    def on_feed_handler_status(
        self, exchange: Exchange, status: FeedHandlerStatus, detail: str
    ) -> None:
        """Called when a market-data feed changes state. ``SnapshotStart``: the events that follow
        are a snapshot (clear your books first); ``SnapshotEnd``: the snapshot is complete and
        incremental updates follow; ``Disconnected``: the feed is down (books are cleared);
        ``BookInvalid``: one instrument's book can no longer be trusted (the detail names the
        instrument and the reason) until its next ``SnapshotEnd``. Extensions of mlthon:
        ``Stale``: the feed has been silent (no data, no heartbeat) for longer than its limit; its
        books are marked not valid (their last levels kept); ``Resumed``: data flow again (a
        fresh snapshot of each book follows); ``BookCrossed``: an order-level book crossed in an
        auction or pre-open, kept and valid (the detail names the instrument), until
        ``Resumed`` for that instrument: it uncrossed."""

    # --- market data ---------------------------------------------------------------------------

    @abstractmethod
    def on_add_level(
        self,
        exchange: Exchange,
        instrument_id: int,
        side: Side,
        level_id: int,
        price: Price,
        qty: Qty,
        recv_ts: int,
    ) -> None:
        """Called (``OrderBook``/``LevelBook`` subscription) when a level keyed by ``level_id``
        appears in the book. For order-level feeds the level id is the venue's order id; for
        price-level feeds it is the price expressed in ticks."""

    @abstractmethod
    def on_modify_level(
        self,
        exchange: Exchange,
        instrument_id: int,
        side: Side,
        level_id: int,
        new_qty: Qty,
        recv_ts: int,
    ) -> None:
        """Called (``OrderBook``/``LevelBook``) when the quantity of level ``level_id`` changes."""

    @abstractmethod
    def on_delete_level(
        self, exchange: Exchange, instrument_id: int, side: Side, level_id: int, recv_ts: int
    ) -> None:
        """Called (``OrderBook``/``LevelBook``) when level ``level_id`` leaves the book."""

    @abstractmethod
    def on_add_price_level(
        self,
        exchange: Exchange,
        instrument_id: int,
        side: Side,
        price: Price,
        qty: Qty,
        recv_ts: int,
    ) -> None:
        """Called (``PriceLevelBook``) when a new price level appears on ``side``."""

    @abstractmethod
    def on_modify_price_level(
        self,
        exchange: Exchange,
        instrument_id: int,
        side: Side,
        price: Price,
        new_qty: Qty,
        recv_ts: int,
    ) -> None:
        """Called (``PriceLevelBook``) when the total quantity at ``price`` changes."""

    @abstractmethod
    def on_delete_price_level(
        self, exchange: Exchange, instrument_id: int, side: Side, price: Price, recv_ts: int
    ) -> None:
        """Called (``PriceLevelBook``) when the level at ``price`` disappears."""

    def on_book_update(
        self, exchange: Exchange, instrument_id: int, changes: list[BookChange], recv_ts: int
    ) -> None:
        """Called (``PriceLevelBook``) once per venue message with all its price-level changes,
        in the message's order (an mlthon extension; see the module docstring). ``changes`` is
        the strategy's to keep. The default does nothing, and a strategy that keeps it is never
        called."""
        return None

    @abstractmethod
    def on_best_bid_level_update(
        self, exchange: Exchange, instrument_id: int, price: Price, qty: Qty, recv_ts: int
    ) -> None:
        """Called (``BBO``) when the best bid changes, in price or quantity; only then."""

    @abstractmethod
    def on_best_ask_level_update(
        self, exchange: Exchange, instrument_id: int, price: Price, qty: Qty, recv_ts: int
    ) -> None:
        """Called (``BBO``) when the best ask changes, in price or quantity; only then."""

    @abstractmethod
    def on_public_trade(
        self,
        exchange: Exchange,
        instrument_id: int,
        side: Side,
        price: Price,
        qty: Qty,
        exec_ts: int,
        recv_ts: int,
    ) -> None:
        """Called (``PublicTrades``) for every trade printed on the venue; ``side`` is the taker's
        side (``Side.Unset`` when the venue does not say)."""

    @abstractmethod
    def on_funding_info(
        self, exchange: Exchange, instrument_id: int, funding_rate: float, next_funding_ts: int
    ) -> None:
        """Called with the current funding rate of a perpetual (``Funding`` subscription, or in
        answer to ``fetch_funding_info``). Longs pay shorts when the rate is positive."""

    # --- order entry answers -------------------------------------------------------------------

    @abstractmethod
    def on_new_order_ack(
        self,
        exchange: Exchange,
        client_id: str,
        exchange_id: str,
        instrument_id: int,
        side: Side,
        price: Price,
        qty: Qty,
        leaves_qty: Qty,
        order_type: OrderType,
        tif: TIF,
        exec_instr: ExecInstructions,
    ) -> None:
        """Called when the exchange accepted a new order. ``client_id`` is the id
        ``send_new_order`` returned, as a string; ``exchange_id`` is the venue's id."""

    @abstractmethod
    def on_new_order_reject(
        self, exchange: Exchange, client_id: str, reject_code: GtwRejectCode, reject_reason: str
    ) -> None:
        """Called when a new order was refused, by the env (strategy stopped, not logged in),
        the gateway (not ready, rate limit, ``RequestExpired``: it waited too long to be
        handled; ``GatewayOverloaded``: the gateway sheds load; ``InvalidRequest``: a value it
        cannot take, named in the reason) or the exchange (price off tick, balance...)."""

    @abstractmethod
    def on_modify_order_ack(
        self, exchange: Exchange, client_id: str, new_price: Price, new_qty: Qty, leaves_qty: Qty
    ) -> None:
        """Called when a modify was accepted, with the order's new price, quantity and what is
        still open."""

    @abstractmethod
    def on_modify_order_reject(
        self, exchange: Exchange, client_id: str, reject_code: GtwRejectCode, reject_reason: str
    ) -> None:
        """Called when a modify was refused (unknown order, unsupported by the venue...)."""

    @abstractmethod
    def on_cancel_order_ack(self, exchange: Exchange, client_id: str) -> None:
        """Called when a cancel request was accepted. The order is gone only at
        ``on_order_cancelled``."""

    @abstractmethod
    def on_cancel_order_reject(
        self,
        exchange: Exchange,
        nullable_client_id: str | None,
        reject_code: GtwRejectCode,
        reject_reason: str,
    ) -> None:
        """Called when a cancel was refused; ``nullable_client_id`` is None for a cancel-all."""

    @abstractmethod
    def on_cancel_all_ack(self, exchange: Exchange, instrument_id: int) -> None:
        """Called when a cancel-all was accepted. Each order's end is an ``on_order_cancelled``."""

    @abstractmethod
    def on_cancel_all_reject(
        self,
        exchange: Exchange,
        instrument_id: int,
        reject_code: GtwRejectCode,
        reject_reason: str,
    ) -> None:
        """Called when a cancel-all was refused."""

    @abstractmethod
    def on_order_execution(
        self,
        exchange: Exchange,
        client_id: str,
        side: Side,
        price: Price,
        fill_qty: Qty,
        leaves_qty: Qty,
        exec_ts: int,
        recv_ts: int,
    ) -> None:
        """Called for every fill of one of the strategy's orders. ``leaves_qty`` is what is still
        open after this fill (zero: the order is complete)."""

    @abstractmethod
    def on_order_cancelled(
        self,
        exchange: Exchange,
        client_id: str,
        unsolicited: bool,
        engine_ts: int,
        recv_ts: int,
        cancel_code: CancelCode,
        cancel_reason: str,
    ) -> None:
        """Called when an order left the book without being filled in full: asked for
        (``unsolicited`` False) or not (an IOC remainder, self-trade prevention, the venue)."""

    @abstractmethod
    def on_request_reject(
        self,
        exchange: Exchange,
        reject_code: GtwRejectCode,
        detail: str,
        rejected_rqst_type: str,
    ) -> None:
        """Called when a request other than new/modify/cancel (a fetch, ...) was refused."""

    @abstractmethod
    def on_rate_limit_info(
        self, exchange: Exchange, rate_limit: int, rate_remaining: int, reset_ts: int
    ) -> None:
        """Called when the strategy has used 50 %, 90 % and 100 % of its request budget on
        ``exchange``. In the danger zone (90 %+), slow down."""

    @abstractmethod
    def on_unsupported_op(self, exchange: Exchange, unsupported_msg_type: str) -> None:
        """Called when ``exchange`` does not support a request (e.g. ``ModifyOrder``)."""

    # --- fetch answers -------------------------------------------------------------------------

    @abstractmethod
    def on_account_info(self, exchange: Exchange, user_id: str) -> None:
        """Answer to ``fetch_account_info``."""

    @abstractmethod
    def on_wallet_info(
        self, exchange: Exchange, coin: str, total_balance: Qty, available_balance: Qty
    ) -> None:
        """Answer to ``fetch_wallet_info``: a coin's total balance and the part not locked."""

    @abstractmethod
    def on_position_info(self, exchange: Exchange, instrument_id: int, position: Qty) -> None:
        """Answer to ``fetch_position_info``: the signed position (negative = short)."""

    @abstractmethod
    def on_order_status(
        self,
        exchange: Exchange,
        instrument_id: int,
        client_ord_id: str,
        exch_ord_id: str,
        side: Side,
        price: Price,
        leaves_qty: Qty,
        status: OrderStatus,
        order_type: OrderType,
        tif: TIF,
        exec_instr: ExecInstructions,
    ) -> None:
        """Answer to ``fetch_order_status``."""

    @abstractmethod
    def on_orders_info(self, exchange: Exchange, orders: list[Order]) -> None:
        """Answer to ``fetch_orders_info``: the open orders matching the request.

        Also called unasked, once per gateway after a login (a restart) or a gateway's return,
        with the open orders of this strategy that the env did not know (placed before the
        process restarted): the env adopted them, each has ``adopted=True``, and
        ``send_modify_order`` / ``send_cancel_order`` work on them as on the strategy's own. Not
        called when there is nothing to adopt.
        """

    def on_risk_state(self, state: TradingState, reason: str) -> None:
        """Called when the env's risk layer changes the strategy's trading state (an mlthon
        extension; ``docs/risk.md``): ``Halted`` after a daily-loss or drawdown limit was
        breached (its open orders are being cancelled; from now on every new order and modify
        is refused with ``GtwRejectCode.RiskLimit``), or any state the operator set with
        ``mlthon cmd <strat> risk <state>``. ``reason`` names the limit and the figures, or the
        operator. Only strategies with a ``[risk]`` table are called; the default does nothing.
        """
        return None


class Strategy(IStrategy):
    """A convenience base: every callback does nothing, so a strategy overrides only what it uses.

    It also keeps the env handed to ``on_framework_connected`` in ``self.env`` and logs in with
    ``self.name`` (the class name unless set), so the smallest strategy is::

        class MyStrat(Strategy):
            def on_start(self, params):
                self.env.subscribe(Exchange.Sim, 9001, MDSub.BBO)
    """

    name: str = ""

    def __init__(self, name: str | None = None) -> None:
        if name:
            self.name = name
        elif not self.name:
            self.name = type(self).__name__
        self._env: IStratEnv | None = None

    @property
    def env(self) -> IStratEnv:
        """The env handed to ``on_framework_connected``."""
        if self._env is None:
            raise RuntimeError(f"{self.name}: env used before on_framework_connected")
        return self._env

    def on_framework_connected(self, env: IStratEnv) -> None:
        self._env = env
        env.login(self.name)

    def on_framework_disconnected(self) -> None:
        return None

    def on_start(self, params: str) -> None:
        return None

    def on_stop(self, params: str) -> None:
        self.env.send_stop_ack()

    def on_gateway_status(self, exchange: Exchange, status: GtwStatus, detail: str) -> None:
        return None

    def on_feed_handler_status(
        self, exchange: Exchange, status: FeedHandlerStatus, detail: str
    ) -> None:
        return None

    def on_add_level(
        self,
        exchange: Exchange,
        instrument_id: int,
        side: Side,
        level_id: int,
        price: Price,
        qty: Qty,
        recv_ts: int,
    ) -> None:
        return None

    def on_modify_level(
        self,
        exchange: Exchange,
        instrument_id: int,
        side: Side,
        level_id: int,
        new_qty: Qty,
        recv_ts: int,
    ) -> None:
        return None

    def on_delete_level(
        self, exchange: Exchange, instrument_id: int, side: Side, level_id: int, recv_ts: int
    ) -> None:
        return None

    def on_add_price_level(
        self,
        exchange: Exchange,
        instrument_id: int,
        side: Side,
        price: Price,
        qty: Qty,
        recv_ts: int,
    ) -> None:
        return None

    def on_modify_price_level(
        self,
        exchange: Exchange,
        instrument_id: int,
        side: Side,
        price: Price,
        new_qty: Qty,
        recv_ts: int,
    ) -> None:
        return None

    def on_delete_price_level(
        self, exchange: Exchange, instrument_id: int, side: Side, price: Price, recv_ts: int
    ) -> None:
        return None

    def on_best_bid_level_update(
        self, exchange: Exchange, instrument_id: int, price: Price, qty: Qty, recv_ts: int
    ) -> None:
        return None

    def on_best_ask_level_update(
        self, exchange: Exchange, instrument_id: int, price: Price, qty: Qty, recv_ts: int
    ) -> None:
        return None

    def on_public_trade(
        self,
        exchange: Exchange,
        instrument_id: int,
        side: Side,
        price: Price,
        qty: Qty,
        exec_ts: int,
        recv_ts: int,
    ) -> None:
        return None

    def on_funding_info(
        self, exchange: Exchange, instrument_id: int, funding_rate: float, next_funding_ts: int
    ) -> None:
        return None

    def on_new_order_ack(
        self,
        exchange: Exchange,
        client_id: str,
        exchange_id: str,
        instrument_id: int,
        side: Side,
        price: Price,
        qty: Qty,
        leaves_qty: Qty,
        order_type: OrderType,
        tif: TIF,
        exec_instr: ExecInstructions,
    ) -> None:
        return None

    def on_new_order_reject(
        self, exchange: Exchange, client_id: str, reject_code: GtwRejectCode, reject_reason: str
    ) -> None:
        return None

    def on_modify_order_ack(
        self, exchange: Exchange, client_id: str, new_price: Price, new_qty: Qty, leaves_qty: Qty
    ) -> None:
        return None

    def on_modify_order_reject(
        self, exchange: Exchange, client_id: str, reject_code: GtwRejectCode, reject_reason: str
    ) -> None:
        return None

    def on_cancel_order_ack(self, exchange: Exchange, client_id: str) -> None:
        return None

    def on_cancel_order_reject(
        self,
        exchange: Exchange,
        nullable_client_id: str | None,
        reject_code: GtwRejectCode,
        reject_reason: str,
    ) -> None:
        return None

    def on_cancel_all_ack(self, exchange: Exchange, instrument_id: int) -> None:
        return None

    def on_cancel_all_reject(
        self,
        exchange: Exchange,
        instrument_id: int,
        reject_code: GtwRejectCode,
        reject_reason: str,
    ) -> None:
        return None

    def on_order_execution(
        self,
        exchange: Exchange,
        client_id: str,
        side: Side,
        price: Price,
        fill_qty: Qty,
        leaves_qty: Qty,
        exec_ts: int,
        recv_ts: int,
    ) -> None:
        return None

    def on_order_cancelled(
        self,
        exchange: Exchange,
        client_id: str,
        unsolicited: bool,
        engine_ts: int,
        recv_ts: int,
        cancel_code: CancelCode,
        cancel_reason: str,
    ) -> None:
        return None

    def on_request_reject(
        self,
        exchange: Exchange,
        reject_code: GtwRejectCode,
        detail: str,
        rejected_rqst_type: str,
    ) -> None:
        return None

    def on_rate_limit_info(
        self, exchange: Exchange, rate_limit: int, rate_remaining: int, reset_ts: int
    ) -> None:
        return None

    def on_unsupported_op(self, exchange: Exchange, unsupported_msg_type: str) -> None:
        return None

    def on_account_info(self, exchange: Exchange, user_id: str) -> None:
        return None

    def on_wallet_info(
        self, exchange: Exchange, coin: str, total_balance: Qty, available_balance: Qty
    ) -> None:
        return None

    def on_position_info(self, exchange: Exchange, instrument_id: int, position: Qty) -> None:
        return None

    def on_order_status(
        self,
        exchange: Exchange,
        instrument_id: int,
        client_ord_id: str,
        exch_ord_id: str,
        side: Side,
        price: Price,
        leaves_qty: Qty,
        status: OrderStatus,
        order_type: OrderType,
        tif: TIF,
        exec_instr: ExecInstructions,
    ) -> None:
        return None

    def on_orders_info(self, exchange: Exchange, orders: list[Order]) -> None:
        return None
