"""Every message that travels on the bus, as versioned, tagged, frozen msgspec structs.

The wire form is JSON: one object per bus message with ``"k"`` (the kind tag) and ``"v"`` (the
schema version, :data:`WIRE_VERSION`). Prices and quantities of orders, reports and funding travel
as decimal strings, enums as their integer values, timestamps as integer nanoseconds since the
epoch.

Market data is batched: one bus message per venue message, carrying all its level changes as a
list of compact tuples (see :data:`BookDelta`), never one bus message per level. Its prices and
sizes are integers since wire version 2: ticks and lots of the instrument (a price is
``tick * tick_size``, a size ``lots * lot_size``; the receiver knows the grid from the
``Instruments`` message or the instruments file). The feed converts the venue's text once; a
venue level off the grid is counted and reported there, never sent. ``FundingUpdate`` keeps
decimal text (rare). All processes of a run are one build: a message of another version is
refused at decode.

The in-process bus hands these same objects from publisher to subscriber without encoding them.
``mlthon.infra.bus.codec`` is the only place that turns them into domain values.
"""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec

from mlthon.basics.mlt_enum import (
    TIF,
    CancelCode,
    Exchange,
    ExecInstructions,
    FeedHandlerStatus,
    GtwRejectCode,
    GtwStatus,
    InstrumentKind,
    OrderStatus,
    OrderType,
    Side,
    TradingState,
    TriggerDirection,
)

WIRE_VERSION = 2

# Actions inside book deltas.
ADD = 0
MODIFY = 1
DELETE = 2

# Sides inside market-data tuples: the integer values of Side.
BID = Side.Buy.value
ASK = Side.Sell.value


class Msg(
    msgspec.Struct,
    frozen=True,
    kw_only=True,
    forbid_unknown_fields=True,
    tag_field="k",
):
    """Base of every bus message. ``v`` is the schema version it was written with."""

    v: int = WIRE_VERSION


# ------------------------------------------------------------------------------------------------
# Control: strategy <-> control service
# ------------------------------------------------------------------------------------------------


class InstrumentWire(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """An :class:`~mlthon.basics.Instrument` on the wire (decimals as strings)."""

    instrument_id: int
    name: str
    exchange: Exchange
    base: str
    quote: str
    kind: InstrumentKind
    tick_size: str
    lot_size: str
    min_qty: str = "0"
    contract_multiplier: str = "1"
    min_notional: str = "0"
    settle_coin: str = ""
    maker_fee: str = "0"
    taker_fee: str = "0"


class Login(Msg, tag="login", kw_only=True, frozen=True):
    """Strategy -> control: ``env.login(strat_name)``."""

    strat: str
    pid: int = 0
    host: str = ""


class LoginReject(Msg, tag="login_rej", kw_only=True, frozen=True):
    """Control -> strategy: the login was refused (unknown strategy name, ...)."""

    strat: str
    reason: str


class Start(Msg, tag="start", kw_only=True, frozen=True):
    """Control -> strategy: run ``on_start(params)``; if ``reply_to`` is set, answer a
    :class:`CmdResult` with ``cmd_id`` there once it ran."""

    params: str = ""
    cmd_id: str = ""
    reply_to: str = ""


class Stop(Msg, tag="stop", kw_only=True, frozen=True):
    """Control -> strategy: run ``on_stop(params)``; the strategy answers with :class:`StopAck`."""

    params: str = ""
    cmd_id: str = ""


class Idle(Msg, tag="idle", kw_only=True, frozen=True):
    """Control -> strategy, answering a login instead of :class:`Start`: the operator wants this
    strategy stopped (a ``stop`` it asked for, remembered across re-logins and restarts of the
    control service). The strategy stays logged in and stopped (orders and modifies refused
    ``StrategyStopped``; cancels and fetches pass) until a ``start`` command; ``on_start`` is not
    run."""

    detail: str = ""


class StopAck(Msg, tag="stop_ack", kw_only=True, frozen=True):
    """Strategy -> control: ``env.send_stop_ack()``."""

    strat: str


class StopEscalated(Msg, tag="stop_escalated", kw_only=True, frozen=True):
    """Control -> strategy and status: no StopAck in time; orders were cancelled on its behalf."""

    strat: str
    detail: str


#: The scopes of a :class:`RiskStateSet`: one strategy, or every strategy of the desk.
RISK_SCOPES = ("strategy", "desk")


class RiskStateSet(Msg, tag="risk_state", kw_only=True, frozen=True):
    """A trading state (``docs/risk.md``), both ways:

    * control -> strategy (its control topic): the operator set ``state`` for the strategy
      (``scope`` ``strategy``) or for the whole desk (``desk``); sent again at every login, before
      ``Start``, so that it survives restarts. With ``reply_to`` the strategy answers a
      :class:`CmdResult` with ``cmd_id`` there once it applied it.
    * strategy -> control (its up topic, ``scope`` ``strategy``): the strategy's risk layer moved
      to ``state`` by itself (a loss limit halted it); the control service records it, so a
      restarted strategy is still halted.
    """

    scope: str
    state: TradingState
    reason: str = ""
    by: str = ""
    ts: int = 0
    cmd_id: str = ""
    reply_to: str = ""


class RiskDefaults(Msg, tag="risk_defaults", kw_only=True, frozen=True):
    """Control -> strategy, at every login before the trading states: the desk's ``[risk]``
    table (``mlthon control --desk``), the defaults under the strategy's own limits
    (``docs/risk.md``). ``source`` names the desk file."""

    table: dict[str, Any]
    source: str = ""


class Instruments(Msg, tag="instruments", kw_only=True, frozen=True):
    """Control -> strategy: every instrument the strategy may use (``on_instruments``)."""

    instruments: list[InstrumentWire]


class StratParams(Msg, tag="params", kw_only=True, frozen=True):
    """Control -> strategy: the strategy's parameters (``on_strat_params_update``)."""

    params: dict[str, Any]


class CmdRequest(Msg, tag="cmd_req", kw_only=True, frozen=True):
    """CLI or Telegram -> control: run command ``name`` on strategy ``strat``.

    ``reply_to`` is the topic the :class:`CmdResult` goes to.
    """

    cmd_id: str
    strat: str
    name: str
    args: list[str] = []
    reply_to: str = ""
    sender: str = ""


class CmdHook(Msg, tag="cmd", kw_only=True, frozen=True):
    """Control -> strategy: invoke the hook registered under ``name`` with ``args``.

    ``sent_ts`` is when the control service forwarded it (ns, wall clock; 0 = unknown, from an
    older sender): a hook delivered late by the strategy's persistent session is dropped by the
    env when older than its ``stale_cmd_s``.
    """

    cmd_id: str
    name: str
    args: list[str] = []
    reply_to: str = ""
    sent_ts: int = 0


class CmdResult(Msg, tag="cmd_res", kw_only=True, frozen=True):
    """Strategy or control -> requester: the outcome of a command."""

    cmd_id: str
    strat: str
    ok: bool
    detail: str = ""


class TelegramPublish(Msg, tag="tg", kw_only=True, frozen=True):
    """Strategy -> Telegram bridge: ``env.publish_telegram(msg)``."""

    strat: str
    text: str
    priority: int = 2
    ts: int = 0


class HookInfo(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A command hook a strategy registered: its name, one line of help, and whether it is
    dangerous (needs a confirmation before it runs, e.g. ``flatten``)."""

    name: str
    help: str = ""
    dangerous: bool = False


class StratStatus(Msg, tag="sstat", kw_only=True, frozen=True):
    """Strategy -> status topic (retained): what the strategy is doing, and its command hooks."""

    strat: str
    state: str
    detail: str = ""
    ts: int = 0
    callbacks: int = 0
    callback_errors: int = 0
    slow_callbacks: int = 0
    pid: int = 0
    hooks: list[HookInfo] = []


class ComponentStatus(Msg, tag="cstat", kw_only=True, frozen=True):
    """Any process -> status topic (retained), on every change and as a periodic heartbeat.

    ``kind`` is gateway, feed, strategy, control or telegram; ``state`` up, degraded, down or
    stale (set by watchers when heartbeats stop); ``since`` when the state began; ``rates``
    message rates by name (per second); ``extra`` kind-specific figures (a strategy's position,
    open orders and PnL...).
    """

    name: str
    kind: str
    state: str
    since: int = 0
    ts: int = 0
    detail: str = ""
    version: str = ""
    pid: int = 0
    host: str = ""
    heartbeat_s: float = 0.0
    rates: dict[str, float] = {}
    lag_ms: float = 0.0
    last_error: str = ""
    extra: dict[str, Any] = {}


# ops (issue 7): added by the ops helper for its tests; the lead owns this file.
class Shutdown(Msg, tag="shutdown", kw_only=True, frozen=True):
    """``mlthon kill`` -> ``{root}/ops/shutdown``: the process whose component name, ``kind/name``
    or pid is ``target`` stops cleanly, as on SIGTERM."""

    target: str
    reason: str = ""


# ------------------------------------------------------------------------------------------------
# Order entry: strategy -> gateway
# ------------------------------------------------------------------------------------------------


class NewOrder(Msg, tag="new", kw_only=True, frozen=True):
    """Strategy -> gateway: place an order."""

    strat: str
    cl_id: str
    instrument_id: int
    side: Side
    price: str
    qty: str
    exec_instr: ExecInstructions = ExecInstructions.Unset
    ord_type: OrderType = OrderType.Limit
    tif: TIF = TIF.GTC
    close_position: bool = False
    stop_price: str | None = None
    trigger_dir: TriggerDirection = TriggerDirection.Unset
    ts: int = 0


class ModifyOrder(Msg, tag="modify", kw_only=True, frozen=True):
    """Strategy -> gateway: change an order's price and/or quantity."""

    strat: str
    cl_id: str
    new_price: str | None = None
    new_qty: str | None = None
    ts: int = 0


class CancelOrder(Msg, tag="cancel", kw_only=True, frozen=True):
    """Strategy -> gateway: cancel one order."""

    strat: str
    cl_id: str
    instrument_id: int
    ts: int = 0


class CancelAll(Msg, tag="cancel_all", kw_only=True, frozen=True):
    """Strategy (or control, on stop escalation) -> gateway: cancel every order of ``strat``.

    ``instrument_id`` 0 means every instrument.
    """

    strat: str
    instrument_id: int = 0
    ts: int = 0
    escalation: bool = False


class FetchAccount(Msg, tag="f_account", kw_only=True, frozen=True):
    strat: str
    req_id: str = ""  # echoed in the answer; empty: an answer for the strategy
    ts: int = 0  # the send time (the gateway's time-to-live counts from it; 0: never expires)


class FetchWallet(Msg, tag="f_wallet", kw_only=True, frozen=True):
    strat: str
    coin: str
    req_id: str = ""  # echoed in the answer; empty: an answer for the strategy
    ts: int = 0  # the send time (the gateway's time-to-live counts from it; 0: never expires)


class FetchPosition(Msg, tag="f_position", kw_only=True, frozen=True):
    strat: str
    instrument_id: int
    req_id: str = ""  # echoed in the answer; empty: an answer for the strategy
    ts: int = 0  # the send time (the gateway's time-to-live counts from it; 0: never expires)


class FetchFunding(Msg, tag="f_funding", kw_only=True, frozen=True):
    strat: str
    instrument_id: int
    req_id: str = ""  # echoed in the answer; empty: an answer for the strategy
    ts: int = 0  # the send time (the gateway's time-to-live counts from it; 0: never expires)


class FetchOrderStatus(Msg, tag="f_order", kw_only=True, frozen=True):
    strat: str
    instrument_id: int
    cl_id: str
    req_id: str = ""  # echoed in the answer; empty: an answer for the strategy
    ts: int = 0  # the send time (the gateway's time-to-live counts from it; 0: never expires)


class FetchOrders(Msg, tag="f_orders", kw_only=True, frozen=True):
    strat: str
    instrument_id: int = 0
    req_id: str = ""  # echoed in the answer; empty: an answer for the strategy
    ts: int = 0  # the send time (the gateway's time-to-live counts from it; 0: never expires)


# ------------------------------------------------------------------------------------------------
# Reports: gateway -> strategy
# ------------------------------------------------------------------------------------------------


class NewOrderAck(Msg, tag="new_ack", kw_only=True, frozen=True):
    cl_id: str
    exch_id: str
    instrument_id: int
    side: Side
    price: str
    qty: str
    leaves_qty: str
    ord_type: OrderType
    tif: TIF
    exec_instr: ExecInstructions
    ts: int = 0


class NewOrderReject(Msg, tag="new_rej", kw_only=True, frozen=True):
    cl_id: str
    code: GtwRejectCode
    reason: str = ""
    ts: int = 0


class ModifyOrderAck(Msg, tag="modify_ack", kw_only=True, frozen=True):
    cl_id: str
    new_price: str
    new_qty: str
    leaves_qty: str
    ts: int = 0


class ModifyOrderReject(Msg, tag="modify_rej", kw_only=True, frozen=True):
    cl_id: str
    code: GtwRejectCode
    reason: str = ""
    ts: int = 0


class CancelOrderAck(Msg, tag="cancel_ack", kw_only=True, frozen=True):
    cl_id: str
    ts: int = 0


class CancelOrderReject(Msg, tag="cancel_rej", kw_only=True, frozen=True):
    cl_id: str | None
    code: GtwRejectCode
    reason: str = ""
    ts: int = 0


class CancelAllAck(Msg, tag="cancel_all_ack", kw_only=True, frozen=True):
    instrument_id: int
    ts: int = 0


class CancelAllReject(Msg, tag="cancel_all_rej", kw_only=True, frozen=True):
    instrument_id: int
    code: GtwRejectCode
    reason: str = ""
    ts: int = 0


class OrderExecution(Msg, tag="exec", kw_only=True, frozen=True):
    """One fill. ``exec_id`` is unique per gateway, so fills can be de-duplicated."""

    cl_id: str
    exec_id: str
    instrument_id: int
    side: Side
    price: str
    fill_qty: str
    leaves_qty: str
    exec_ts: int
    fee: str = "0"
    fee_coin: str = ""
    maker: bool = False
    ts: int = 0


class OrderCancelled(Msg, tag="cancelled", kw_only=True, frozen=True):
    cl_id: str
    unsolicited: bool
    engine_ts: int
    cancel_code: CancelCode
    reason: str = ""
    ts: int = 0


class RequestReject(Msg, tag="req_rej", kw_only=True, frozen=True):
    code: GtwRejectCode
    detail: str
    rqst_type: str
    ts: int = 0
    req_id: str = ""  # the request's, when it had one


class RateLimitInfo(Msg, tag="rate", kw_only=True, frozen=True):
    rate_limit: int
    rate_remaining: int
    reset_ts: int


class UnsupportedOp(Msg, tag="unsupported", kw_only=True, frozen=True):
    msg_type: str
    req_id: str = ""  # the request's, when it had one


class AccountInfo(Msg, tag="account", kw_only=True, frozen=True):
    user_id: str
    req_id: str = ""  # the request's, when it had one


class WalletInfo(Msg, tag="wallet", kw_only=True, frozen=True):
    coin: str
    total: str
    available: str
    req_id: str = ""  # the request's, when it had one


class PositionInfo(Msg, tag="position", kw_only=True, frozen=True):
    instrument_id: int
    position: str
    req_id: str = ""  # the request's, when it had one


class FundingInfo(Msg, tag="funding_info", kw_only=True, frozen=True):
    instrument_id: int
    rate: str
    next_ts: int
    req_id: str = ""  # the request's, when it had one


class OrderWire(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """An :class:`~mlthon.basics.Order` on the wire."""

    instrument_id: int
    cl_id: str
    exch_id: str
    side: Side
    price: str
    qty: str
    leaves_qty: str
    filled_qty: str
    status: OrderStatus
    ord_type: OrderType = OrderType.Limit
    tif: TIF = TIF.GTC
    exec_instr: ExecInstructions = ExecInstructions.Unset
    created_ts: int = 0


class OrderStatusInfo(Msg, tag="order_status", kw_only=True, frozen=True):
    order: OrderWire
    req_id: str = ""  # the request's, when it had one


class OrdersInfo(Msg, tag="orders", kw_only=True, frozen=True):
    orders: list[OrderWire]
    req_id: str = ""  # the request's, when it had one


class GatewayStatus(Msg, tag="gstat", kw_only=True, frozen=True):
    """Gateway -> everyone (retained): the gateway's state."""

    exchange: Exchange
    status: GtwStatus
    detail: str = ""
    ts: int = 0


# ------------------------------------------------------------------------------------------------
# Market data: feed -> strategies
# ------------------------------------------------------------------------------------------------

# (action, side, tick, lots): action ADD/MODIFY/DELETE, side BID/ASK, the price in ticks and the
# size in lots of the instrument (0 for DELETE).
BookDelta = tuple[int, int, int, int]
# (action, side, level_id, tick, lots): order-level (L3) change keyed by level id.
LevelDelta = tuple[int, int, int, int, int]
# (taker side, tick, lots, exec_ts, trade_id); taker side 0 when the venue does not say.
TradeTuple = tuple[int, int, int, int, str]


class BookUpdate(Msg, tag="book", kw_only=True, frozen=True):
    """Price-level book changes from one venue message for one instrument.

    ``ts`` is the receive time, ``ets`` the exchange time (0 if the venue gives none), ``seq`` the
    feed's own per-instrument counter (a gap there means bus loss).
    """

    ex: int
    iid: int
    ts: int
    ets: int = 0
    seq: int = 0
    ch: list[BookDelta]


class LevelUpdate(Msg, tag="lvl", kw_only=True, frozen=True):
    """Order-level (level-id keyed) book changes from one venue message for one instrument."""

    ex: int
    iid: int
    ts: int
    ets: int = 0
    seq: int = 0
    ch: list[LevelDelta]


class TradeUpdate(Msg, tag="trd", kw_only=True, frozen=True):
    """Public trades from one venue message for one instrument."""

    ex: int
    iid: int
    ts: int
    seq: int = 0
    tr: list[TradeTuple]


class FundingUpdate(Msg, tag="fund", kw_only=True, frozen=True):
    """A funding-rate update for one instrument."""

    ex: int
    iid: int
    ts: int
    rate: str
    next_ts: int
    mark: str = ""
    seq: int = 0


class SnapshotRequest(Msg, tag="snap_req", kw_only=True, frozen=True):
    """Strategy -> feed: (re)send the current book of ``iid`` framed by SnapshotStart/SnapshotEnd
    on its market-data topic (a late subscriber needs it; every subscriber may reset on it)."""

    ex: int
    iid: int
    strat: str = ""


class FeedStatus(Msg, tag="fstat", kw_only=True, frozen=True):
    """A feed status transition. ``iid`` 0 is the whole feed; otherwise one instrument's book.

    Sent on the instrument's market-data topic too, so that it stays in order with the book events
    (``SnapshotStart``, the snapshot, ``SnapshotEnd``, the deltas).
    """

    ex: int
    iid: int = 0
    status: FeedHandlerStatus
    detail: str = ""
    ts: int = 0
    seq: int = 0


class FeedHeartbeat(Msg, tag="fhb", kw_only=True, frozen=True):
    """Feed -> strategies, on ``{root}/feed/{ex}/hb`` (QoS 0): the feed process is alive.

    Sent every ``limit_ms / 4`` whether or not the market moves; a strategy's env that hears
    neither market data nor a heartbeat of this feed for ``limit_ms`` tells the strategy the
    feed is ``Stale`` (and ``Resumed`` when data flow again).
    """

    ex: int
    ts: int
    limit_ms: int


ControlMsg = (
    Login
    | LoginReject
    | Start
    | Idle
    | Stop
    | StopAck
    | StopEscalated
    | RiskStateSet
    | RiskDefaults
    | Instruments
    | StratParams
)
RequestMsg = (
    NewOrder
    | ModifyOrder
    | CancelOrder
    | CancelAll
    | FetchAccount
    | FetchWallet
    | FetchPosition
    | FetchFunding
    | FetchOrderStatus
    | FetchOrders
)
ReportMsg = (
    NewOrderAck
    | NewOrderReject
    | ModifyOrderAck
    | ModifyOrderReject
    | CancelOrderAck
    | CancelOrderReject
    | CancelAllAck
    | CancelAllReject
    | OrderExecution
    | OrderCancelled
    | RequestReject
    | RateLimitInfo
    | UnsupportedOp
    | AccountInfo
    | WalletInfo
    | PositionInfo
    | FundingInfo
    | OrderStatusInfo
    | OrdersInfo
)
MarketDataMsg = BookUpdate | LevelUpdate | TradeUpdate | FundingUpdate | FeedStatus
FeedRequestMsg = SnapshotRequest

AnyMsg = (
    ControlMsg
    | CmdRequest
    | CmdHook
    | CmdResult
    | TelegramPublish
    | StratStatus
    | ComponentStatus
    | Shutdown
    | RequestMsg
    | ReportMsg
    | GatewayStatus
    | MarketDataMsg
    | FeedRequestMsg
    | FeedHeartbeat
)


M = TypeVar("M", bound=Msg)


def echo_req_id(req: Any, answer: M) -> M:
    """``answer`` carrying the ``req_id`` of the request it answers (unchanged if none)."""
    rid = getattr(req, "req_id", "")
    if rid and hasattr(answer, "req_id"):
        return msgspec.structs.replace(answer, req_id=rid)
    return answer
