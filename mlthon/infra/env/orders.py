"""The env's order book-keeping: the orders a strategy sent or adopted, and what their reports
mean for it.

:class:`OrderTracker` (one per :class:`~mlthon.infra.env.strat_env.StratEnv`) owns:

* **the orders**: every order sent or adopted, with its
  :class:`~mlthon.basics.order_state.OrderLifecycle` (Decimal quantities), so that a status only
  moves forward and a closed order is never reopened. A fill reported after the order was
  closed (a venue's late execution after its cancel) is still passed to the strategy (it moved
  the position) and logged; the order stays closed. Where the gateway's figures differ from the
  env's (a modify the env did not see, the earlier fills of an adopted order), the gateway's win.
* **the reports**: each turned into its strategy callback once: a fill by ``exec_id`` per
  exchange, ``NewOrderAck``, ``CancelOrderAck`` and ``OrderCancelled`` once per order (a repeat is
  a redelivery after a reconnect or a gateway restart). ``recv_ts`` is the time the env received
  the report (its scheduler's clock), so latencies measured from it are real; ``exec_ts`` and
  ``engine_ts`` stay the exchange's.
* **unknown orders**: a report about a client id this env never sent, never asked about (a
  cancel or modify of an id it does not know is answered to the strategy) and never adopted is
  dropped with a WARNING and counted (:attr:`OrderTracker.unknown_reports`). Until the open orders
  of an exchange are known (the first answer listing them in this process), such reports are held
  instead, at most :data:`HELD_MAX`: after a restart (kill -9) the persistent session may deliver
  reports of the earlier life's orders before the adoption answer. Those of orders that get
  adopted are delivered after ``on_orders_info``, in the order they came. For the others the
  gateway is asked about the order (``FetchOrderStatus``): an order it knows is this strategy's,
  from an earlier life that ended while it was away (its fills moved the position): the
  strategy hears of it in ``on_orders_info`` (``adopted=True``, its final status), then gets its
  reports; an order the gateway does not know was never this strategy's, and its reports are
  dropped.
* **reconciliation and adoption** (``docs/reliability.md`` §3): after every start and whenever a
  gateway is back, the status of every order believed open is checked and every open order the
  env does not know is adopted. The env's own questions go through ``host.ask`` (their answers
  come back here, never to the strategy).
* **cancels in flight**: every cancel and cancel-all sent, until its answer (``OrderCancelled`` or
  ``CancelOrderReject``, the order's end; ``CancelAllAck`` / ``CancelAllReject``), so that a stop is
  acknowledged only after the cancels it caused were answered
  (:meth:`OrderTracker.cancels_in_flight`).
"""

from __future__ import annotations

import functools
import logging
from collections import deque
from collections.abc import Callable
from decimal import Decimal
from typing import Any, Protocol

import attrs

from mlthon.api.istrategy import IStrategy
from mlthon.basics.errors import InvalidArgument, InvalidArgumentType
from mlthon.basics.mlt_enum import (
    STOP_ORDER_TYPES,
    CancelCode,
    Exchange,
    GtwRejectCode,
    OrderStatus,
    Side,
)
from mlthon.basics.order import Order
from mlthon.basics.order_state import IllegalTransition, OrderLifecycle
from mlthon.basics.sanity import int_cl_id_problem
from mlthon.basics.values import Price, Qty, TextValues
from mlthon.infra.bus import messages as m
from mlthon.infra.bus.codec import order_from_wire
from mlthon.infra.clock import Scheduler
from mlthon.infra.reactor import Reactor

log = logging.getLogger(__name__)

#: Repeats remembered (execution ids, once-per-order reports); the oldest are forgotten past it.
SEEN_MAX = 1_000_000
#: Closed orders kept with their life cycle (older ones are still known by their id).
CLOSED_MAX = 100_000
#: Reports of unknown orders held while the open orders of their exchange are not known yet.
HELD_MAX = 10_000
#: Client ids the strategy asked about (cancel, modify) without the env knowing the order.
ASKED_MAX = 10_000
#: Cancels in flight remembered (a gateway that never answers must not grow this forever).
CANCELS_MAX = 100_000
#: An adoption question not answered within this is asked again when the gateway is back.
ADOPT_RETRY_NS = 10_000_000_000
# Unknown-order warnings: each of the first ones, then one in this many.
_WARN_FIRST = 100
# The prices and sizes of reports, as the strategy gets them: one object per text (they repeat).
_PRICES = TextValues(Price)
_QTYS = TextValues(Qty)
_WARN_EVERY = 1000

# Reports an order gets at most once (a repeat is a redelivery).
_ONCE_PER_ORDER = (m.NewOrderAck, m.OrderCancelled, m.CancelOrderAck)
# Reports about one order, by client id.
_ORDER_REPORTS = frozenset(
    {
        m.NewOrderAck,
        m.NewOrderReject,
        m.ModifyOrderAck,
        m.ModifyOrderReject,
        m.CancelOrderAck,
        m.CancelOrderReject,
        m.OrderExecution,
        m.OrderCancelled,
    }
)

Key = tuple[Exchange, str]
# ("one", exchange, client id) for a cancel, ("all", exchange, instrument id) for a cancel-all.
CancelKey = tuple[str, Exchange, str | int]
AnswerHandler = Callable[[Exchange, Any], None]


class OrderHost(Protocol):
    """What the tracker uses of its env."""

    strategy: IStrategy
    reactor: Reactor
    scheduler: Scheduler
    strat_name: str

    def ask(self, exchange: Exchange, msg: m.Msg, on_answer: AnswerHandler) -> bool:
        """Send the env's own fetch; its answer goes to ``on_answer``. False if not sent."""
        ...

    def reconciliation_done(self, summary: str, changed: bool) -> None:
        """Publish a reconciliation summary (status, Telegram) when something changed."""
        ...


@attrs.define(slots=True)
class TrackedOrder:
    """One order the env knows.

    Attributes:
        exchange: where it lives.
        instrument_id: its instrument.
        cl_id: its client id.
        life: status and quantities, changed only by legal transitions.
        adopted: placed by an earlier life of the strategy and adopted.
        reconciled: closed by a reconciliation (its fills may still come as executions).
        side: buy or sell (None: not known, an order adopted from a status answer without it).
        price: its limit price after the last acknowledged modify (0: a market order).
    """

    exchange: Exchange
    instrument_id: int
    cl_id: str
    life: OrderLifecycle[Decimal]
    adopted: bool = False
    reconciled: bool = False
    side: Side | None = None
    price: Decimal = Decimal(0)


def _numeric_id(cl: str) -> int | None:
    return int(cl) if cl.isascii() and cl.isdigit() else None


def _remember(seen: dict[Any, None], key: Any) -> None:
    seen[key] = None
    if len(seen) > SEEN_MAX:
        del seen[next(iter(seen))]


class OrderTracker:
    """The orders of one strategy and their reports; see the module docstring.

    Args:
        host: the env (strategy, reactor, scheduler, name, own questions, summaries).
    """

    def __init__(self, host: OrderHost) -> None:
        self._host = host
        #: Open orders by (exchange, client id).
        self.open: dict[Key, TrackedOrder] = {}
        self._closed: dict[Key, TrackedOrder] = {}
        #: Every numeric client id used by this env (sent, refused locally, or adopted).
        self.used_ids: set[int] = set()
        self._next_id = 0
        self._asked: dict[Key, None] = {}
        self._seen_execs: dict[tuple[Exchange, str], None] = {}
        self._seen_once: dict[tuple[type, Exchange, str], None] = {}
        self._held: deque[tuple[Exchange, Any, int]] = deque()
        # Unknown orders the gateway is being asked about, with the reports held for them.
        self._probing: dict[Key, list[tuple[Any, int]]] = {}
        self._listed: set[Exchange] = set()
        self._reconciling: dict[Exchange, set[str]] = {}
        self._adopting: dict[Exchange, tuple[int, frozenset[str]]] = {}
        self._cancels: dict[CancelKey, deque[int]] = {}
        self._cancel_seq = 0
        #: Called after a cancel in flight was answered (the stop acknowledgement waits on it).
        self.on_cancel_answered: Callable[[], None] | None = None
        #: Called with every report delivered (once: after the repeats are dropped), before the
        #: strategy's callback: the risk layer's figures (``mlthon.infra.risk``).
        self.on_delivered: Callable[[Exchange, Any], None] | None = None
        self.duplicate_fills = 0
        self.late_fills = 0
        self.unknown_reports = 0
        self.held_reports = 0
        self.earlier_life_orders = 0
        self.illegal_reports = 0
        self.reconciled_orders = 0
        self.adopted_orders = 0
        self.last_reconciliation = ""

    # --- client ids and requests sent ---------------------------------------------------------

    def new_id(self, client_id: object) -> int:
        """The client id of a new order: ``client_id`` if given (must be new and > 0), else the
        next free one (unique across restarts: microseconds since the epoch at the first order,
        then +1).

        Raises:
            InvalidArgumentType: ``client_id`` is not an int or None.
            InvalidArgument: it is not between 1 and 2**63-1, or was used already.
        """
        if client_id is None:
            if self._next_id == 0:
                self._next_id = self._host.scheduler.now_ns() // 1000
            cid = self._next_id
            while cid in self.used_ids:
                cid += 1
            self._next_id = cid + 1
        else:
            if isinstance(client_id, bool) or not isinstance(client_id, int):
                raise InvalidArgumentType("client_id", client_id, "must be an int or None")
            why = int_cl_id_problem(client_id)
            if why is not None:
                raise InvalidArgument("client_id", client_id, why)
            if client_id in self.used_ids:
                raise InvalidArgument("client_id", client_id, "was already used by this strategy")
            cid = client_id
        self.used_ids.add(cid)
        return cid

    def sent_new(
        self, ex: Exchange, cl: str, instrument_id: int, qty: Decimal, side: Side, price: Decimal
    ) -> None:
        """A new order went to the gateway (``price`` 0: a market order)."""
        self.open[(ex, cl)] = TrackedOrder(
            ex, instrument_id, cl, OrderLifecycle.new(qty), side=side, price=price
        )

    def sent_modify(self, ex: Exchange, cl: str) -> None:
        """A modify went to the gateway (its answer reaches the strategy even for an order the
        env does not know)."""
        if not self.knows(ex, cl):
            self._ask_about(ex, cl)

    def sent_cancel(self, ex: Exchange, cl: str) -> None:
        """A cancel went to the gateway: in flight until answered."""
        if not self.knows(ex, cl):
            self._ask_about(ex, cl)
        self._in_flight(("one", ex, cl))

    def sent_cancel_all(self, ex: Exchange, instrument_id: int) -> None:
        """A cancel-all went to the gateway: in flight until answered."""
        self._in_flight(("all", ex, instrument_id))

    def instrument_of(self, ex: Exchange, cl: str) -> int | None:
        """The instrument of open order ``cl`` (None if not open here)."""
        rec = self.open.get((ex, cl))
        return rec.instrument_id if rec is not None else None

    def knows(self, ex: Exchange, cl: str) -> bool:
        """True if this env sent, adopted or asked about order ``cl`` on ``ex``."""
        return (ex, cl) in self._asked or self._owns(ex, cl)

    def _owns(self, ex: Exchange, cl: str) -> bool:
        """True if this env sent or adopted order ``cl`` on ``ex``."""
        key = (ex, cl)
        if key in self.open or key in self._closed:
            return True
        n = _numeric_id(cl)
        return n is not None and n in self.used_ids

    def open_exchanges(self) -> set[Exchange]:
        """The exchanges with orders believed open."""
        return {ex for ex, _ in self.open}

    def _ask_about(self, ex: Exchange, cl: str) -> None:
        self._asked[(ex, cl)] = None
        if len(self._asked) > ASKED_MAX:
            del self._asked[next(iter(self._asked))]

    # --- cancels in flight ----------------------------------------------------------------------

    def cancel_mark(self) -> int:
        """A mark: :meth:`cancels_in_flight` counts the cancels sent after it."""
        return self._cancel_seq

    def cancels_in_flight(self, since: int) -> int:
        """Cancels and cancel-alls sent after mark ``since`` and not answered yet."""
        return sum(1 for q in self._cancels.values() for n in q if n > since)

    def _in_flight(self, key: CancelKey) -> None:
        self._cancel_seq += 1
        q = self._cancels.get(key)
        if q is None:
            if len(self._cancels) >= CANCELS_MAX:
                del self._cancels[next(iter(self._cancels))]
            q = self._cancels[key] = deque()
        q.append(self._cancel_seq)

    def _answered(self, key: CancelKey, *, every: bool = False) -> None:
        q = self._cancels.get(key)
        if not q:
            return
        if every:
            q.clear()
        else:
            q.popleft()
        if not q:
            del self._cancels[key]
        if self.on_cancel_answered is not None:
            self.on_cancel_answered()

    def _cancel_all_answered(self, ex: Exchange, instrument_id: int) -> None:
        key: CancelKey = ("all", ex, instrument_id)
        if key not in self._cancels:
            # An answer naming another instrument than asked: it answers the oldest of ``ex``.
            key = next((k for k in self._cancels if k[0] == "all" and k[1] is ex), key)
        self._answered(key)

    # --- reports --------------------------------------------------------------------------------

    def on_report(self, ex: Exchange, msg: Any, recv_ns: int) -> None:
        """A report from ``ex``'s gateway (not an answer to the env's own question), received at
        ``recv_ns``: delivered to the strategy, held, or dropped."""
        if type(msg) in _ORDER_REPORTS:
            cl = msg.cl_id
            if cl is not None and not self.knows(ex, cl):
                probing = self._probing.get((ex, cl))
                if probing is not None:
                    probing.append((msg, recv_ns))
                elif ex in self._listed:
                    self._drop_unknown(ex, msg, "")
                else:
                    self._hold(ex, msg, recv_ns)
                return
        self._deliver(ex, msg, recv_ns)

    def _hold(self, ex: Exchange, msg: Any, recv_ns: int) -> None:
        if len(self._held) >= HELD_MAX:
            old_ex, old, _ = self._held.popleft()
            self._drop_unknown(old_ex, old, f" ({HELD_MAX} reports were already waiting)")
        if not any(e is ex for e, _, _ in self._held):
            log.info(
                "env: %s for order %s on %s held until the open orders of %s are known "
                "(an earlier life's order is adopted, or the report dropped)",
                type(msg).__name__,
                msg.cl_id,
                ex.name,
                ex.name,
            )
        self._held.append((ex, msg, recv_ns))
        self.held_reports += 1

    def _release(self, ex: Exchange) -> None:
        """The open orders of ``ex`` are known: deliver the held reports of the orders adopted,
        drop the others."""
        self._listed.add(ex)
        mine = [item for item in self._held if item[0] is ex]
        if not mine:
            return
        self._held = deque(item for item in self._held if item[0] is not ex)
        unknown: dict[str, list[tuple[Any, int]]] = {}
        for _, msg, recv_ns in mine:
            if self.knows(ex, msg.cl_id):
                self._deliver(ex, msg, recv_ns)
            else:
                unknown.setdefault(msg.cl_id, []).append((msg, recv_ns))
        for cl, items in unknown.items():
            self._probe(ex, cl, items)

    def _probe(self, ex: Exchange, cl: str, items: list[tuple[Any, int]]) -> None:
        """Ask ``ex``'s gateway whether unknown order ``cl`` is this strategy's (an earlier
        life's order that ended while it was away); ``items`` wait for the answer."""
        iid = next((i for msg, _ in items if (i := getattr(msg, "instrument_id", 0))), 0)
        host = self._host
        if iid:
            self._probing[(ex, cl)] = items
            question = m.FetchOrderStatus(strat=host.strat_name, instrument_id=iid, cl_id=cl)
            if host.ask(ex, question, functools.partial(self._on_probe, cl)):
                return
            del self._probing[(ex, cl)]
        for msg, _ in items:
            self._drop_unknown(ex, msg, " (not among the open orders its gateway listed)")

    def _on_probe(self, cl: str, ex: Exchange, msg: Any) -> None:
        """The gateway's answer about unknown order ``cl``."""
        items = self._probing.pop((ex, cl), [])
        if not isinstance(msg, m.OrderStatusInfo) or msg.order.cl_id != cl:
            for report, _ in items:
                self._drop_unknown(ex, report, " (its gateway does not know that order)")
            return
        w = msg.order
        try:
            order = attrs.evolve(order_from_wire(ex, w), adopted=True)
        except (ValueError, TypeError) as exc:
            log.error("env: bad OrderStatusInfo from %s for %s dropped: %s", ex.name, cl, exc)
            return
        # This strategy's order, placed by an earlier life: known from now on, as it is now.
        # Its held reports are what happened to it; the life cycle starts before them.
        qty = order.qty._v
        held_fills = sum(
            (Decimal(r.fill_qty) for r, _ in items if isinstance(r, m.OrderExecution)), Decimal(0)
        )
        before = max(order.filled_qty._v - held_fills, Decimal(0))
        life = OrderLifecycle(
            qty=qty,
            filled=before,
            status=OrderStatus.PartiallyFilled if before else OrderStatus.PendingNew,
        )
        rec = TrackedOrder(
            ex, w.instrument_id, cl, life, adopted=True, side=w.side, price=order.price._v
        )
        self.open[(ex, cl)] = rec
        n = _numeric_id(cl)
        if n is not None:
            self.used_ids.add(n)
        self.earlier_life_orders += 1
        log.warning(
            "env: order %s on %s was placed by an earlier life of %s (%s now): its %d report(s) "
            "are delivered",
            cl,
            ex.name,
            self._host.strat_name,
            w.status.name,
            len(items),
        )
        host = self._host
        host.reactor.invoke(host.strategy.on_orders_info, ex, [order])
        for report, recv_ns in items:
            self._deliver(ex, report, recv_ns)
        if rec.life.is_open and not w.status.is_open:
            # Its ending was reported before this process existed and is not among the reports
            # held: the gateway's status closes it.
            if w.status is OrderStatus.Filled:
                self._step(rec, functools.partial(rec.life.fill, rec.life.leaves))
            else:
                self._step(rec, rec.life.cancel)
        elif w.status.is_open and rec.life.is_open:
            self.adopted_orders += 1

    def _drop_unknown(self, ex: Exchange, msg: Any, why: str) -> None:
        self.unknown_reports += 1
        n = self.unknown_reports
        if n <= _WARN_FIRST or n % _WARN_EVERY == 0:
            log.warning(
                "env: %s for order %s on %s dropped: %s never sent, asked about or adopted that "
                "order%s (%d unknown-order reports so far)",
                type(msg).__name__,
                msg.cl_id,
                ex.name,
                self._host.strat_name or "this strategy",
                why,
                n,
            )

    def _record(self, ex: Exchange, cl: str) -> TrackedOrder | None:
        key = (ex, cl)
        rec = self.open.get(key)
        return rec if rec is not None else self._closed.get(key)

    def _close(self, rec: TrackedOrder) -> None:
        key = (rec.exchange, rec.cl_id)
        if self.open.pop(key, None) is None:
            return
        self._closed[key] = rec
        if len(self._closed) > CLOSED_MAX:
            del self._closed[next(iter(self._closed))]
        # Whatever cancel was on its way for it has nothing left to do.
        self._answered(("one", rec.exchange, rec.cl_id), every=True)

    def _step(self, rec: TrackedOrder, event: Callable[[], object]) -> None:
        """Apply one event to ``rec``'s life cycle; an illegal one is logged and changes
        nothing (the report still reaches the strategy)."""
        try:
            event()
        except IllegalTransition as exc:
            self.illegal_reports += 1
            log.warning(
                "env: order %s on %s: %s; it stays %s",
                rec.cl_id,
                rec.exchange.name,
                exc,
                rec.life.status.name,
            )
        if not rec.life.is_open:
            self._close(rec)

    def _on_fill(self, ex: Exchange, cl: str, exec_id: str, fill: Decimal, leaves: Decimal) -> None:
        rec = self._record(ex, cl)
        if rec is None:
            return  # one of this env's ids whose record was forgotten (CLOSED_MAX)
        life = rec.life
        if not life.is_open:
            self.late_fills += 1
            level = logging.INFO if rec.reconciled else logging.WARNING
            log.log(
                level,
                "env: execution %s of order %s on %s after the order was closed (%s): passed to "
                "the strategy; the order stays closed",
                exec_id,
                cl,
                ex.name,
                life.status.name,
            )
            return
        total = life.filled + fill + leaves
        if fill > 0 and total != life.qty and total > life.filled:
            # The gateway's size differs from ours (a modify we did not see, the earlier fills
            # of an adopted order): its figure wins.
            life.modify(total)
        self._step(rec, functools.partial(life.fill, fill))

    def _on_modified(self, ex: Exchange, cl: str, leaves: Decimal, price: Decimal) -> None:
        rec = self.open.get((ex, cl))
        if rec is None:
            return
        if price:
            rec.price = price
        life = rec.life
        total = life.filled + leaves
        if total != life.qty and total > life.filled:
            self._step(rec, functools.partial(life.modify, total))

    def _deliver(self, ex: Exchange, msg: Any, recv_ns: int) -> None:
        """Turn one report into its strategy callback (once), updating the order's life."""
        host = self._host
        s = host.strategy
        inv = host.reactor.invoke
        kind = type(msg)
        try:
            if kind in _ONCE_PER_ORDER:
                once = (kind, ex, msg.cl_id)
                if once in self._seen_once:
                    log.info("env: repeated %s for %s dropped", kind.__name__, msg.cl_id)
                    return
                _remember(self._seen_once, once)
            delivered = self.on_delivered
            if delivered is not None and kind is not m.OrderExecution:
                delivered(ex, msg)
            if kind is m.OrderExecution:
                # At-least-once delivery may repeat a fill: each execution id reaches the
                # strategy once.
                key = (ex, msg.exec_id)
                if key in self._seen_execs:
                    self.duplicate_fills += 1
                    log.info("env: duplicate execution %s on %s dropped", msg.exec_id, ex.name)
                    return
                _remember(self._seen_execs, key)
                if delivered is not None:
                    delivered(ex, msg)
                price = _PRICES[msg.price]
                fill = _QTYS[msg.fill_qty]
                leaves = _QTYS[msg.leaves_qty]
                self._on_fill(ex, msg.cl_id, msg.exec_id, fill._v, leaves._v)
                inv(
                    s.on_order_execution,
                    ex,
                    msg.cl_id,
                    msg.side,
                    price,
                    fill,
                    leaves,
                    msg.exec_ts,
                    recv_ns,
                )
            elif kind is m.NewOrderAck:
                args = (_PRICES[msg.price], _QTYS[msg.qty], _QTYS[msg.leaves_qty])
                rec = self._record(ex, msg.cl_id)
                if rec is not None:
                    stop = msg.ord_type in STOP_ORDER_TYPES
                    self._step(rec, functools.partial(rec.life.ack, untriggered=stop))
                inv(
                    s.on_new_order_ack,
                    ex,
                    msg.cl_id,
                    msg.exch_id,
                    msg.instrument_id,
                    msg.side,
                    *args,
                    msg.ord_type,
                    msg.tif,
                    msg.exec_instr,
                )
            elif kind is m.OrderCancelled:
                rec = self._record(ex, msg.cl_id)
                if rec is not None:
                    self._step(rec, rec.life.cancel)
                self._answered(("one", ex, msg.cl_id), every=True)
                inv(
                    s.on_order_cancelled,
                    ex,
                    msg.cl_id,
                    msg.unsolicited,
                    msg.engine_ts,
                    recv_ns,
                    msg.cancel_code,
                    msg.reason,
                )
            elif kind is m.NewOrderReject:
                rec = self._record(ex, msg.cl_id)
                if rec is not None:
                    self._step(rec, rec.life.reject)
                inv(s.on_new_order_reject, ex, msg.cl_id, msg.code, msg.reason)
            elif kind is m.CancelOrderAck:
                inv(s.on_cancel_order_ack, ex, msg.cl_id)
            elif kind is m.CancelOrderReject:
                if msg.cl_id is not None:
                    self._answered(("one", ex, msg.cl_id))
                inv(s.on_cancel_order_reject, ex, msg.cl_id, msg.code, msg.reason)
            elif kind is m.ModifyOrderAck:
                args = (_PRICES[msg.new_price], _QTYS[msg.new_qty], _QTYS[msg.leaves_qty])
                self._on_modified(ex, msg.cl_id, args[2]._v, args[0]._v)
                inv(s.on_modify_order_ack, ex, msg.cl_id, *args)
            elif kind is m.ModifyOrderReject:
                inv(s.on_modify_order_reject, ex, msg.cl_id, msg.code, msg.reason)
            elif kind is m.CancelAllAck:
                self._cancel_all_answered(ex, msg.instrument_id)
                inv(s.on_cancel_all_ack, ex, msg.instrument_id)
            elif kind is m.CancelAllReject:
                self._cancel_all_answered(ex, msg.instrument_id)
                inv(s.on_cancel_all_reject, ex, msg.instrument_id, msg.code, msg.reason)
            elif kind is m.RequestReject:
                inv(s.on_request_reject, ex, msg.code, msg.detail, msg.rqst_type)
            elif kind is m.RateLimitInfo:
                inv(s.on_rate_limit_info, ex, msg.rate_limit, msg.rate_remaining, msg.reset_ts)
            elif kind is m.UnsupportedOp:
                inv(s.on_unsupported_op, ex, msg.msg_type)
            elif kind is m.AccountInfo:
                inv(s.on_account_info, ex, msg.user_id)
            elif kind is m.WalletInfo:
                inv(s.on_wallet_info, ex, msg.coin, Qty(msg.total), Qty(msg.available))
            elif kind is m.PositionInfo:
                inv(s.on_position_info, ex, msg.instrument_id, Qty(msg.position))
            elif kind is m.FundingInfo:
                inv(s.on_funding_info, ex, msg.instrument_id, float(msg.rate), msg.next_ts)
            elif kind is m.OrderStatusInfo:
                o = msg.order
                inv(
                    s.on_order_status,
                    ex,
                    o.instrument_id,
                    o.cl_id,
                    o.exch_id,
                    o.side,
                    Price(o.price),
                    Qty(o.leaves_qty),
                    o.status,
                    o.ord_type,
                    o.tif,
                    o.exec_instr,
                )
            elif kind is m.OrdersInfo:
                # The strategy's own answer also tells the env of orders it did not know.
                listed = [order_from_wire(ex, o) for o in msg.orders]
                for new in self.adopt(ex, msg.orders):
                    log.warning("env: open order %s on %s adopted", new.client_ord_id, ex.name)
                inv(s.on_orders_info, ex, listed)
                # Held reports wait for the env's own listing (of every instrument): the
                # strategy's may have been of one instrument only.
            else:
                log.warning("env: unexpected %s from %s; dropped", kind.__name__, ex.name)
        except (ValueError, TypeError) as exc:
            # A report whose values do not convert (a bad decimal string...) is a gateway bug.
            log.error("env: bad %s from %s dropped: %s", kind.__name__, ex.name, exc)

    # --- reconciliation and adoption ------------------------------------------------------------

    def reconcile(self, ex: Exchange) -> None:
        """Ask ``ex``'s gateway for the state of every order this env believes open there (after
        a reconnection, or when the gateway is back): an order that ended meanwhile without the
        strategy hearing it is closed with a callback, not left open forever. Then ask for all
        the strategy's open orders, to adopt those it does not know. The answers are handled
        here and not shown to the strategy."""
        if self._reconciling.get(ex):
            return
        checking: set[str] = set()
        for (e, cl), rec in list(self.open.items()):
            if e is ex and self._host.ask(
                ex,
                m.FetchOrderStatus(
                    strat=self._host.strat_name, instrument_id=rec.instrument_id, cl_id=cl
                ),
                functools.partial(self._on_status_check, cl),
            ):
                checking.add(cl)
        if checking:
            log.info("env: reconciling %d open orders on %s", len(checking), ex.name)
            self._reconciling[ex] = checking
        self._ask_open_orders(ex, frozenset(checking))

    def _ask_open_orders(self, ex: Exchange, checked: frozenset[str]) -> None:
        """Ask the gateway for all the strategy's open orders (after the status checks, so that
        the answer comes after theirs); :meth:`_on_open_orders` adopts those the env does not
        know. A gateway that is not ready is asked when it is back."""
        now = self._host.scheduler.now_ns()
        pending = self._adopting.get(ex)
        if pending is not None and now - pending[0] < ADOPT_RETRY_NS:
            return
        msg = m.FetchOrders(strat=self._host.strat_name, instrument_id=0)
        if self._host.ask(ex, msg, self._on_open_orders):
            self._adopting[ex] = (now, checked)

    def adopt(self, ex: Exchange, orders: list[m.OrderWire]) -> list[Order]:
        """Make every open order of ``orders`` the env does not know one of its own.

        Raises:
            ValueError: a value of the list does not convert (nothing is adopted then).
        """
        found: list[tuple[m.OrderWire, Order]] = []
        for w in orders:
            cl = w.cl_id
            if not w.status.is_open or self._owns(ex, cl):
                continue  # known (or placed by this env and ended since: a stale answer)
            found.append((w, attrs.evolve(order_from_wire(ex, w), adopted=True)))
        for w, order in found:
            qty = order.qty._v
            life = OrderLifecycle(qty=qty, filled=qty - order.leaves_qty._v, status=w.status)
            self.open[(ex, w.cl_id)] = TrackedOrder(
                ex, w.instrument_id, w.cl_id, life, True, side=w.side, price=order.price._v
            )
            n = _numeric_id(w.cl_id)
            if n is not None:
                self.used_ids.add(n)
        self.adopted_orders += len(found)
        return [order for _, order in found]

    def _on_open_orders(self, ex: Exchange, msg: Any) -> None:
        """The answer to the env's own FetchOrders: adopt, tell the strategy, report, then hand
        over the reports held for the orders adopted."""
        _, checked = self._adopting.pop(ex, (0, frozenset()))
        if not isinstance(msg, m.OrdersInfo):
            detail = getattr(msg, "detail", "") or type(msg).__name__
            if isinstance(msg, m.UnsupportedOp):
                log.warning(
                    "env: %s cannot list the open orders of %s (%s): nothing adopted",
                    ex.name,
                    self._host.strat_name,
                    detail,
                )
                self._release(ex)  # nothing will ever be adopted there
                return
            log.warning(
                "env: %s could not list the open orders of %s (%s); asked again when it is back",
                ex.name,
                self._host.strat_name,
                detail,
            )
            return
        try:
            adopted = self.adopt(ex, msg.orders)
        except (ValueError, TypeError) as exc:
            log.error("env: bad OrdersInfo from %s dropped: %s", ex.name, exc)
            return
        ended = sorted(c for c in checked if (ex, c) not in self.open)
        still = len(checked) - len(ended)
        summary = (
            f"reconciled with {ex.name}: checked {len(checked)} known open orders ({len(ended)} "
            f"ended while away, {still} still open), adopted {len(adopted)} unknown open orders"
            + (f" ({', '.join(o.client_ord_id for o in adopted[:20])})" if adopted else "")
        )
        self.last_reconciliation = summary
        changed = bool(adopted or ended)
        if changed:
            log.warning("env: %s", summary)
        else:
            log.info("env: %s", summary)
        self._host.reconciliation_done(summary, changed)
        if adopted:
            self._host.reactor.invoke(self._host.strategy.on_orders_info, ex, adopted)
        self._release(ex)

    def _on_status_check(self, cl: str, ex: Exchange, msg: Any) -> None:
        """The answer to the env's status check of order ``cl`` after a reconnection."""
        pending = self._reconciling.get(ex)
        if pending is not None:
            pending.discard(cl)
            if not pending:
                del self._reconciling[ex]
        rec = self.open.get((ex, cl))
        host = self._host
        if isinstance(msg, m.OrderStatusInfo):
            status = msg.order.status
            if status.is_open or rec is None:
                return
            self.reconciled_orders += 1
            rec.reconciled = True
            log.warning(
                "env: order %s on %s ended (%s) while the strategy was away",
                cl,
                ex.name,
                status.name,
            )
            if status is OrderStatus.Filled:
                # The fills come as executions (kept for us while away); the status tells the
                # strategy the order is done even if they do not.
                self._step(rec, functools.partial(rec.life.fill, rec.life.leaves))
                o = msg.order
                host.reactor.invoke(
                    host.strategy.on_order_status,
                    ex,
                    o.instrument_id,
                    cl,
                    o.exch_id,
                    o.side,
                    Price(o.price),
                    Qty(o.leaves_qty),
                    status,
                    o.ord_type,
                    o.tif,
                    o.exec_instr,
                )
            else:
                self._step(rec, rec.life.cancel)
                host.reactor.invoke(
                    host.strategy.on_order_cancelled,
                    ex,
                    cl,
                    True,
                    0,
                    host.scheduler.now_ns(),
                    CancelCode.ExchangeCancel,
                    f"order {status.name.lower()} while disconnected (found by reconciliation)",
                )
            return
        if isinstance(msg, m.RequestReject):
            if msg.code is GtwRejectCode.UnknownOrder and rec is not None:
                self.reconciled_orders += 1
                rec.reconciled = True
                self._step(rec, rec.life.cancel)
                log.warning("env: order %s unknown to %s after a reconnection", cl, ex.name)
                host.reactor.invoke(
                    host.strategy.on_new_order_reject,
                    ex,
                    cl,
                    GtwRejectCode.UnknownOrder,
                    "the gateway does not know this order (lost while disconnected)",
                )
            else:
                log.info("env: status check of %s on %s refused: %s", cl, ex.name, msg.detail)
