"""The pure matching core of the simulated exchange.

No I/O, no awaits, no clock of its own: every entry point takes the exchange-side timestamp of the
event, and every answer goes to an injected :data:`ReportSink` as a report message of
:mod:`mlthon.infra.bus.messages`. The same core serves in-process backtests and the paper gateway.

Per instrument it reads the market's book (the shared one of a backtest, or its own, applied from
``BookUpdate`` or order-level ``LevelUpdate``), the public trades (``TradeUpdate``) and funding
(``FundingUpdate``), and keeps the orders of every strategy. Market data are integer ticks and
lots (wire version 2); the engine works only where our orders rest (:mod:`.market`).

Fill rules (``docs/simulation.md`` has the long form):

* An order that crosses the book on arrival takes the displayed liquidity level by level, at each
  level's price, as taker. The liquidity it took is removed from the sim's view of the book (an
  overlay on the venue's book, never a write to it) until the venue next reports that level.
* A resting order joins the queue behind everything displayed at its price. A trade printing at its
  price first consumes what is ahead of it, then fills it. Shrinking of the level beyond the trades
  is cancellation; the :class:`~mlthon.gateways.sim.queue.QueueModel` decides how much of it was
  ahead. With order-level data the queue is the exact FIFO of level ids.
* A trade printing *through* a resting order's price (below a bid, above an ask) fills it fully;
  an opposite book that moves onto or through its price fills it against that liquidity. Both at
  the order's own price, as maker.
* Simulated orders of different strategies never match each other; each only meets the replayed
  market. Self-trade prevention: an incoming order that would cross a resting order of the *same*
  strategy cancels the resting one first (unsolicited, ``CancelCode.SelfTradePrevention``), then
  matches against the market ("cancel resting"). A post-only order that would cross one of its
  own strategy's orders is rejected instead.
"""

from __future__ import annotations

import logging
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Mapping
from decimal import Context, Decimal, InvalidOperation
from typing import Any

from mlthon.basics.errors import GatewayError
from mlthon.basics.instrument import Instrument
from mlthon.basics.mlt_enum import (
    MARKET_ORDER_TYPES,
    STOP_ORDER_TYPES,
    TIF,
    CancelCode,
    Exchange,
    ExecInstructions,
    GtwRejectCode,
    InstrumentKind,
    OrderStatus,
    OrderType,
    Side,
    TriggerDirection,
)
from mlthon.basics.sanity import MAX_DECIMALS, decimal_problem
from mlthon.basics.tickbook import TickBook
from mlthon.gateways.sim.accounting import Account, FundingPayment
from mlthon.gateways.sim.book_changes import changes_in_ranges
from mlthon.gateways.sim.contract import settle_notional
from mlthon.gateways.sim.fees import FeeModel
from mlthon.gateways.sim.market import MarketState, SimOrder
from mlthon.gateways.sim.queue import ConservativeQueue, QueueModel
from mlthon.infra.bus.messages import (
    ASK,
    BID,
    DELETE,
    AccountInfo,
    BookDelta,
    BookUpdate,
    CancelAll,
    CancelAllAck,
    CancelAllReject,
    CancelOrder,
    CancelOrderAck,
    CancelOrderReject,
    FeedStatus,
    FetchAccount,
    FetchFunding,
    FetchOrders,
    FetchOrderStatus,
    FetchPosition,
    FetchWallet,
    FundingInfo,
    FundingUpdate,
    LevelUpdate,
    ModifyOrder,
    ModifyOrderAck,
    ModifyOrderReject,
    Msg,
    NewOrder,
    NewOrderAck,
    NewOrderReject,
    OrderCancelled,
    OrderExecution,
    OrdersInfo,
    OrderStatusInfo,
    OrderWire,
    PositionInfo,
    RequestReject,
    TradeUpdate,
    WalletInfo,
    echo_req_id,
)

log = logging.getLogger(__name__)

ReportSink = Callable[[str, Msg, str], None]
"""``sink(strat, report, kind)``: ``kind`` is the command being answered (``new``, ``modify``,
``cancel``, ``cancel_all``, ``fetch``) or ``fill`` for events caused by market data."""

FetchMsg = (
    FetchAccount | FetchWallet | FetchPosition | FetchFunding | FetchOrderStatus | FetchOrders
)

_CLEARING = {"SnapshotStart", "BookInvalid", "Disconnected"}
# a tuple, not a set: membership by identity, without hashing the enum
_OPEN = tuple(s for s in OrderStatus if s.is_open)
# Members read on every order, bound once: reading one off its Enum class (``TIF.GTC``) goes
# through EnumType's Python-level __getattr__ hook on Python 3.11 (about 800 instructions).
_SIDES = (Side.Buy, Side.Sell)
_BUY = Side.Buy
_TYPE_UNSET, _LIMIT = OrderType.Unset, OrderType.Limit
_TIF_UNSET, _GTC, _FOK = TIF.Unset, TIF.GTC, TIF.FOK
_POST_ONLY = ExecInstructions.PostOnly


class _Reject(GatewayError):
    """A request refused by the engine (internal control flow, turned into a reject report)."""

    def __init__(self, code: GtwRejectCode, reason: str) -> None:
        super().__init__(f"{code.name}: {reason}")
        self.code = code
        self.reason = reason


def _s(d: Decimal) -> str:
    return format(d, "f")


_SHOWN = Decimal("1e-8")


def _r(d: Decimal) -> str:
    """An amount for a human reason: at most 8 decimals, no trailing zeros."""
    if d.as_tuple().exponent < -8:  # type: ignore[operator]
        d = d.quantize(_SHOWN)
    return _n(d)


_WIDE = Context(prec=60)
_MOST = Decimal(1).scaleb(-MAX_DECIMALS)


def _n(d: Decimal) -> str:
    """A computed amount (fee, balance, position) without trailing zeros, rounded to the
    decimals a report may carry (an average entry price makes balances of 28 digits)."""
    if not d:
        return "0"
    if d.as_tuple().exponent < -MAX_DECIMALS:  # type: ignore[operator]
        d = d.quantize(_MOST, context=_WIDE)
    return format(d.normalize(), "f")


_CONVERTED_MAX = 50_000


def _remember(cache: dict[tuple[int, str], int], key: tuple[int, str], value: int) -> None:
    if len(cache) >= _CONVERTED_MAX:
        cache.clear()
    cache[key] = value


_MAX_INT = 2**62  # ticks and lots stay below the books' sentinels


def _insane_level(ch: list[BookDelta]) -> str | None:
    """Why a book message's change is not sane (side, tick > 0, lots >= 0), or None."""
    for action, side, t, n in ch:
        if (side != BID and side != ASK) or not 0 < t < _MAX_INT or not 0 <= n < _MAX_INT:
            return f"level {(action, side, t, n)!r} is not a sane change"
    return None


class MatchingEngine:
    """Matches the orders of many strategies against the replayed market of many instruments.

    Args:
        instruments: what can be traded.
        sink: receives every report (see :data:`ReportSink`).
        exchange: the exchange this engine simulates (for logs and order snapshots).
        queue_model: queue-position model for price-level data (default conservative).
        fees: fee model (default: the instruments' own rates).
        balances: opening wallet of each new account, per coin.
        leverage: initial-margin leverage for derivatives.
        hedge_mode: positions per leg (long/short) instead of net.
        id_prefix: prefix of exchange order ids and execution ids.
        books: ``books(instrument_id)``: the instrument's shared book, which someone else keeps
            up to date before each message reaches the engine (a backtest's feed engine or
            book keeper); None (or a None answer): the engine keeps its own from the messages.
    """

    def __init__(
        self,
        instruments: Iterable[Instrument],
        sink: ReportSink,
        *,
        exchange: Exchange = Exchange.Sim,
        queue_model: QueueModel | None = None,
        fees: FeeModel | None = None,
        balances: Mapping[str, Decimal] | None = None,
        leverage: Decimal = Decimal(1),
        hedge_mode: bool = False,
        id_prefix: str = "sim",
        books: Callable[[int], TickBook | None] | None = None,
    ) -> None:
        self.exchange = exchange
        self._markets: dict[int, MarketState] = {
            i.instrument_id: MarketState(i, None if books is None else books(i.instrument_id))
            for i in instruments
        }
        self._sink = sink
        self.queue_model: QueueModel = queue_model or ConservativeQueue()
        self.fees = fees or FeeModel()
        self._balances = dict(balances or {})
        self._leverage = leverage
        self._hedge = hedge_mode
        self._prefix = id_prefix
        self._orders: dict[tuple[str, str], SimOrder] = {}
        self._open: dict[tuple[str, str], SimOrder] = {}
        self._accounts: dict[str, Account] = {}
        self._order_n = 0
        # valid price and quantity texts already converted, by (instrument id, text): a strategy
        # quotes the same few levels and sizes again and again
        self._ticks_of: dict[tuple[int, str], int] = {}
        self._lots_of: dict[tuple[int, str], int] = {}
        self._exec_n = 0
        self._now = 0
        self._kind = "fill"
        self.funding_payments: list[FundingPayment] = []
        # market data by kind (messages are final structs: their type is exact); read-only, for
        # a caller that dispatches itself (the sim gateway, once per message)
        self.md_handlers: dict[type[Any], Callable[[Any, int], None]] = {
            BookUpdate: self.on_book_update,
            TradeUpdate: self.on_trade_update,
            LevelUpdate: self.on_level_update,
            FundingUpdate: self.on_funding_update,
            FeedStatus: self.on_feed_status,
        }

    # ================================================================================ queries
    def market(self, instrument_id: int) -> MarketState:
        """The state of one instrument; raises KeyError if unknown."""
        return self._markets[instrument_id]

    @property
    def instruments(self) -> list[Instrument]:
        """Every instrument of the engine."""
        return [m.inst for m in self._markets.values()]

    def account(self, strat: str) -> Account:
        """The account of ``strat`` (opened with the configured balances on first use)."""
        acct = self._accounts.get(strat)
        if acct is None:
            acct = Account(
                strat,
                self._balances,
                leverage=self._leverage,
                hedge_mode=self._hedge,
                marks=self._mark,
            )
            self._accounts[strat] = acct
        return acct

    def order(self, strat: str, cl_id: str) -> SimOrder | None:
        """An order of ``strat`` by client id (open or closed)."""
        return self._orders.get((strat, cl_id))

    def order_is_open(self, strat: str, cl_id: str) -> bool:
        """Whether ``strat`` has an open order ``cl_id``."""
        return (strat, cl_id) in self._open

    def open_orders(self, strat: str | None = None, instrument_id: int = 0) -> list[SimOrder]:
        """Open orders, optionally of one strategy and one instrument, in arrival order."""
        return [
            o
            for o in self._open.values()
            if (strat is None or o.strat == strat) and (not instrument_id or o.iid == instrument_id)
        ]

    def _mark(self, iid: int) -> Decimal | None:
        mkt = self._markets.get(iid)
        return mkt.reference_price() if mkt is not None else None

    def order_wire(self, o: SimOrder) -> OrderWire:
        """An order's snapshot for ``fetch_order_status`` / ``fetch_orders_info``."""
        mkt = self._markets[o.iid]
        return OrderWire(
            instrument_id=o.iid,
            cl_id=o.cl_id,
            exch_id=o.exch_id,
            side=o.side,
            price=mkt.price_texts[o.tick] if o.tick is not None else "0",
            qty=mkt.qty_texts[o.qty],
            leaves_qty=mkt.qty_texts[o.leaves if o.status in _OPEN else 0],
            filled_qty=mkt.qty_texts[o.filled],
            status=o.status,
            ord_type=o.ord_type,
            tif=o.tif,
            exec_instr=o.exec_instr,
            created_ts=o.created_ts,
        )

    # ================================================================================ restart
    @property
    def counters(self) -> tuple[int, int]:
        """(orders created, executions reported): the sources of exchange and execution ids."""
        return self._order_n, self._exec_n

    def restore(self, orders: Iterable[SimOrder], counters: tuple[int, int]) -> None:
        """Load the orders and id counters a previous run left (gateway restart).

        Open orders rest again at their price with their stored queue estimate (stops wait for
        their trigger); their locks and margin are recomputed, so load the accounts first
        (:meth:`account`). Must be called before any request.
        """
        self._order_n = max(self._order_n, counters[0])
        self._exec_n = max(self._exec_n, counters[1])
        for o in orders:
            mkt = self._markets.get(o.iid)
            self._orders[o.key] = o
            if mkt is None or o.status not in _OPEN:
                continue
            self._open[o.key] = o
            if o.status is OrderStatus.Untriggered:
                mkt.stops.append(o)
            elif o.tick is not None:
                ahead = o.ahead
                mkt.add_resting(o)
                o.ahead = ahead  # the stored estimate, not the (empty) book's
                if mkt.l3:
                    mkt.l3_seq = max(mkt.l3_seq, o.l3_seq)
            self._relock(mkt, o)

    # ================================================================================ output
    def _emit(self, strat: str, msg: Msg) -> None:
        self._sink(strat, msg, self._kind)

    def _begin(self, kind: str, ts: int) -> None:
        self._kind = kind
        if ts > self._now:
            self._now = ts

    # ================================================================================ new
    def new_order(self, req: NewOrder, ts: int) -> None:
        """Handle a ``NewOrder`` arriving at the exchange at ``ts``.

        Answers ``NewOrderAck`` then fills / cancels, or ``NewOrderReject``.
        """
        self._begin("new", ts)
        try:
            mkt, order = self._validate_new(req, ts)
        except _Reject as r:
            self._emit(
                req.strat, NewOrderReject(cl_id=req.cl_id, code=r.code, reason=r.reason, ts=ts)
            )
            return
        self._orders[order.key] = order
        self._open[order.key] = order
        stop = order.stop_tick is not None
        order.ack(untriggered=stop)
        self._emit(
            order.strat,
            NewOrderAck(
                cl_id=order.cl_id,
                exch_id=order.exch_id,
                instrument_id=order.iid,
                side=order.side,
                price=mkt.price_texts[order.tick] if order.tick is not None else "0",
                qty=mkt.qty_texts[order.qty],
                leaves_qty=mkt.qty_texts[order.qty],
                ord_type=order.ord_type,
                tif=order.tif,
                exec_instr=order.exec_instr,
                ts=ts,
            ),
        )
        if stop:
            mkt.stops.append(order)
            self._relock(mkt, order)
        else:
            self._execute(mkt, order)

    def _validate_new(self, req: NewOrder, ts: int) -> tuple[MarketState, SimOrder]:
        mkt = self._markets.get(req.instrument_id)
        if mkt is None:
            raise _Reject(
                GtwRejectCode.UnknownInstrument, f"unknown instrument id {req.instrument_id}"
            )
        inst = mkt.inst
        if (req.strat, req.cl_id) in self._orders:
            raise _Reject(
                GtwRejectCode.DuplicateClientId, f"client order id {req.cl_id!r} already used"
            )
        if req.side not in _SIDES:
            raise _Reject(GtwRejectCode.InvalidRequest, f"side must be Buy or Sell, not {req.side}")
        ord_type = _LIMIT if req.ord_type is _TYPE_UNSET else req.ord_type
        tif = _GTC if req.tif is _TIF_UNSET else req.tif
        is_market = ord_type in MARKET_ORDER_TYPES
        is_stop = ord_type in STOP_ORDER_TYPES
        post_only = req.exec_instr is _POST_ONLY
        if is_market and post_only:
            raise _Reject(GtwRejectCode.InvalidRequest, "a market order cannot be post-only")
        if post_only and tif is not _GTC:
            raise _Reject(GtwRejectCode.InvalidRequest, f"post-only needs TIF GTC, not {tif.name}")
        tick = None if is_market else self._parse_price(mkt, req.price, "price")
        stop_tick = None
        if is_stop:
            if req.stop_price is None:
                raise _Reject(GtwRejectCode.InvalidPrice, f"{ord_type.name} needs a stop_price")
            stop_tick = self._parse_price(mkt, req.stop_price, "stop_price")
            if req.trigger_dir not in (TriggerDirection.Up, TriggerDirection.Down):
                raise _Reject(
                    GtwRejectCode.InvalidRequest, f"{ord_type.name} needs trigger_dir Up or Down"
                )
            self._check_trigger_side(mkt, stop_tick, req.trigger_dir)
        lots = self._parse_qty(mkt, req.qty)
        is_buy = req.side is _BUY
        acct = self.account(req.strat)
        # price used for notional and balance checks
        est_tick = tick if tick is not None else stop_tick
        if est_tick is None:
            est_tick = self._walk_estimate(mkt, is_buy, lots)
        if est_tick is not None and inst.min_notional:
            notional = mkt.price_of(est_tick) * mkt.qty_of(lots) * inst.contract_multiplier
            if notional < inst.min_notional:
                raise _Reject(
                    GtwRejectCode.InvalidQty,
                    f"notional {_s(notional)} below the minimum {_s(inst.min_notional)}",
                )
        if req.close_position:
            if inst.kind is InstrumentKind.Spot:
                raise _Reject(
                    GtwRejectCode.InvalidRequest, "close_position applies to derivatives only"
                )
            room = acct.reduce_room(inst, req.side)
            if mkt.qty_of(lots) > room:
                raise _Reject(
                    GtwRejectCode.ReduceOnlyWouldIncrease,
                    f"reduce-only {req.side.name} of {mkt.qty_texts[lots]} exceeds the "
                    f"position it can close ({_s(room)})",
                )
        if post_only and tick is not None and not is_stop:
            if self._crosses_market(mkt, is_buy, tick):
                raise _Reject(
                    GtwRejectCode.PostOnlyWouldCross,
                    f"post-only {req.side.name} at {mkt.price_texts[tick]} would take liquidity",
                )
            if self._crosses_own(mkt, req.strat, is_buy, tick):
                raise _Reject(
                    GtwRejectCode.PostOnlyWouldCross,
                    "post-only order would cross a resting order of the same strategy",
                )
        if tif is _FOK and not is_stop:
            avail = self._liquidity(mkt, is_buy, tick)
            if avail < lots:
                raise _Reject(
                    GtwRejectCode.FokNotFilled,
                    f"fill-or-kill for {mkt.qty_texts[lots]} but only "
                    f"{mkt.qty_texts[avail]} available within the limit",
                )
        if est_tick is not None:
            coin, need = acct.requirement(
                inst,
                req.side,
                mkt.price_of(est_tick),
                mkt.qty_of(lots),
                req.close_position,
                self.fees.rates(inst).taker,
            )
            avail_bal = acct.available(coin)
            if need > avail_bal:
                what = "margin" if inst.kind is not InstrumentKind.Spot else "balance"
                raise _Reject(
                    GtwRejectCode.InsufficientBalance,
                    f"insufficient {what}: needs {_r(need)} {coin}, available {_r(avail_bal)}",
                )
        self._order_n += 1
        order = SimOrder(
            req.strat,
            req.cl_id,
            f"{self._prefix}-{self._order_n}",
            req.instrument_id,
            req.side,
            tick,
            lots,
            ord_type,
            tif,
            req.exec_instr,
            req.close_position,
            stop_tick,
            req.trigger_dir,
            ts,
        )
        return mkt, order

    def _parse_price(self, mkt: MarketState, text: str | None, what: str) -> int:
        key = (mkt.inst.instrument_id, text or "")
        ticks = self._ticks_of.get(key)
        if ticks is None:
            ticks = self._parse_price_text(mkt, text, what)
            _remember(self._ticks_of, key, ticks)
        return ticks

    def _parse_qty(self, mkt: MarketState, text: str | None) -> int:
        key = (mkt.inst.instrument_id, text or "")
        lots = self._lots_of.get(key)
        if lots is None:
            lots = self._parse_qty_text(mkt, text)
            _remember(self._lots_of, key, lots)
        return lots

    @staticmethod
    def _parse_price_text(mkt: MarketState, text: str | None, what: str) -> int:
        if text is None or text == "":
            raise _Reject(GtwRejectCode.InvalidPrice, f"{what} is missing")
        why = decimal_problem(text, positive=True)
        if why is not None:
            raise _Reject(GtwRejectCode.InvalidPrice, f"{what} {why}")
        step = mkt.tick_size
        try:
            n, rem = divmod(Decimal(text), step)
        except InvalidOperation:  # DivisionImpossible: more ticks than the context's digits
            raise _Reject(
                GtwRejectCode.InvalidPrice,
                f"{what}: price {text!r} is out of range for the tick {step}",
            ) from None
        if rem:
            raise _Reject(
                GtwRejectCode.InvalidPrice,
                f"{what}: price {text} is not a multiple of the tick {step}",
            )
        ticks = int(n)
        if ticks <= 0:
            raise _Reject(GtwRejectCode.InvalidPrice, f"{what} must be > 0, got {text}")
        return ticks

    @staticmethod
    def _parse_qty_text(mkt: MarketState, text: str | None) -> int:
        inst = mkt.inst
        why = decimal_problem(text, positive=True)
        if why is not None:
            raise _Reject(GtwRejectCode.InvalidQty, f"qty {why}")
        q = Decimal(text)  # type: ignore[arg-type]  # a str: decimal_problem said so
        try:
            lots, rem = divmod(q, inst.lot_size)
        except InvalidOperation:  # DivisionImpossible: more lots than the context's digits
            raise _Reject(
                GtwRejectCode.InvalidQty, f"qty {text} is out of range for the lot {inst.lot_size}"
            ) from None
        if rem:
            raise _Reject(
                GtwRejectCode.InvalidQty, f"qty {text} is not a multiple of the lot {inst.lot_size}"
            )
        if q < inst.min_qty:
            raise _Reject(GtwRejectCode.InvalidQty, f"qty {text} below the minimum {inst.min_qty}")
        return int(lots)

    def _check_trigger_side(
        self, mkt: MarketState, stop_tick: int, direction: TriggerDirection
    ) -> None:
        ref2 = 2 * mkt.last_trade_tick if mkt.last_trade_tick is not None else mkt.mid2()
        if ref2 is None:
            return
        s2 = 2 * stop_tick
        if (direction is TriggerDirection.Up and ref2 >= s2) or (
            direction is TriggerDirection.Down and ref2 <= s2
        ):
            raise _Reject(
                GtwRejectCode.InvalidPrice,
                f"stop price {mkt.price_texts[stop_tick]} with trigger {direction.name} is "
                f"already reached (market {_s(ref2 * mkt.tick_size / 2)}): would trigger at once",
            )

    @staticmethod
    def _crosses_market(mkt: MarketState, is_buy: bool, tick: int) -> bool:
        if is_buy:
            ba = mkt.best_ask()
            return ba is not None and tick >= ba
        bb = mkt.best_bid()
        return bb is not None and tick <= bb

    @staticmethod
    def _crossing_ticks(mkt: MarketState, is_buy: bool, bound: int | None) -> list[int]:
        """Our resting prices on the side an order of ``is_buy`` would meet, within ``bound``
        (None: all), best first."""
        if is_buy:  # asks at or below the bound
            ticks = mkt.ask_ticks
            return ticks[:] if bound is None else ticks[: bisect_right(ticks, bound)]
        ticks = mkt.bid_ticks  # bids at or above the bound, highest first
        return ticks[::-1] if bound is None else ticks[bisect_left(ticks, bound) :][::-1]

    @classmethod
    def _crosses_own(cls, mkt: MarketState, strat: str, is_buy: bool, tick: int | None) -> bool:
        resting = mkt.resting(not is_buy)
        return any(
            o.strat == strat
            for t in cls._crossing_ticks(mkt, is_buy, tick)
            for o in resting.get(t, ())
        )

    @staticmethod
    def _liquidity(mkt: MarketState, is_buy: bool, limit: int | None) -> int:
        """Displayed lots an order could take within ``limit`` (None: the whole side); none
        while the venue's book is crossed (no continuous trading)."""
        if mkt.venue_crossed():
            return 0
        return sum(n for _, n in mkt.walk(ASK if is_buy else BID, limit))

    @staticmethod
    def _walk_bound(mkt: MarketState, is_buy: bool, lots: int) -> tuple[int | None, int | None]:
        """The deepest price a market order of ``lots`` reaches (None if the side runs out),
        and the deepest price of the side walked."""
        left = lots
        k = None
        for k, n in mkt.walk(ASK if is_buy else BID):
            left -= n
            if left <= 0:
                return k, k
        return None, k

    def _walk_estimate(self, mkt: MarketState, is_buy: bool, lots: int) -> int | None:
        """A price to check a market order's notional and balance with (deepest level reached)."""
        bound, deepest = self._walk_bound(mkt, is_buy, lots)
        if bound is not None:
            return bound
        return deepest if deepest is not None else mkt.last_trade_tick

    # ================================================================================ matching
    def _execute(self, mkt: MarketState, order: SimOrder) -> None:
        """Match a live (or just triggered / re-priced) order; rest or cancel what is left.

        While the venue's book is crossed (an auction, a pre-open) nothing matches: a limit
        order rests, an immediate one (market, IOC, FOK) is cancelled.
        """
        if mkt.venue_crossed():
            mkt.was_crossed = True  # check it against the book when the book uncrosses
            if order.tick is None or order.tif in (TIF.IOC, TIF.FOK):
                self._cancel(
                    order,
                    CancelCode.ImmediateOrCancel,
                    True,
                    f"{order.tif.name if order.tick is not None else 'market'} order cancelled: "
                    "the book is crossed (an auction or a pre-open), no continuous trading",
                )
            else:
                self._rest(mkt, order)
            return
        is_market = order.tick is None
        bound = self._walk_bound(mkt, order.is_buy, order.leaves)[0] if is_market else order.tick
        self._self_trade(mkt, order, bound)
        if order.tif is TIF.FOK and self._liquidity(mkt, order.is_buy, order.tick) < order.leaves:
            # a triggered fill-or-kill stop that the book cannot fill entirely
            self._cancel(order, CancelCode.ImmediateOrCancel, True, "FOK not fillable on trigger")
            return
        self._take(mkt, order)
        if order.status not in _OPEN or order.leaves <= 0:
            return
        if is_market or order.tif in (TIF.IOC, TIF.FOK):
            self._cancel(
                order,
                CancelCode.ImmediateOrCancel,
                True,
                f"{order.tif.name if not is_market else 'market'} remainder "
                f"{mkt.qty_texts[order.leaves]} cancelled",
            )
        else:
            self._rest(mkt, order)

    def _self_trade(self, mkt: MarketState, order: SimOrder, bound: int | None) -> None:
        resting = mkt.resting(not order.is_buy)
        for t in self._crossing_ticks(mkt, order.is_buy, bound):
            for o in list(resting.get(t, ())):
                if o.strat == order.strat:
                    self._cancel(
                        o,
                        CancelCode.SelfTradePrevention,
                        True,
                        f"self-trade prevention: order {order.cl_id} would match it",
                    )

    def _take(self, mkt: MarketState, order: SimOrder) -> None:
        """Walk the opposite displayed book as taker, consuming it in the sim's view."""
        side = ASK if order.is_buy else BID
        limit = order.tick
        while order.status in _OPEN and order.leaves > 0:
            t = mkt.best(side)
            if t is None or (limit is not None and (t > limit if order.is_buy else t < limit)):
                break
            avail = mkt.visible(side, t)
            done = self._fill(mkt, order, t, min(avail, order.leaves), maker=False)
            if done <= 0:
                break
            mkt.take(side, t, done)

    def _rest(self, mkt: MarketState, order: SimOrder) -> None:
        assert order.tick is not None
        mkt.add_resting(order)
        if mkt.l3:
            mkt.l3_seq += 1
            order.l3_seq = mkt.l3_seq
            order.ahead = mkt.l3_ahead(order)
        else:
            order.ahead = mkt.level(order.is_buy, order.tick)
        if order.status is OrderStatus.PendingNew:
            order.ack()
        self._relock(mkt, order)

    def _unrest(self, mkt: MarketState, order: SimOrder) -> None:
        if order.stop_tick is not None and order in mkt.stops:
            mkt.stops.remove(order)
            return
        mkt.remove_resting(order)

    def _relock(self, mkt: MarketState, order: SimOrder) -> None:
        acct = self.account(order.strat)
        tick = order.tick if order.tick is not None else order.stop_tick
        if order.status not in _OPEN or order.leaves <= 0 or tick is None:
            acct.unlock(order.key)
            return
        coin, need = acct.requirement(
            mkt.inst,
            order.side,
            mkt.price_of(tick),
            mkt.qty_of(order.leaves),
            order.reduce_only,
            self.fees.rates(mkt.inst).taker,
        )
        acct.lock(order.key, coin, need)

    def _fill(self, mkt: MarketState, order: SimOrder, tick: int, lots: int, maker: bool) -> int:
        """Execute ``lots`` of ``order`` at ``tick``; returns the lots actually filled."""
        inst = mkt.inst
        acct = self.account(order.strat)
        if order.reduce_only:
            room = int(acct.reduce_room(inst, order.side) // inst.lot_size)
            lots = min(lots, room)
            if lots <= 0:
                self._cancel(
                    order,
                    CancelCode.ExchangeCancel,
                    True,
                    "reduce-only order cancelled: no position left to reduce",
                )
                return 0
        price = mkt.price_of(tick)
        qty = mkt.qty_of(lots)
        fee = self.fees.fee(inst, price, qty, maker)
        acct.on_fill(inst, order.side, price, qty, fee, order.reduce_only)
        self._exec_n += 1
        if order.fill(lots):
            self._unrest(mkt, order)
            self._open.pop(order.key, None)
            acct.unlock(order.key)
        else:
            self._relock(mkt, order)
        leaves = order.leaves
        self._emit(
            order.strat,
            OrderExecution(
                cl_id=order.cl_id,
                exec_id=f"{self._prefix}-x{self._exec_n}",
                instrument_id=order.iid,
                side=order.side,
                price=mkt.price_texts[tick],
                fill_qty=mkt.qty_texts[lots],
                leaves_qty=mkt.qty_texts[leaves],
                exec_ts=self._now,
                fee=_n(fee),
                fee_coin=self.fees.fee_coin(inst),
                maker=maker,
                ts=self._now,
            ),
        )
        if order.reduce_only and leaves > 0 and not acct.reduce_room(inst, order.side):
            self._cancel(
                order, CancelCode.ExchangeCancel, True, "reduce-only remainder: position closed"
            )
        return lots

    def _cancel(self, order: SimOrder, code: CancelCode, unsolicited: bool, reason: str) -> None:
        mkt = self._markets[order.iid]
        order.cancel()
        self._unrest(mkt, order)
        self._open.pop(order.key, None)
        self.account(order.strat).unlock(order.key)
        self._emit(
            order.strat,
            OrderCancelled(
                cl_id=order.cl_id,
                unsolicited=unsolicited,
                engine_ts=self._now,
                cancel_code=code,
                reason=reason,
                ts=self._now,
            ),
        )

    # ================================================================================ modify
    def modify_order(self, req: ModifyOrder, ts: int) -> None:
        """Handle a ``ModifyOrder``: ``ModifyOrderAck`` (then any fills) or ``ModifyOrderReject``.

        A price change or a quantity increase sends the order to the back of the queue at its
        (new) price; a quantity decrease keeps its place. ``new_qty`` is the order's new total
        quantity, filled part included.
        """
        self._begin("modify", ts)
        try:
            order, mkt, tick, lots = self._validate_modify(req)
        except _Reject as r:
            self._emit(
                req.strat, ModifyOrderReject(cl_id=req.cl_id, code=r.code, reason=r.reason, ts=ts)
            )
            return
        requeue = tick != order.tick or lots > order.qty
        untriggered = order.status is OrderStatus.Untriggered
        if requeue and not untriggered:
            self._unrest(mkt, order)
        order.tick = tick
        if lots != order.qty:
            order.modify(lots)
        self._emit(
            order.strat,
            ModifyOrderAck(
                cl_id=order.cl_id,
                new_price=mkt.price_texts[tick] if tick is not None else "0",
                new_qty=mkt.qty_texts[lots],
                leaves_qty=mkt.qty_texts[order.leaves],
                ts=ts,
            ),
        )
        if requeue and not untriggered:
            self._execute(mkt, order)
        else:
            self._relock(mkt, order)

    def _validate_modify(self, req: ModifyOrder) -> tuple[SimOrder, MarketState, int | None, int]:
        order = self._open.get((req.strat, req.cl_id))
        if order is None:
            raise _Reject(GtwRejectCode.UnknownOrder, f"no open order {req.cl_id!r}")
        mkt = self._markets[order.iid]
        if req.new_price is None and req.new_qty is None:
            raise _Reject(GtwRejectCode.InvalidRequest, "modify needs new_price or new_qty")
        tick = order.tick
        if req.new_price is not None:
            if order.tick is None:
                raise _Reject(GtwRejectCode.InvalidRequest, "a market order has no price to modify")
            tick = self._parse_price(mkt, req.new_price, "new_price")
        lots = order.qty
        if req.new_qty is not None:
            lots = self._parse_qty(mkt, req.new_qty)
            if lots <= order.filled:
                raise _Reject(
                    GtwRejectCode.InvalidQty,
                    f"new qty {req.new_qty} must exceed the filled {mkt.qty_texts[order.filled]}",
                )
        inst = mkt.inst
        leaves = lots - order.filled
        acct = self.account(order.strat)
        if order.reduce_only and mkt.qty_of(leaves) > acct.reduce_room(inst, order.side):
            raise _Reject(
                GtwRejectCode.ReduceOnlyWouldIncrease, "reduce-only order larger than the position"
            )
        untriggered = order.status is OrderStatus.Untriggered
        if (
            order.exec_instr is _POST_ONLY
            and tick is not None
            and not untriggered
            and self._crosses_market(mkt, order.is_buy, tick)
        ):
            raise _Reject(
                GtwRejectCode.PostOnlyWouldCross,
                f"post-only at {mkt.price_texts[tick]} would take liquidity",
            )
        ref = tick if tick is not None else order.stop_tick
        if ref is not None:
            coin, need = acct.requirement(
                inst,
                order.side,
                mkt.price_of(ref),
                mkt.qty_of(leaves),
                order.reduce_only,
                self.fees.rates(inst).taker,
            )
            held = acct.lock_of(order.key)
            avail = acct.available(coin) + (held[1] if held and held[0] == coin else 0)
            if need > avail:
                raise _Reject(
                    GtwRejectCode.InsufficientBalance,
                    f"insufficient funds: needs {_r(need)} {coin}, available {_r(avail)}",
                )
        return order, mkt, tick, lots

    # ================================================================================ cancel
    def cancel_order(self, req: CancelOrder, ts: int) -> None:
        """Handle a ``CancelOrder``: ``CancelOrderAck`` + ``OrderCancelled``, or a reject."""
        self._begin("cancel", ts)
        order = self._open.get((req.strat, req.cl_id))
        if order is None or (req.instrument_id and order.iid != req.instrument_id):
            self._emit(
                req.strat,
                CancelOrderReject(
                    cl_id=req.cl_id,
                    code=GtwRejectCode.UnknownOrder,
                    reason=f"no open order {req.cl_id!r} on instrument {req.instrument_id}",
                    ts=ts,
                ),
            )
            return
        self._emit(req.strat, CancelOrderAck(cl_id=req.cl_id, ts=ts))
        self._cancel(order, CancelCode.CanceledByUser, False, "cancelled by user")

    def cancel_all(self, req: CancelAll, ts: int) -> None:
        """Handle a ``CancelAll``: ``CancelAllAck`` then one ``OrderCancelled`` per open order."""
        self._begin("cancel_all", ts)
        if req.instrument_id and req.instrument_id not in self._markets:
            self._emit(
                req.strat,
                CancelAllReject(
                    instrument_id=req.instrument_id,
                    code=GtwRejectCode.UnknownInstrument,
                    reason=f"unknown instrument id {req.instrument_id}",
                    ts=ts,
                ),
            )
            return
        self._emit(req.strat, CancelAllAck(instrument_id=req.instrument_id, ts=ts))
        code = CancelCode.StopEscalation if req.escalation else CancelCode.CancelAll
        reason = "stop escalation" if req.escalation else "cancel all"
        for o in self.open_orders(req.strat, req.instrument_id):
            self._cancel(o, code, req.escalation, reason)

    def cancel_everything(self, ts: int, reason: str = "gateway stopping") -> int:
        """Cancel every open order of every strategy (unsolicited); returns how many."""
        self._begin("fill", ts)
        orders = self.open_orders()
        for o in orders:
            self._cancel(o, CancelCode.ExchangeCancel, True, reason)
        return len(orders)

    # ================================================================================ fetch
    def fetch(self, req: FetchMsg, ts: int) -> None:
        """Answer a ``Fetch*`` request with the matching info report or a ``RequestReject``."""
        self._begin("fetch", ts)
        strat = req.strat
        rqst_type = type(req).__name__

        def emit(answer: Msg) -> None:
            self._emit(strat, echo_req_id(req, answer))

        if isinstance(req, FetchAccount):
            emit(AccountInfo(user_id=strat))
            return
        if isinstance(req, FetchWallet):
            acct = self.account(strat)
            emit(
                WalletInfo(
                    coin=req.coin,
                    total=_n(acct.wallet(req.coin).total),
                    available=_n(acct.available(req.coin)),
                ),
            )
            return
        if isinstance(req, FetchOrders):
            emit(
                OrdersInfo(
                    orders=[self.order_wire(o) for o in self.open_orders(strat, req.instrument_id)]
                ),
            )
            return
        mkt = self._markets.get(req.instrument_id)
        if mkt is None:
            emit(
                RequestReject(
                    code=GtwRejectCode.UnknownInstrument,
                    detail=f"unknown instrument id {req.instrument_id}",
                    rqst_type=rqst_type,
                    ts=ts,
                ),
            )
            return
        if isinstance(req, FetchPosition):
            if mkt.inst.kind is InstrumentKind.Spot:
                emit(
                    RequestReject(
                        code=GtwRejectCode.InvalidRequest,
                        detail=f"{mkt.inst.name} is spot: use fetch_wallet_info",
                        rqst_type=rqst_type,
                        ts=ts,
                    ),
                )
                return
            pos = self.account(strat).net_position(mkt.inst)
            emit(
                PositionInfo(
                    instrument_id=req.instrument_id, position=_s(pos.quantize(mkt.lot_size))
                ),
            )
        elif isinstance(req, FetchFunding):
            emit(
                FundingInfo(
                    instrument_id=req.instrument_id,
                    rate=_n(mkt.funding_rate),
                    next_ts=mkt.next_funding_ts,
                ),
            )
        else:
            o = self._orders.get((strat, req.cl_id))
            if o is None or o.iid != req.instrument_id:
                emit(
                    RequestReject(
                        code=GtwRejectCode.UnknownOrder,
                        detail=f"no order {req.cl_id!r} on instrument {req.instrument_id}",
                        rqst_type=rqst_type,
                        ts=ts,
                    ),
                )
                return
            emit(OrderStatusInfo(order=self.order_wire(o)))

    # ================================================================================ market data
    def on_market_data(self, msg: Msg, ts: int) -> None:
        """Apply one market-data message seen by the exchange at ``ts`` (other kinds are
        ignored)."""
        handle = self.md_handlers.get(type(msg))
        if handle is not None:
            handle(msg, ts)

    def on_book_update(self, msg: BookUpdate, ts: int) -> None:
        """Apply price-level changes (absolute sizes) to an own book; advance the queues of our
        orders at the prices that changed; fill the orders the book now reaches.

        With no order resting and nothing taken, a message costs O(1) on a shared book (the
        changes are not even read) and one book update per change on an own one.
        """
        mkt = self._markets.get(msg.iid)
        if mkt is None:
            return
        self._kind = "fill"  # _begin("fill", ts), inline (once per book message)
        if ts > self._now:
            self._now = ts
        if mkt.next_funding_ts:
            self._funding_due(mkt, ts)
        ch = msg.ch
        if mkt.own_book:
            # Messages from another process: a level that is not sane is not applied.
            why = _insane_level(ch)
            if why is not None:
                log.warning("sim %s: book message of %s skipped: %s", self.exchange, msg.iid, why)
                return
            mkt.book.apply(ch)
        mkt.hidden = False
        rb = mkt.resting_bids
        ra = mkt.resting_asks
        taken = mkt.taken
        if not (rb or ra or taken):
            if mkt.stops:
                self._after_book(mkt, False, False)
            return
        # Most changes of a deep book are away from our resting prices: one compiled pass picks
        # the changes at them (and says which sides were touched).
        if taken:
            for _action, side, t, _lots in ch:
                taken.pop((side, t), None)  # the venue changed the level: its own size again
        touched_bid, touched_ask, hits = changes_in_ranges(ch, mkt.bid_ticks, mkt.ask_ticks, rb, ra)
        for action, side, t, lots in hits:
            queue = (rb if side == BID else ra)[t]
            self._level_changed(mkt, side, t, 0 if action == DELETE else lots, queue)
        book = mkt.book
        if taken or mkt.was_crossed or mkt.stops or book.bid >= book.ask:
            self._after_book(mkt, touched_bid, touched_ask)
            return
        # _after_book's common case, inline (a continuous book, nothing taken, no stop order):
        # fills only where the opposite best reaches our best resting price.
        bt = mkt.bid_ticks
        if touched_ask and bt and book.ask <= bt[-1]:  # NO_ASK is above every tick
            self._cross_fill(mkt, True)
        at = mkt.ask_ticks
        if touched_bid and at and book.bid >= at[0]:  # NO_BID is below every tick
            self._cross_fill(mkt, False)

    def _after_book(self, mkt: MarketState, touched_bid: bool, touched_ask: bool) -> None:
        # O(1) unless the opposite best reaches our best resting price (the common case reads
        # the book's best tick directly: nothing taken, nothing hidden).
        book = mkt.book
        if book.bid >= book.ask and not mkt.hidden:  # mkt.venue_crossed(), inlined
            # An auction or a pre-open (or a match sent in several messages): no continuous
            # trading, so no fills from crossing the book and no stops triggered by its mid;
            # public trades still fill (on_trade_update).
            mkt.was_crossed = True
            return
        if mkt.was_crossed:
            # Uncrossed: our orders on both sides meet the continuous book again.
            mkt.was_crossed = False
            touched_bid = touched_ask = True
        plain = not mkt.taken and not mkt.hidden
        bt = mkt.bid_ticks
        if touched_ask and bt:
            a = mkt.book.ask if plain else mkt.best_ask()
            if a is not None and a <= bt[-1]:  # NO_ASK is above every tick
                self._cross_fill(mkt, True)
        at = mkt.ask_ticks
        if touched_bid and at:
            b = mkt.book.bid if plain else mkt.best_bid()
            if b is not None and b >= at[0]:  # NO_BID is below every tick
                self._cross_fill(mkt, False)
        if mkt.stops:
            m2 = mkt.mid2()
            if m2 is not None:
                self._check_stops(mkt, m2)

    def _level_changed(
        self, mkt: MarketState, side: int, t: int, new: int, queue: list[SimOrder]
    ) -> None:
        key = (side, t)
        seen = mkt.seen
        prev = seen.get(key, 0)
        seen[key] = new
        traded = mkt.traded.pop(key, 0)
        after_trades = max(0, prev - traded)
        cancelled = after_trades - new
        if cancelled > 0:
            model = self.queue_model
            for o in queue:
                behind = max(0, after_trades - o.ahead)
                o.ahead -= model.cancels_ahead(o.ahead, behind, cancelled)
        for o in queue:
            if o.ahead > new:
                o.ahead = new

    def _cross_fill(self, mkt: MarketState, bids: bool) -> None:
        """Fill our resting orders of one side that the opposite book now reaches: O(1) when it
        reaches none (our best resting price against its best)."""
        if bids:
            ticks = mkt.bid_ticks
            opp = ASK
            best = mkt.best_ask()
            if best is None or best > ticks[-1]:
                return
            crossing = ticks[bisect_left(ticks, best) :][::-1]  # highest first
        else:
            ticks = mkt.ask_ticks
            opp = BID
            best = mkt.best_bid()
            if best is None or best < ticks[0]:
                return
            crossing = ticks[: bisect_right(ticks, best)]  # lowest first
        resting = mkt.resting(bids)
        for t in crossing:
            best = mkt.best(opp)
            if best is None or ((best > t) if bids else (best < t)):
                return
            for o in list(resting.get(t, ())):
                while o.status in _OPEN:
                    bt = mkt.best(opp)
                    if bt is None or ((bt > t) if bids else (bt < t)):
                        break
                    avail = mkt.visible(opp, bt)
                    done = self._fill(mkt, o, t, min(avail, o.leaves), maker=True)
                    if done <= 0:
                        break
                    mkt.take(opp, bt, done)

    def on_trade_update(self, msg: TradeUpdate, ts: int) -> None:
        """Apply public trades: queue advance, fills, stop triggers."""
        mkt = self._markets.get(msg.iid)
        if mkt is None:
            return
        self._kind = "fill"  # _begin("fill", ts), inline (once per trade message)
        if ts > self._now:
            self._now = ts
        if mkt.next_funding_ts:
            self._funding_due(mkt, ts)
        for taker, t, lots, _ets, _tid in msg.tr:
            mkt.last_trade_tick = t
            if taker != BID and mkt.bid_ticks and t < mkt.bid_ticks[-1] + 1:
                self._trade_hits(mkt, True, t, lots)  # a sell (or unknown) taker hits bids
            if taker != ASK and mkt.ask_ticks and t > mkt.ask_ticks[0] - 1:
                self._trade_hits(mkt, False, t, lots)
            if mkt.stops:
                self._check_stops(mkt, 2 * t)

    def _trade_hits(self, mkt: MarketState, bids: bool, t: int, lots: int) -> None:
        """A trade at ``t`` meets our resting orders of one side: those it printed through fill
        (best price first), those at ``t`` advance in their queue and may fill."""
        resting = mkt.resting(bids)
        ticks = mkt.bid_ticks if bids else mkt.ask_ticks
        through = ticks[bisect_right(ticks, t) :][::-1] if bids else ticks[: bisect_left(ticks, t)]
        for rt in through:
            for o in list(resting.get(rt, ())):
                if o.status in _OPEN:
                    self._fill(mkt, o, rt, o.leaves, maker=True)
        queue = resting.get(t)
        if not queue:
            return
        key = (BID if bids else ASK, t)
        mkt.traded[key] = mkt.traded.get(key, 0) + lots
        own_leaves_before = 0
        own_fills_before = 0
        # (min and max written out: this runs for every trade at a price where we rest)
        for o in list(queue):
            pre = o.leaves
            room = lots - o.ahead - own_leaves_before
            x = 0 if room <= 0 else pre if pre <= room else room
            ahead = o.ahead - (lots - own_fills_before if lots > own_fills_before else 0)
            o.ahead = ahead if ahead > 0 else 0
            own_leaves_before += pre
            if x > 0 and o.status in _OPEN:
                own_fills_before += self._fill(mkt, o, t, x, maker=True)

    def on_level_update(self, msg: LevelUpdate, ts: int) -> None:
        """Apply order-level (level id) changes; queues become exact FIFO.

        The aggregate size of every price touched comes from its level ids (an own book is set
        to it), so liquidity the sim took there comes back when the venue next changes that price
        (as with price-level data). After a fresh image of the book (a re-snapshot), our orders
        keep their place: each is put behind as many lots as were ahead of it.
        """
        mkt = self._markets.get(msg.iid)
        if mkt is None:
            return
        self._begin("fill", ts)
        if mkt.next_funding_ts:
            self._funding_due(mkt, ts)
        mkt.l3 = True
        mkt.hidden = False
        levels, queues = mkt.l3_levels, mkt.l3_queues
        touched: set[tuple[int, int]] = set()
        for action, side, lid, t, lots in msg.ch:
            entry = levels.get(lid)
            if entry is not None:
                touched.add((entry[0], entry[1]))
            if action == DELETE:
                if entry is not None:
                    self._l3_remove(mkt, lid, entry[0], entry[1])
                continue
            touched.add((side, t))
            if entry is not None and entry[0] == side and entry[1] == t and lots <= entry[2]:
                entry[2] = lots  # a decrease keeps its place
                if lots == 0:
                    self._l3_remove(mkt, lid, side, t)
                continue
            if entry is not None:  # moved, or grew: loses its place
                self._l3_remove(mkt, lid, entry[0], entry[1])
            if lots <= 0:
                continue
            mkt.l3_seq += 1
            levels[lid] = [side, t, lots, mkt.l3_seq]
            queues.setdefault((side, t), {})[lid] = None
        reanchor = mkt.l3_reanchor
        mkt.l3_reanchor = False
        taken = mkt.taken
        for side, t in touched:
            if taken:
                taken.pop((side, t), None)
            if mkt.own_book:
                ids = queues.get((side, t))
                mkt.book.set(side, t, sum(levels[i][2] for i in ids) if ids else 0)
            queue = mkt.resting(side == BID).get(t)
            if queue:
                mkt.seen[(side, t)] = mkt.visible(side, t)
                for o in queue:
                    if reanchor:
                        mkt.l3_anchor(o)
                    else:
                        o.ahead = min(o.ahead, mkt.l3_ahead(o))
        self._after_book(mkt, any(s == BID for s, _ in touched), any(s == ASK for s, _ in touched))

    @staticmethod
    def _l3_remove(mkt: MarketState, lid: int, side: int, t: int) -> None:
        mkt.l3_levels.pop(lid, None)
        q = mkt.l3_queues.get((side, t))
        if q is not None:
            q.pop(lid, None)
            if not q:
                del mkt.l3_queues[(side, t)]

    def _check_stops(self, mkt: MarketState, price2: int) -> None:
        """Trigger stops whose price the market (2x ticks: trade or mid) has reached."""
        for o in list(mkt.stops):
            assert o.stop_tick is not None
            s2 = 2 * o.stop_tick
            up = o.trigger_dir is TriggerDirection.Up
            if (up and price2 >= s2) or (not up and price2 <= s2):
                mkt.stops.remove(o)
                o.trigger()
                self._execute(mkt, o)

    def on_feed_status(self, msg: FeedStatus, ts: int) -> None:
        """A snapshot start, invalid book or disconnection clears the book of that instrument."""
        if msg.status.name not in _CLEARING:
            return
        targets = [self._markets[msg.iid]] if msg.iid in self._markets else []
        if msg.iid == 0:
            targets = list(self._markets.values())
        for mkt in targets:
            mkt.clear_book()

    # ================================================================================ funding
    def on_funding_update(self, msg: FundingUpdate, ts: int) -> None:
        """Record the rate to be paid at ``next_ts`` (settling any funding time already due)."""
        mkt = self._markets.get(msg.iid)
        if mkt is None:
            return
        self._begin("fill", ts)
        self._funding_due(mkt, ts)
        why = decimal_problem(msg.rate, signed=True) or (
            decimal_problem(msg.mark, positive=True) if msg.mark else None
        )
        if why is not None:
            log.warning(
                "sim %s: unusable funding %r (mark %r) on %s: %s",
                self.exchange,
                msg.rate[:40],
                msg.mark[:40],
                msg.iid,
                why,
            )
            return
        mkt.funding_rate = Decimal(msg.rate)
        mkt.funding_mark = Decimal(msg.mark) if msg.mark else None
        mkt.next_funding_ts = msg.next_ts

    def settle_funding(self, instrument_id: int, ts: int) -> list[FundingPayment]:
        """Pay funding on ``instrument_id`` if its funding time has come by ``ts``."""
        mkt = self._markets.get(instrument_id)
        if mkt is None:
            return []
        self._begin("fill", ts)
        return self._funding_due(mkt, ts)

    def _funding_due(self, mkt: MarketState, ts: int) -> list[FundingPayment]:
        due = mkt.next_funding_ts
        if not due or ts < due or mkt.settled_funding_ts == due:
            return []
        mkt.settled_funding_ts = due
        mark = mkt.funding_mark if mkt.funding_mark is not None else mkt.reference_price()
        if mark is None or not mkt.funding_rate:
            return []
        paid: list[FundingPayment] = []
        for acct in self._accounts.values():
            paid.extend(acct.pay_funding(mkt.inst, mkt.funding_rate, mark, due))
        self.funding_payments.extend(paid)
        return paid


def order_notional(inst: Instrument, price: Decimal, qty: Decimal) -> Decimal:
    """Notional of an order in the settlement coin (re-exported for strategies' tools)."""
    return settle_notional(inst, price, qty)
