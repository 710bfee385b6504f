"""The risk layer of one strategy: the one check every order request passes before it leaves
the env, and the strategy's trading state.

:class:`RiskGuard` is built by the env (:class:`~mlthon.infra.env.strat_env.StratEnv`) from the
strategy's ``[risk]`` table (:mod:`.limits`) and asked, for every request, in the env's send
calls, after the request's arguments were checked and before anything is published:

* :meth:`RiskGuard.check_new` (``send_new_order``): the trading state, ``max_order_qty``,
  ``price_band_pct``, ``max_order_notional``, ``max_position``, ``max_gross_exposure``,
  ``max_open_orders``, ``max_order_rate``;
* :meth:`RiskGuard.check_modify` (``send_modify_order``): the same with the order's new figures
  in place of its old ones (``max_open_orders`` aside);
* :meth:`RiskGuard.check_cancel` (``send_cancel_order``): ``max_cancel_rate``. A cancel is
  refused for nothing else, and a cancel-all never.

Each returns None (the request goes out, and is counted) or the reason of the refusal, which
starts with the limit's key and gives the figures: ``max_order_qty 0.5 < 0.8 BTCUSDT``. The env
answers the refusal as any other: the strategy's reject callback with
:attr:`~mlthon.basics.mlt_enum.GtwRejectCode.RiskLimit`, on the next turn.

The figures come from the strategy's own requests and reports (:mod:`.positions`): the env hands
every report it delivers to :meth:`RiskGuard.on_report`. The reference price of an instrument
(the price band, the notional of a market order, the mark of a position) is the mid of the env's
book of it (its market data must be subscribed); a position without one is marked at its last
fill.

The trading state (:class:`~mlthon.basics.mlt_enum.TradingState`) is ``Active`` at start. A
daily-loss or drawdown limit breached (checked after every fill and every ``loss_check_s``) moves
it to ``Halted``; the operator sets it (``mlthon cmd <strat> risk halted``). Every change is told
to ``on_state``, which the env turns into the cancel-all, the optional flatten, the log line, the
status and the strategy's ``on_risk_state``.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import attrs

from mlthon.basics.instrument import Instrument
from mlthon.basics.mlt_enum import Exchange, Side, TradingState
from mlthon.basics.pnl import notional_of
from mlthon.basics.token_bucket import NS, Budget, TokenBucket
from mlthon.infra.bus import messages as m
from mlthon.infra.clock import Handle, Scheduler
from mlthon.infra.portfolio import ZERO, Holding, Key, Portfolio
from mlthon.infra.risk.limits import InstrumentLimits, RiskConfig
from mlthon.infra.risk.positions import WorkingOrder
from mlthon.infra.risk.states import stricter

log = logging.getLogger(__name__)

DAY_NS = 86_400 * NS
# Refusals logged: each of the first ones, then one in this many.
_LOG_FIRST = 20
_LOG_EVERY = 1000
#: Risk events kept (:attr:`RiskGuard.events`; the oldest are forgotten past it).
EVENTS_MAX = 100_000


@attrs.frozen
class RiskEvent:
    """One refusal or one change of the trading state, for reports and the status.

    Attributes:
        ts: when (the env's clock: simulated in backtests).
        kind: ``new``, ``modify`` or ``cancel`` (a refused request), or ``state``.
        key: the limit's key (``max_order_qty``...) for a refusal, the new state's name for a
            change.
        detail: the refusal's reason, or the change's.
        instrument_id: the instrument (0: not known, a cancel or a state change).
        instrument: its name ("" when not known).
        side: the order's side (None: not an order).
        price: its price ("" for a market order or none).
        qty: its quantity ("" for none).
        cl_id: the client id of the order refused ("" for none).
    """

    ts: int
    kind: str
    key: str
    detail: str
    instrument_id: int = 0
    instrument: str = ""
    side: Side | None = None
    price: str = ""
    qty: str = ""
    cl_id: str = ""


StateListener = Callable[[TradingState, str], None]
InstrumentOf = Callable[[Exchange, int], Instrument | None]
MarkOf = Callable[[Exchange, int], Decimal | None]
IsOpen = Callable[[Exchange, str], bool]


class RiskGuard:
    """The limits and the trading state of one strategy; see the module docstring.

    Args:
        config: the strategy's ``[risk]`` table.
        scheduler: the env's clock and timers.
        instrument_of: the instrument of (exchange, id), None if unknown.
        mark_of: the reference price of (exchange, id): the book's mid, None without one.
        is_open: whether the env still believes order (exchange, client id) open (orders closed
            behind the layer's back, by a reconciliation, are forgotten when it matters).
        on_state: told every change of the trading state, with its reason.
        name: the strategy's name, for the log.
        portfolio: the strategy's positions (the env's, which it keeps from the reports before
            this layer sees them); None: the layer keeps its own from the reports it is given.
    """

    def __init__(
        self,
        config: RiskConfig,
        scheduler: Scheduler,
        *,
        instrument_of: InstrumentOf,
        mark_of: MarkOf,
        is_open: IsOpen,
        on_state: StateListener,
        name: str = "",
        portfolio: Portfolio | None = None,
    ) -> None:
        self.config = config
        self.name = name
        self._scheduler = scheduler
        self._instrument_of = instrument_of
        self._mark_of = mark_of
        self._is_open = is_open
        self._on_state = on_state
        #: The strategy's own state (set by the operator for it, or by a loss limit) and why.
        self.state = TradingState.Active
        self.state_reason = "start"
        #: The desk's state (the operator's, for every strategy) and why.
        self.desk_state = TradingState.Active
        self.desk_reason = ""
        #: Requests refused, in all and by limit key.
        self.refusals = 0
        self.refused_by: dict[str, int] = {}
        #: The latest refusals and state changes, oldest first (at most :data:`EVENTS_MAX`).
        self.events: deque[RiskEvent] = deque(maxlen=EVENTS_MAX)
        self._feeds_portfolio = portfolio is None
        self.portfolio = portfolio or Portfolio(instrument_of, mark_of, {}, scheduler.now_ns)
        #: The positions by (exchange, instrument id): the portfolio's.
        self.holdings: dict[Key, Holding] = self.portfolio.holdings
        self.working: dict[tuple[Exchange, str], WorkingOrder] = {}
        self._limits: dict[Key, InstrumentLimits] = {}
        self._orders = _bucket("max_order_rate", config.max_order_rate, "orders and modifies")
        self._cancels = _bucket("max_cancel_rate", config.max_cancel_rate, "cancels")
        now = scheduler.now_ns()
        self._day = now // DAY_NS
        self._day_start = ZERO
        self._peak = ZERO
        self._timer: Handle | None = None
        if config.watches_loss:
            self._timer = scheduler.call_later(int(config.loss_check_s * NS), self._tick)

    def reconfigure(self, config: RiskConfig) -> None:
        """Apply new limits (the desk's defaults arrived at login); the figures, the refusals
        and the state are kept."""
        old = self.config
        self.config = config
        self._limits.clear()
        if config.max_order_rate != old.max_order_rate:
            self._orders = _bucket("max_order_rate", config.max_order_rate, "orders and modifies")
        if config.max_cancel_rate != old.max_cancel_rate:
            self._cancels = _bucket("max_cancel_rate", config.max_cancel_rate, "cancels")
        if config.watches_loss and self._timer is None:
            self._timer = self._scheduler.call_later(int(config.loss_check_s * NS), self._tick)

    # --- the checks ------------------------------------------------------------------------------

    def check_new(
        self, ex: Exchange, inst: Instrument, cl: str, side: Side, price: Decimal, qty: Decimal
    ) -> str | None:
        """Check a new order (``price`` 0: a market order). None: it may go, and is counted as
        working from now on; else the reason of its refusal."""
        h = self._holding(ex, inst)
        why = self._order_why(h, side, price, qty, qty, None)
        if why is not None and self._prune():
            why = self._order_why(h, side, price, qty, qty, None)
        if why is None:
            why = _rate_why(self._orders, self._now())
        if why is not None:
            return self._refuse(why, "new", inst, side, price, qty, cl)
        if self._orders is not None:
            self._orders.spend(1, self._now())
        ref = price or self._mark_of(ex, inst.instrument_id) or ZERO
        order = WorkingOrder(h, side, ref, qty)
        order.add(1)
        self.working[(ex, cl)] = order
        return None

    def check_modify(
        self, ex: Exchange, cl: str, new_price: Decimal | None, new_qty: Decimal | None
    ) -> str | None:
        """Check a modify of order ``cl`` to ``new_price`` / ``new_qty`` (None: unchanged).
        None: it may go; else the reason of its refusal. The order's figures change when the
        gateway acknowledges it."""
        order = self.working.get((ex, cl))
        why: str | None
        if order is None:
            # Not one the layer let through (adopted, or sent before it was configured): the
            # state and the rate only.
            why = self._state_why_unknown(cl)
        else:
            size = new_qty if new_qty is not None else order.filled + order.leaves
            leaves = max(size - order.filled, ZERO)
            price = new_price if new_price is not None else order.price
            why = self._order_why(order.holding, order.side, price, size, leaves, order)
        if why is None:
            why = _rate_why(self._orders, self._now())
        if why is not None:
            inst = order.holding.inst if order is not None else None
            side = order.side if order is not None else None
            return self._refuse(why, "modify", inst, side, new_price, new_qty, cl)
        if self._orders is not None:
            self._orders.spend(1, self._now())
        return None

    def check_cancel(self, inst: Instrument | None = None, cl: str = "") -> str | None:
        """Check a cancel of order ``cl`` of ``inst`` (only its rate: pulling an order is
        always allowed otherwise)."""
        bucket = self._cancels
        if bucket is None:
            return None
        now = self._now()
        why = _rate_why(bucket, now)
        if why is not None:
            return self._refuse(why, "cancel", inst, None, None, None, cl)
        bucket.spend(1, now)
        return None

    def _order_why(
        self,
        h: Holding,
        side: Side,
        price: Decimal,
        size: Decimal,
        leaves: Decimal,
        old: WorkingOrder | None,
    ) -> str | None:
        """Why an order of ``size`` (``leaves`` still to fill) at ``price`` on ``side`` may not
        go (None: it may). ``old``: the order it replaces (a modify)."""
        inst = h.inst
        name = inst.name
        state = stricter(self.state, self.desk_state)
        old_leaves = old.leaves if old is not None else ZERO
        if state is TradingState.Halted:
            return f"trading_state Halted ({self.effective_reason})"
        if state is TradingState.ReduceOnly:
            pos = h.qty
            working = h.working(side) - old_leaves + leaves
            shrinks = (side is Side.Sell and pos > 0) or (side is Side.Buy and pos < 0)
            if not shrinks or working > abs(pos):
                return (
                    f"trading_state ReduceOnly: {side.name} {size} {name} would not shrink the "
                    f"position {pos} (working on that side with it: {working})"
                )
        lim = self._limits_of(h)
        if lim.max_order_qty is not None and size > lim.max_order_qty:
            return f"max_order_qty {lim.max_order_qty} < {size} {name}"
        mark: Decimal | None = None
        if price and lim.price_band_pct is not None:
            mark = self._mark_of(inst.exchange, inst.instrument_id)
            if mark is None:
                return (
                    f"price_band_pct {lim.price_band_pct}: no reference price for {name} (no "
                    "valid two-sided book: its market data must be subscribed)"
                )
            # |price - mark| / mark > band %, without a division on the way of every order.
            if abs(price - mark) * 100 > lim.price_band_pct * mark:
                off = abs(price - mark) * 100 / mark
                return (
                    f"price_band_pct {lim.price_band_pct} < {off:.3f} {name} "
                    f"(price {price}, mid {mark})"
                )
        cfg = self.config
        px = price
        if not px and (lim.max_order_notional is not None or cfg.max_gross_exposure is not None):
            mark = mark or self._mark_of(inst.exchange, inst.instrument_id)
            if mark is None:
                key = (
                    "max_order_notional"
                    if lim.max_order_notional is not None
                    else "max_gross_exposure"
                )
                return f"{key}: no reference price for a market order on {name}"
            px = mark
        if lim.max_order_notional is not None:
            notional = notional_of(inst, size, px)
            if notional > lim.max_order_notional:
                return f"max_order_notional {lim.max_order_notional} < {notional} {name}"
        if lim.max_position is not None:
            working = h.working(side) - old_leaves + leaves
            reach = h.qty + working if side is Side.Buy else h.qty - working
            if abs(reach) > lim.max_position:
                return (
                    f"max_position {lim.max_position} < {abs(reach)} {name} (position {h.qty}, "
                    f"{side.name} working with this order {working})"
                )
        if cfg.max_gross_exposure is not None:
            gross = self.gross_exposure() + notional_of(inst, leaves, px)
            if old is not None:
                gross -= notional_of(inst, old.leaves, old.price)
            if gross > cfg.max_gross_exposure:
                return (
                    f"max_gross_exposure {cfg.max_gross_exposure} < {gross} (positions and open "
                    f"orders with this {name} order)"
                )
        if cfg.max_open_orders is not None and old is None:
            count = len(self.working) + 1
            if count > cfg.max_open_orders:
                return f"max_open_orders {cfg.max_open_orders} < {count}"
        return None

    def _state_why_unknown(self, cl: str) -> str | None:
        state = self.effective_state
        if state is TradingState.Halted:
            return f"trading_state Halted ({self.effective_reason})"
        if state is TradingState.ReduceOnly:
            return (
                f"trading_state ReduceOnly: order {cl} is not one the risk layer let through; "
                "its modify cannot be shown to shrink the position"
            )
        return None

    def _refuse(
        self,
        why: str,
        kind: str,
        inst: Instrument | None,
        side: Side | None,
        price: Decimal | None,
        qty: Decimal | None,
        cl: str,
    ) -> str:
        self.refusals += 1
        key = why.split(" ", 1)[0].rstrip(":")
        self.refused_by[key] = self.refused_by.get(key, 0) + 1
        self.events.append(
            RiskEvent(
                self._now(),
                kind,
                key,
                why,
                inst.instrument_id if inst is not None else 0,
                inst.name if inst is not None else "",
                side,
                str(price) if price else "",
                "" if qty is None else str(qty),
                cl,
            )
        )
        n = self.refusals
        if n <= _LOG_FIRST or n % _LOG_EVERY == 0:
            log.warning("risk[%s]: refused: %s (%d refusals so far)", self.name, why, n)
        return why

    def _prune(self) -> bool:
        """Forget the working orders the env no longer believes open (closed by a
        reconciliation, not by a report). True if there were any."""
        gone = [key for key in self.working if not self._is_open(*key)]
        for key in gone:
            self.working.pop(key).add(-1)
        return bool(gone)

    # --- figures ---------------------------------------------------------------------------------

    def _now(self) -> int:
        return self._scheduler.now_ns()

    def _holding(self, ex: Exchange, inst: Instrument) -> Holding:
        return self.portfolio.holding(ex, inst)

    def _limits_of(self, h: Holding) -> InstrumentLimits:
        inst = h.inst
        key = (inst.exchange, inst.instrument_id)
        lim = self._limits.get(key)
        if lim is None:
            lim = self._limits[key] = self.config.for_instrument(inst)
        return lim

    def _mark(self, h: Holding) -> Decimal:
        mark = self.portfolio.mark(h)
        return mark if mark is not None else h.entry

    def gross_exposure(self) -> Decimal:
        """Sum of ``|position x mark|`` and of the open orders' notional, in the quote coin."""
        total = ZERO
        for h in self.holdings.values():
            if h.qty:
                total += notional_of(h.inst, abs(h.qty), self._mark(h))
            total += h.working_notional
        return total

    def equity(self) -> Decimal:
        """Realised + unrealised (at the mark) - fees, of every instrument traded."""
        return self.portfolio.equity()

    # --- reports ---------------------------------------------------------------------------------

    def on_report(self, ex: Exchange, msg: Any) -> None:
        """A report the env delivers (once: repeats are dropped before): fills move the
        position and the working figures, ends take orders out."""
        if self._feeds_portfolio:
            self.portfolio.on_report(ex, msg)
        kind = type(msg)
        if kind is m.OrderExecution:
            self._on_fill(ex, msg)
        elif kind is m.OrderCancelled or kind is m.NewOrderReject:
            order = self.working.pop((ex, msg.cl_id), None)
            if order is not None:
                order.add(-1)
        elif kind is m.ModifyOrderAck:
            order = self.working.get((ex, msg.cl_id))
            if order is not None:
                order.add(-1)
                order.price = Decimal(msg.new_price)
                order.leaves = Decimal(msg.leaves_qty)
                order.add(1)

    def _on_fill(self, ex: Exchange, msg: m.OrderExecution) -> None:
        fill = Decimal(msg.fill_qty)
        key = (ex, msg.cl_id)
        order = self.working.get(key)
        if order is not None:
            order.add(-1)
            order.leaves = Decimal(msg.leaves_qty)
            order.filled += fill
            if order.leaves > 0:
                order.add(1)
            else:
                del self.working[key]
        # The position moved in the portfolio, before this.
        if self.config.watches_loss:
            self.check_loss()

    # --- loss limits and the trading state -------------------------------------------------

    def _tick(self) -> None:
        self._timer = self._scheduler.call_later(int(self.config.loss_check_s * NS), self._tick)
        self.check_loss()

    def check_loss(self) -> None:
        """Compare the equity with the day's start and peak (a new UTC day starts both again);
        a breach halts the strategy."""
        eq = self.equity()
        day = self._now() // DAY_NS
        if day != self._day:
            self._day = day
            self._day_start = self._peak = eq
        if eq > self._peak:
            self._peak = eq
        if self.state is TradingState.Halted:
            return
        cfg = self.config
        loss = self._day_start - eq
        drawdown = self._peak - eq
        if cfg.max_daily_loss is not None and loss > cfg.max_daily_loss:
            self.set_state(
                TradingState.Halted,
                f"max_daily_loss {cfg.max_daily_loss} < {loss} (equity {eq}, "
                f"{self._day_start} at the day's start)",
            )
        elif cfg.max_drawdown is not None and drawdown > cfg.max_drawdown:
            self.set_state(
                TradingState.Halted,
                f"max_drawdown {cfg.max_drawdown} < {drawdown} (equity {eq}, the day's peak "
                f"{self._peak})",
            )

    @property
    def effective_state(self) -> TradingState:
        """The state the checks apply: the stricter of the strategy's and the desk's."""
        return stricter(self.state, self.desk_state)

    @property
    def effective_reason(self) -> str:
        """Why the strategy is in :attr:`effective_state`."""
        if stricter(self.state, self.desk_state) is not self.state:
            return f"desk: {self.desk_reason}"
        return self.state_reason

    def set_state(self, state: TradingState, reason: str) -> bool:
        """Move the strategy's own state to ``state`` because of ``reason``; False if it was
        there already. Leaving ``Halted`` starts the day's loss and drawdown again from the
        equity now (the operator decided to go on). ``on_state`` is told when the state the
        checks apply changes (a desk-wide halt hides a strategy's own change)."""
        if state is self.state:
            return False
        was_effective = self.effective_state
        was = self.state
        self.state = state
        self.state_reason = reason
        if was is TradingState.Halted:
            self._day_start = self._peak = self.equity()
        self._changed(was_effective)
        return True

    def set_desk_state(self, state: TradingState, reason: str) -> bool:
        """Set the desk's state (every strategy's floor); False if it was there already."""
        if state is self.desk_state:
            return False
        was_effective = self.effective_state
        self.desk_state = state
        self.desk_reason = reason
        self._changed(was_effective)
        return True

    def _changed(self, was: TradingState) -> None:
        now = self.effective_state
        if now is not was:
            reason = self.effective_reason
            self.events.append(RiskEvent(self._now(), "state", now.name, reason))
            self._on_state(now, reason)

    def close(self) -> None:
        """Stop the loss timer (the env is closing)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


def _bucket(key: str, limit: int | None, unit: str) -> TokenBucket | None:
    return None if limit is None else TokenBucket(Budget(key, limit, 1.0, unit))


def _rate_why(bucket: TokenBucket | None, now: int) -> str | None:
    if bucket is None or bucket.available(now) >= 1:
        return None
    b = bucket.budget
    return (
        f"{b.name} {b.limit} < {b.limit + 1} {b.unit} in the last second "
        f"(retry in {bucket.wait_s(1, now):.3f} s)"
    )
