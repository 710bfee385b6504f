"""``LiveGateway``: a real venue on the bus, on top of one venue's :class:`VenueApi`.

Requests arrive from the bus (sync handlers); each is checked at once (ready, known instrument,
grid, duplicate id) and then served by a named task doing the signed REST call. Fills and
cancellations come from the private stream; every fill is reported once (de-duplicated by the
venue's execution id), whichever of the stream, a REST answer or a reconciliation saw it first.

Status: ``Connecting`` until the private stream is authenticated and open orders are reconciled,
then ``ReadyToTrade``; ``Maintenance`` when the venue says so; back to ``Connecting`` while the
stream reconnects (capped exponential back-off with jitter). After every reconnect the open orders
and their executions are fetched over REST and the missed reports are emitted.

Clock: signed requests carry the venue's time (local clock + an offset measured against the
venue's time endpoint before every private-stream connection). When the venue refuses a
request's timestamp (:class:`~mlthon.gateways.live.venue_clock.ClockRejected`: Binance ``-1021``,
Bybit ``10002``) the request is answered ``ClockOffset`` with the venue's reason and the offset
used, the gateway goes ``Connecting`` (the detail names the offset) and measures the offset again,
``ReadyToTrade`` once it has it.

Rate budgets: every request is taken from the venue's local budgets first
(:mod:`mlthon.gateways.live.budget`); one the venue would refuse is answered
``RateLimitExceeded`` naming the budget, without being sent.

Every request gets exactly one answer: a request task that raises (a bug) is logged and its
request answered ``ExchangeError``, unless its answer was already sent.

With an :class:`~mlthon.gateways.journal.OrderJournal` (``docs/reliability.md``): every order
request is journaled when it arrives (a repeat, by its exact bytes, is dropped) and every report
with the state of its order, committed before it is published; client order ids stay used across
restarts (``DuplicateClientId``) and an execution id is reported once, ever. A restarted gateway
loads its open orders and the execution ids from the journal, publishes again the reports the
broker may not have received, answers the requests it never handled, and reconciles the open
orders with the venue before it reports ``ReadyToTrade``.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import hashlib
import logging
import re
from collections import OrderedDict
from collections.abc import Callable, Coroutine
from decimal import Decimal, InvalidOperation
from typing import Any

import attrs

from mlthon.basics.errors import GatewayError, RateLimited
from mlthon.basics.instrument import Instrument
from mlthon.basics.mlt_enum import (
    STOP_ORDER_TYPES,
    TIF,
    CancelCode,
    ExecInstructions,
    GtwRejectCode,
    GtwStatus,
    OrderStatus,
    OrderType,
    Side,
)
from mlthon.basics.order_state import IllegalTransition
from mlthon.gateways.base import ANSWERS, FetchRequest, GatewayBase, reject_for
from mlthon.gateways.journal import OrderJournal
from mlthon.gateways.live.budget import BudgetExhausted
from mlthon.gateways.live.config import LiveGatewayConfig
from mlthon.gateways.live.model import (
    ClockRejected,
    Fill,
    LiveOrder,
    OrderEvent,
    RateUsage,
    StatusEvent,
    StreamEvent,
    VenueApi,
    VenueOrder,
    VenueRejected,
    VenueTimeout,
    VenueUnavailable,
)
from mlthon.infra.bus.bus import BusBase
from mlthon.infra.bus.messages import (
    AccountInfo,
    CancelAll,
    CancelAllAck,
    CancelAllReject,
    CancelOrder,
    CancelOrderAck,
    CancelOrderReject,
    FetchAccount,
    FetchFunding,
    FetchOrders,
    FetchOrderStatus,
    FetchPosition,
    FetchWallet,
    FundingInfo,
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
    RateLimitInfo,
    UnsupportedOp,
    WalletInfo,
    echo_req_id,
)
from mlthon.infra.bus.topics import Topics
from mlthon.infra.clock import Scheduler
from mlthon.venues.backoff import Backoff

log = logging.getLogger(__name__)

NS = 1_000_000_000
_THRESHOLDS = (50, 90, 100)
_MAX_SEEN = 200_000
_MAX_CLOSED = 10_000
_CLOCK_RETRY_S = 1.0


@attrs.define
class _Pending:
    """The request a task is serving, and whether its answer went out (see ``_send``)."""

    req: Any
    kind: str
    answered: bool = False


# The request of the running task (None outside request tasks): ``_send`` marks it answered.
_SERVING: contextvars.ContextVar[_Pending | None] = contextvars.ContextVar(
    "mlthon_live_serving", default=None
)


def _fmt(d: Decimal) -> str:
    """Canonical decimal text: no exponent, no trailing zeros."""
    return format(d.normalize(), "f")


def _dec(value: str | None, name: str) -> Decimal:
    try:
        d = Decimal(value or "")
    except InvalidOperation as exc:
        raise ValueError(f"{name} {value!r} is not a decimal") from exc
    if not d.is_finite():
        raise ValueError(f"{name} {value!r} is not finite")
    return d


VENUE_CID = re.compile(r"[A-Za-z0-9_-]{1,36}")
"""The client order ids both venues accept: Bybit's ``orderLinkId`` is at most 36 letters,
digits, ``-`` and ``_``; Binance's ``newClientOrderId`` matches ``^[\\.A-Z\\:/a-z0-9_-]{1,36}$``,
a superset."""
_PLAIN_STRAT = re.compile(r"[A-Za-z0-9_]+")


def venue_client_id(strat: str, cl_id: str, max_len: int = 36) -> str:
    """The client order id sent to the venue (always :data:`VENUE_CID`-legal, deterministic).

    ``<strat>-<cl_id>`` when the strategy's name holds letters, digits and ``_`` only, the client
    id is legal and both fit in ``max_len``: it reads back unambiguously (the first ``-`` ends
    the strategy's name). Otherwise (a ``.`` or ``-`` in the name, a long pair) ``h`` and 35 hex
    digits of SHA-256 of both, which never contains a ``-`` and so never equals a readable id.
    The gateway maps the venue's id back to (strategy, client id) through its orders, which the
    journal keeps across restarts (``venue_cid`` of each order).
    """
    raw = f"{strat}-{cl_id}"
    if (
        len(raw) <= max_len
        and _PLAIN_STRAT.fullmatch(strat) is not None
        and VENUE_CID.fullmatch(cl_id) is not None
    ):
        return raw
    digest = hashlib.sha256(f"{strat}\x00{cl_id}".encode()).hexdigest()
    return "h" + digest[: max_len - 1]


class LiveGateway(GatewayBase):
    """A venue gateway: bus requests in, signed REST out, reports from REST and the stream.

    Args:
        bus: the bus.
        scheduler: time and timers.
        topics: topic names.
        config: the live configuration.
        api: the venue's I/O seam.
        instruments: the instruments to serve (grids refreshed from the venue in :meth:`run`).
        logger: where to log.
        journal: the order journal (None: nothing survives a restart).
    """

    def __init__(
        self,
        bus: BusBase,
        scheduler: Scheduler,
        topics: Topics,
        config: LiveGatewayConfig,
        api: VenueApi,
        instruments: list[Instrument],
        *,
        logger: logging.Logger | None = None,
        journal: OrderJournal | None = None,
    ) -> None:
        super().__init__(
            bus,
            scheduler,
            topics,
            config.exchange,
            logger or log,
            request_ttl_ns=config.request_ttl_ns,
            overload_lag_ns=config.overload_lag_ns,
        )
        self.config = config
        self.api = api
        self.journal = journal
        self.published_seq = 0  # journal seq of the last report handed to the bus
        self._restored: set[str] = set()  # venue ids of orders loaded from the journal
        self.instruments: dict[int, Instrument] = {i.instrument_id: i for i in instruments}
        self.orders: dict[str, LiveOrder] = {}
        self._by_strat: dict[tuple[str, str], str] = {}
        self._seen_execs: OrderedDict[str, None] = OrderedDict()
        self._closed: OrderedDict[str, None] = OrderedDict()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._stop = asyncio.Event()
        self._started = False
        self._ready = False
        self._blocked_until = 0
        self._announced: dict[str, tuple[int, set[int]]] = {}
        self.backoff = Backoff(cap_s=config.reconnect_max_s)
        self.connects = 0
        self.reconciled_fills = 0
        self._stream_up = False  # the private stream is connected and reconciled
        self._clock_off = False  # the venue refused a timestamp; the offset is being measured
        self.clock_rejects = 0
        api.on_clock_reject = self._on_clock_reject

    @property
    def name(self) -> str:
        """``gateway[<exchange>]``: the prefix of task names and log lines."""
        return f"gateway[{self.exchange.name}]"

    # ================================================================================ lifecycle
    def start(self) -> None:
        """Subscribe to requests and announce ``Connecting`` (``run`` does the connecting)."""
        if self._started:
            return
        self._started = True
        self.publish_status(GtwStatus.Connecting, "starting")
        self.subscribe_requests()

    def stop(self) -> None:
        """Ask :meth:`run` to cancel the open orders and finish."""
        self._stop.set()

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Serve until ``stop`` (or :meth:`stop`) is set: open the session, load the grids,
        keep the private stream up; on the way out cancel the open orders (if configured),
        announce the stop and unsubscribe.

        Raises:
            GatewayError: the venue could not be reached to load the instruments.
        """
        await self.api.open()
        try:
            loaded = await self.api.load_instruments(list(self.instruments.values()))
            self.instruments = {i.instrument_id: i for i in loaded}
            if self.journal is not None:
                self._restore(self.journal)
            self.start()
            async with asyncio.TaskGroup() as tg:
                stream = tg.create_task(self._stream_loop(), name=f"{self.name}.stream")
                waiters = [self._stop.wait()]
                if stop is not None:
                    waiters.append(stop.wait())
                done = [tg.create_task(w, name=f"{self.name}.stop") for w in waiters]
                await asyncio.wait(done, return_when=asyncio.FIRST_COMPLETED)
                self._stop.set()  # ends the maintenance probe and the stream's back-off waits
                for t in done:
                    t.cancel()
                stream.cancel()
            await self._shutdown()
        finally:
            await self.api.close()

    async def _shutdown(self) -> None:
        self._ready = False
        n = 0
        if self.config.cancel_on_stop:
            open_orders = [o for o in self.orders.values() if not o.closed and o.acked]
            results = await asyncio.gather(
                *(self._cancel_one(o, "all", CancelCode.CancelAll) for o in open_orders),
                return_exceptions=True,
            )
            n = sum(1 for r in results if r is True)
        pending = [t for t in self._tasks if not t.done()]
        if pending:
            _, late = await asyncio.wait(pending, timeout=self.config.request_timeout_s)
            for t in late:
                self.log.warning("%s: cancelling straggler %s", self.name, t.get_name())
                t.cancel()
        self.publish_status(GtwStatus.Connecting, f"stopped; {n} open orders cancelled")
        self.unsubscribe_all()
        self._started = False

    def _spawn(self, coro: Coroutine[Any, Any, Any], role: str) -> None:
        task = asyncio.get_running_loop().create_task(
            coro, name=f"{self.name}.{role}", context=contextvars.Context()
        )
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _serve(
        self,
        coro: Coroutine[Any, Any, Any],
        role: str,
        req: Any,
        kind: str,
        seq: int = 0,
        settled: Callable[[], bool] | None = None,
    ) -> None:
        """Spawn the task serving request ``req``: if it raises (a bug), the request is answered
        ``ExchangeError`` unless its answer went out already (or ``settled()`` says the venue's
        stream answered it)."""
        pending = _Pending(req, kind)

        async def guarded() -> None:
            _SERVING.set(pending)
            try:
                await coro
            except Exception as exc:
                if pending.answered or (settled is not None and settled()):
                    self.faults += 1
                    self.log.error(
                        "%s: %s of %s failed after its answer",
                        self.name,
                        kind,
                        req.strat,
                        exc_info=exc,
                    )
                    return
                self.answer_fault(req, kind, exc, seq)

        self._spawn(guarded(), role)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            self.log.error("%s: task %s failed", self.name, task.get_name(), exc_info=exc)

    # ================================================================================ stream
    async def _stream_loop(self) -> None:
        while not self._stop.is_set():
            try:
                await self._sync_clock()
                await self.api.run_private_stream(self._on_connected, self._on_events)
                why = "private stream closed"
            except VenueUnavailable as exc:
                why = exc.detail
                if exc.maintenance:
                    self._ready = False
                    self.publish_status(GtwStatus.Maintenance, exc.detail)
            except GatewayError as exc:
                why = str(exc)
            self._stream_up = False
            self._ready = False
            if self.status is not GtwStatus.Maintenance:
                self.publish_status(GtwStatus.Connecting, f"reconnecting: {why}")
            delay = self.backoff.next_delay()
            self.log.warning("%s: %s; reconnecting in %.2fs", self.name, why, delay)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._stop.wait()

    async def _on_connected(self) -> None:
        self.connects += 1
        await self.reconcile()
        self.backoff.reset()
        self._stream_up = True
        if self._clock_off:  # the resync task announces ReadyToTrade once it has the offset
            return
        self._ready = True
        self.publish_status(GtwStatus.ReadyToTrade, "private stream up, orders reconciled")

    # ================================================================================ clock
    async def _sync_clock(self) -> bool:
        """Measure the venue's clock offset; False (logged) if the venue did not tell."""
        clock = self.api.clock
        try:
            offset = await self.api.sync_clock()
        except GatewayError as exc:
            self.log.warning(
                "%s: venue clock not measured (%s); signing with offset %+d ms",
                self.name,
                exc,
                clock.offset_ms,
            )
            return False
        self._clock_off = False
        level = logging.WARNING if abs(offset) > self.config.recv_window_ms // 2 else logging.INFO
        self.log.log(
            level,
            "%s: venue clock offset %+d ms (round trip %d ms)",
            self.name,
            offset,
            clock.rtt_ms,
        )
        return True

    def _on_clock_reject(self, exc: ClockRejected) -> None:
        """The venue refused a request's timestamp: out of ``ReadyToTrade`` until the offset is
        measured again."""
        self.clock_rejects += 1
        if self._clock_off:
            return
        self._clock_off = True
        self._ready = False
        if self.status is not GtwStatus.Maintenance:
            self.publish_status(
                GtwStatus.Connecting,
                f"clock: the venue refused a request's timestamp (signed with offset "
                f"{exc.offset_ms:+d} ms, receive window {self.config.recv_window_ms} ms); "
                "measuring the venue's clock offset again",
            )
        if not self._stop.is_set():
            self._spawn(self._resync_clock(), "clock_resync")

    async def _resync_clock(self) -> None:
        """Measure the offset until the venue answers; then ``ReadyToTrade`` (if the stream is
        up: otherwise its reconnection announces it)."""
        while self._clock_off and not self._stop.is_set():
            if await self._sync_clock():
                break
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_CLOCK_RETRY_S):
                    await self._stop.wait()
        if self._clock_off or self._stop.is_set():
            return
        if self._stream_up and self.status is not GtwStatus.Maintenance:
            self._ready = True
            self.publish_status(
                GtwStatus.ReadyToTrade,
                f"venue clock offset measured again: {self.api.clock.offset_ms:+d} ms",
            )

    def _on_events(self, events: list[StreamEvent]) -> None:
        for ev in events:
            if isinstance(ev, StatusEvent):
                self._ready = not ev.maintenance
                self.publish_status(
                    GtwStatus.Maintenance if ev.maintenance else GtwStatus.ReadyToTrade, ev.detail
                )
            elif isinstance(ev, OrderEvent):
                self._on_order_event(ev)

    def _on_order_event(self, ev: OrderEvent) -> None:
        order = self.orders.get(ev.order.venue_cid)
        if order is None:
            self.log.debug("%s: update of a foreign order %s", self.name, ev.order.venue_cid)
            return
        if ev.fill is not None:
            self._apply_fill(order, ev.fill)
        self._apply_venue_order(order, ev.order, from_stream=True)

    async def reconcile(self) -> None:
        """Bring every order we believe open in line with the venue: acks, fills and
        cancellations the strategies missed are emitted now (each fill once)."""
        mine = [o for o in self.orders.values() if not o.closed]
        if not mine:
            return
        venue_open = {
            vo.venue_cid: vo for vo in await self.api.open_orders(list(self.instruments.values()))
        }
        for order in mine:
            for fill in await self.api.order_fills(order):
                if self._apply_fill(order, fill):
                    self.reconciled_fills += 1
            vo = venue_open.get(order.venue_cid)
            if vo is None:
                vo = await self.api.query_order(order)
            if vo is not None:
                self._apply_venue_order(order, vo, from_stream=True)
                self._take_venue_terms(order, vo)
            elif order.venue_cid in self._restored and not order.acked:
                # placed by a previous run that died before the venue answered: never arrived
                self._new_rejected(
                    order, GtwRejectCode.GtwNotReady, "gateway restarted before the venue had it"
                )
            elif order.status is OrderStatus.PendingNew and not order.acked:
                continue  # its NewOrder task is still deciding
        self.log.info(
            "%s: reconciled %d orders (%d missed fills)",
            self.name,
            len(mine),
            self.reconciled_fills,
        )

    def _take_venue_terms(self, order: LiveOrder, vo: VenueOrder) -> None:
        """Follow the venue's price and size of an open order when they differ from ours: a
        modify sent by a previous run that died before the answer may have been applied (that
        run's request was answered ``GtwNotReady`` at restart). The strategy gets a
        ``ModifyOrderAck`` with the venue's terms."""
        if order.closed or vo.status not in (OrderStatus.New, OrderStatus.PartiallyFilled):
            return
        if not vo.price or not vo.qty or (vo.price == order.price and vo.qty == order.qty):
            return
        self.log.warning(
            "%s: order %s/%s is %s @ %s at the venue, not %s @ %s: taking the venue's terms",
            self.name,
            order.strat,
            order.cl_id,
            vo.qty,
            vo.price,
            order.qty,
            order.price,
        )
        order.price = vo.price
        self._resize(order, vo.qty)
        self._report(
            order,
            ModifyOrderAck(
                cl_id=order.cl_id,
                new_price=_fmt(vo.price),
                new_qty=_fmt(vo.qty),
                leaves_qty=_fmt(order.leaves),
                ts=self._now(),
            ),
        )

    # ================================================================================ state
    def _report(self, order: LiveOrder, msg: Msg, *, done: int = 0) -> None:
        self._send(order.strat, msg, order=order, done=done)

    def publish_report(self, strat: str, msg: Msg) -> None:
        """Send a report to one strategy, journaled first when there is a journal."""
        self._send(strat, msg)

    def _send(self, strat: str, msg: Msg, *, order: LiveOrder | None = None, done: int = 0) -> None:
        """Journal ``msg`` (with its order's state and the request it answers) in one
        committed transaction, then publish it; an execution already journaled is not sent."""
        pending = _SERVING.get()
        if (
            pending is not None
            and not pending.answered
            and strat == pending.req.strat
            and isinstance(msg, ANSWERS[pending.kind])
        ):
            pending.answered = True
        j = self.journal
        seq = 0
        if j is not None:
            if order is not None:
                self._stage_order(j, order)
            if done:
                j.request_done(done)
            seq = j.add_report(strat, msg, self._now()) or 0
            j.commit()
            if not seq:
                self.log.info("%s: %s already journaled; not sent again", self.name, msg)
                return
        super().publish_report(strat, msg)
        self.published_seq = max(self.published_seq, seq)

    def _stage_order(self, j: OrderJournal, order: LiveOrder) -> None:
        if self.orders.get(order.venue_cid) is order:
            j.save_order(order.strat, order.cl_id, _order_state(order))
        else:  # rejected (forgotten): its id may be used again
            j.drop_order(order.strat, order.cl_id)

    def _save(self, order: LiveOrder, done: int = 0) -> None:
        """Store an order's state (and mark the request that made it handled) now."""
        j = self.journal
        if j is not None:
            self._stage_order(j, order)
            if done:
                j.request_done(done)
            j.commit()

    def _request_done(self, seq: int) -> None:
        if seq and self.journal is not None:
            self.journal.request_done(seq)
            self.journal.commit()

    def _restore(self, j: OrderJournal) -> None:
        """Load the previous run's open orders and execution ids, publish again what may not
        have reached the broker, and answer the requests it never handled."""
        self._seen_execs.update(dict.fromkeys(sorted(j.exec_ids())))
        n_open = 0
        for state in j.orders():
            order = _order_from_state(state, self.instruments)
            if order is None:
                self.log.warning(
                    "%s: journaled order %s of %s is on an instrument no longer served",
                    self.name,
                    state.get("cl_id"),
                    state.get("strat"),
                )
                continue
            if order.closed:
                continue
            self.orders[order.venue_cid] = order
            self._by_strat[(order.strat, order.cl_id)] = order.venue_cid
            self._restored.add(order.venue_cid)
            n_open += 1
        unsent = list(j.reports(after=j.sent_seq))
        for r in unsent:
            super().publish_report(r.strat, r.msg)
            self.published_seq = max(self.published_seq, r.seq)
        pending = j.pending_requests()
        for p in pending:
            self._answer_unhandled(p.seq, p.msg)
        self.log.info(
            "%s: journal %s: %d open orders restored, %d execution ids, %d reports re-sent, "
            "%d unhandled requests answered",
            self.name,
            j.path,
            n_open,
            len(self._seen_execs),
            len(unsent),
            len(pending),
        )

    def _answer_unhandled(self, seq: int, req: Msg) -> None:
        """Reject a request a previous run journaled but never handled."""
        if not isinstance(req, NewOrder | ModifyOrder | CancelOrder | CancelAll):
            self._request_done(seq)
            return
        why = "gateway restarted before handling it"
        answer = reject_for(req, GtwRejectCode.GtwNotReady, why, self._now())
        self._send(req.strat, answer, done=seq)

    def _now(self) -> int:
        return self.scheduler.now_ns()

    def _ack(self, order: LiveOrder) -> None:
        if order.acked:
            return
        order.acked = True
        if order.status is OrderStatus.PendingNew:
            order.ack(untriggered=order.stop_price is not None)
        self._report(
            order,
            NewOrderAck(
                cl_id=order.cl_id,
                exch_id=order.exch_id,
                instrument_id=order.instrument.instrument_id,
                side=order.side,
                price=_fmt(order.price),
                qty=_fmt(order.qty),
                leaves_qty=_fmt(order.qty),
                ord_type=order.ord_type,
                tif=order.tif,
                exec_instr=order.exec_instr,
                ts=self._now(),
            ),
        )

    def _apply_fill(self, order: LiveOrder, fill: Fill) -> bool:
        """Report a fill unless already reported; True if it was new. A fill that completes a
        cancellation waiting for it is reported before that cancellation."""
        if fill.exec_id in self._seen_execs:
            return False
        self._seen_execs[fill.exec_id] = None
        if len(self._seen_execs) > _MAX_SEEN:
            self._seen_execs.popitem(last=False)
        if fill.exch_id and not order.exch_id:
            order.exch_id = fill.exch_id
        self._ack(order)
        order.venue_filled = max(order.venue_filled, order.filled + fill.qty)
        closes = False
        try:
            closes = order.fill(fill.qty)
        except IllegalTransition as exc:
            # the venue filled it all the same: the strategy must know its position
            self.log.warning(
                "%s: fill %s of %s/%s reported although %s",
                self.name,
                fill.exec_id,
                order.strat,
                order.cl_id,
                exc,
            )
        self._report(
            order,
            OrderExecution(
                cl_id=order.cl_id,
                exec_id=fill.exec_id,
                instrument_id=order.instrument.instrument_id,
                side=order.side,
                price=_fmt(fill.price),
                fill_qty=_fmt(fill.qty),
                leaves_qty=_fmt(order.leaves),
                exec_ts=fill.ts,
                fee=_fmt(fill.fee),
                fee_coin=fill.fee_coin,
                maker=fill.maker,
                ts=self._now(),
            ),
        )
        if closes:
            self._close(order)
        return True

    def _apply_venue_order(self, order: LiveOrder, vo: VenueOrder, *, from_stream: bool) -> None:
        if vo.exch_id:
            order.exch_id = vo.exch_id
        if vo.status is OrderStatus.PendingNew:
            return  # submitted only (Bybit's create answer): the stream tells the outcome
        order.venue_filled = max(order.venue_filled, vo.filled)
        rejected = vo.status is OrderStatus.Rejected or (
            vo.status is OrderStatus.Cancelled and vo.reject_code is not None
        )
        if rejected and not order.acked and order.filled == 0:
            order.reject()
            self._forget(order)
            self._report(
                order,
                NewOrderReject(
                    cl_id=order.cl_id,
                    code=vo.reject_code or GtwRejectCode.ExchangeError,
                    reason=vo.reason or "rejected by the venue",
                    ts=self._now(),
                ),
            )
            return
        if vo.status in (OrderStatus.New, OrderStatus.PartiallyFilled, OrderStatus.Untriggered):
            self._ack(order)
            return
        if vo.status is OrderStatus.Filled:
            self._ack(order)  # the fills themselves come from the stream or order_fills
            return
        if vo.status in (OrderStatus.Cancelled, OrderStatus.Rejected):
            self._ack(order)
            if order.closed:
                return
            if order.cancel_pending:  # our cancel is in flight: _cancel_one finishes it
                order.cancel_seen = True
                return
            if order.closing is not None:  # our cancel was answered; this is its final figure
                self._venue_cancelled(order, vo.filled, *order.closing)
                return
            code = (
                CancelCode.ImmediateOrCancel
                if vo.cancel_code_hint == "ioc"
                else CancelCode.ExchangeCancel
            )
            self._venue_cancelled(order, vo.filled, True, code, vo.reason)

    def _venue_cancelled(
        self,
        order: LiveOrder,
        venue_filled: Decimal | None,
        unsolicited: bool,
        code: CancelCode,
        reason: str,
    ) -> None:
        """The venue cancelled the order having filled ``venue_filled`` of it (None: it did not
        say, so its final figure is awaited from the stream). The ``OrderCancelled`` goes out
        now, or after the fills still on their way (:meth:`_apply_fill`); if they do not come
        within ``fill_wait_s`` the gateway fetches them (:meth:`_settle_cancel`)."""
        order.closing = (unsolicited, code, reason)
        if venue_filled is not None and order.cancel(venue_filled):
            self._report_cancelled(order)
            return
        self.log.info(
            "%s: %s/%s cancelled at the venue; waiting for %s (filled %s so far)",
            self.name,
            order.strat,
            order.cl_id,
            "its final figure" if venue_filled is None else f"fills up to {venue_filled}",
            order.filled,
        )
        self.scheduler.call_later(int(self.config.fill_wait_s * NS), self._spawn_settle, order)

    def _spawn_settle(self, order: LiveOrder) -> None:
        if order.is_open and order.closing is not None and not self._stop.is_set():
            self._spawn(self._settle_cancel(order), f"settle[{order.venue_cid}]")

    async def _settle_cancel(self, order: LiveOrder) -> None:
        """A cancellation waited ``fill_wait_s`` for fills (or its final figure) that did not
        come: fetch the order's fills (and its status), report what was missed, then close."""
        try:
            fills = await self.api.order_fills(order)
            vo = await self.api.query_order(order)
        except GatewayError as exc:
            self.log.warning("%s: fills of %s not fetched: %s", self.name, order.venue_cid, exc)
            fills, vo = [], None
        for fill in fills:
            if order.closed:
                break
            if self._apply_fill(order, fill):
                self.reconciled_fills += 1
        if order.closed or order.closing is None:
            if order.status is OrderStatus.Cancelled:
                self._report_cancelled(order)
            return
        if order.cancel_waits is None:  # the final figure never came: take the venue's view
            order.cancel(vo.filled if vo is not None else None)
            if order.is_open:  # fills reported by the venue's status but not listed: give up
                order.force_close()
        elif order.force_close():
            self.log.warning(
                "%s: %s/%s closed with fills of %s of %s reported by the venue missing",
                self.name,
                order.strat,
                order.cl_id,
                order.filled,
                order.venue_filled,
            )
        self._report_cancelled(order)

    def _report_cancelled(self, order: LiveOrder) -> None:
        """Report the order's ``OrderCancelled`` (once) and forget it in due course."""
        note = order.closing
        if note is None:
            return
        order.closing = None
        unsolicited, code, reason = note
        self._close(order)
        self._report(
            order,
            OrderCancelled(
                cl_id=order.cl_id,
                unsolicited=unsolicited,
                engine_ts=self._now(),
                cancel_code=code,
                reason=reason,
                ts=self._now(),
            ),
        )

    def _close(self, order: LiveOrder) -> None:
        """Book-keeping of a final order: if it completed a waiting cancellation, that
        cancellation is reported now; old closed orders are forgotten."""
        if order.status is OrderStatus.Cancelled and order.closing is not None:
            self._report_cancelled(order)
            return
        if order.venue_cid in self._closed:
            return
        self._closed[order.venue_cid] = None
        while len(self._closed) > _MAX_CLOSED:
            old, _ = self._closed.popitem(last=False)
            o = self.orders.pop(old, None)
            if o is not None:
                self._by_strat.pop((o.strat, o.cl_id), None)

    def _resize(self, order: LiveOrder, qty: Decimal) -> None:
        """The venue's size of the order is now ``qty``."""
        if qty == order.qty:
            return
        try:
            order.modify(qty)
        except IllegalTransition as exc:
            self.log.warning("%s: size %s of %s not taken: %s", self.name, qty, order.cl_id, exc)

    def _forget(self, order: LiveOrder) -> None:
        self.orders.pop(order.venue_cid, None)
        self._by_strat.pop((order.strat, order.cl_id), None)

    def holds_open_order(self, req: CancelOrder) -> bool:
        """Whether the order a cancel names is open (as far as this gateway knows)."""
        order = self._find(req.strat, req.cl_id)
        return order is not None and not order.closed

    def _find(self, strat: str, cl_id: str) -> LiveOrder | None:
        vcid = self._by_strat.get((strat, cl_id))
        return self.orders.get(vcid) if vcid else None

    def _rate(self, strat: str) -> None:
        """Announce rate-limit usage crossing 50 / 90 / 100 % of the budget."""
        usage: RateUsage | None = self.api.last_rate
        if usage is None or usage.limit <= 0:
            return
        key = usage.name
        window, done = self._announced.get(key, (usage.reset_ts, set()))
        if window != usage.reset_ts:
            done = set()
        self._announced[key] = (usage.reset_ts, done)
        for pct in _THRESHOLDS:
            if pct not in done and usage.used * 100 >= pct * usage.limit:
                done.add(pct)
                self.publish_report(
                    strat,
                    RateLimitInfo(
                        rate_limit=usage.limit,
                        rate_remaining=max(usage.limit - usage.used, 0),
                        reset_ts=usage.reset_ts,
                    ),
                )

    def _gate(self) -> tuple[GtwRejectCode, str] | None:
        """Why no request can go out now (None if one can)."""
        if self.status is GtwStatus.Maintenance:
            return GtwRejectCode.GtwNotReady, "venue in maintenance"
        if self._clock_off:
            return (
                GtwRejectCode.GtwNotReady,
                "gateway not ready: the venue refused a timestamp; measuring its clock offset",
            )
        if not self._ready:
            return GtwRejectCode.GtwNotReady, "gateway not ready (connecting)"
        if self._blocked_until > self._now():
            secs = (self._blocked_until - self._now()) / NS
            return GtwRejectCode.RateLimitExceeded, f"rate limited; retry in {secs:.1f}s"
        return None

    def _unavailable(self, exc: VenueUnavailable) -> str:
        """A request met an unreachable venue; in maintenance, say so and probe until it ends."""
        if exc.maintenance and self.status is not GtwStatus.Maintenance:
            self._ready = False
            self.publish_status(GtwStatus.Maintenance, exc.detail)
            self._spawn(self._probe_maintenance(), "maintenance_probe")
        return exc.detail

    async def _probe_maintenance(self) -> None:
        while self.status is GtwStatus.Maintenance and not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.config.maintenance_probe_s):
                    await self._stop.wait()
            try:
                await self.api.account_id()
            except GatewayError as exc:
                self.log.info("%s: still unavailable: %s", self.name, exc)
                continue
            await self.reconcile()
            self._ready = True
            self.publish_status(GtwStatus.ReadyToTrade, "maintenance over")

    def _rate_limited(self, exc: RateLimited) -> str:
        """The reason of a rate-limit refusal. The venue's (429, 10006...) holds every request
        back until it lifts; a local budget's (:class:`BudgetExhausted`) refuses only what
        needs that budget, and is logged at the 1st, 10th, 100th... occurrence."""
        if isinstance(exc, BudgetExhausted):
            self._log_refusal(self.api.budgets.refused, "%s: %s", self.name, exc)
            return exc.reason
        self._blocked_until = max(self._blocked_until, self._now() + int(exc.retry_after_s * NS))
        self.log.warning("%s: %s", self.name, exc)
        return str(exc)

    # ================================================================================ checks
    def _refuse(
        self, req: NewOrder | ModifyOrder | CancelOrder, seq: int, code: GtwRejectCode, reason: str
    ) -> None:
        """Answer request ``req`` (journal sequence ``seq``) with its reject."""
        self._send(req.strat, reject_for(req, code, reason, self._now()), done=seq)

    def refuse_request(
        self, req: Any, kind: str, code: GtwRejectCode, reason: str, seq: int = 0
    ) -> None:
        """Answer a request refused before (or instead of) its handling, journaled with the
        request it answers."""
        self._send(req.strat, reject_for(req, code, reason, self._now()), done=seq)

    def answer_fault(self, req: Any, kind: str, exc: BaseException, seq: int = 0) -> None:
        """A request's handling raised: a NewOrder whose order was registered but neither
        acknowledged nor refused is forgotten (rejected), then the request is answered
        ``ExchangeError`` (:meth:`GatewayBase.answer_fault`)."""
        if kind == "new":
            order = self._find(req.strat, req.cl_id)
            if order is not None and order.status is OrderStatus.PendingNew and not order.acked:
                order.reject()
                self._forget(order)
                self._save(order)
        super().answer_fault(req, kind, exc, seq)

    def _target(self, req: ModifyOrder | CancelOrder, seq: int) -> LiveOrder | None:
        """The open order a modify or cancel is for; None, with the reject sent, if the gateway
        cannot trade now or the order is not open."""
        gate = self._gate()
        if gate is not None:
            self._refuse(req, seq, *gate)
            return None
        order = self._find(req.strat, req.cl_id)
        if order is None or order.closed:
            self._refuse(req, seq, GtwRejectCode.UnknownOrder, f"no open order {req.cl_id}")
            return None
        return order

    # ================================================================================ new
    def on_new_order(self, req: NewOrder, seq: int = 0) -> None:
        """Check the request, then place it (``_on_new_order``)."""

        def reject(code: GtwRejectCode, reason: str) -> None:
            self._refuse(req, seq, code, reason)

        gate = self._gate()
        if gate is not None:
            reject(*gate)
            return
        inst = self.instruments.get(req.instrument_id)
        if inst is None:
            reject(GtwRejectCode.UnknownInstrument, f"instrument {req.instrument_id} not served")
            return
        if req.ord_type in STOP_ORDER_TYPES:
            self._send(req.strat, UnsupportedOp(msg_type="NewOrder"), done=seq)
            return
        if req.side not in (Side.Buy, Side.Sell):
            reject(GtwRejectCode.InvalidRequest, f"side must be Buy or Sell, not {req.side!r}")
            return
        # Unset means the default, as on the simulated exchange
        ord_type = OrderType.Limit if req.ord_type is OrderType.Unset else req.ord_type
        tif = TIF.GTC if req.tif is TIF.Unset else req.tif
        if ord_type not in (OrderType.Limit, OrderType.Market) or tif not in (
            TIF.GTC,
            TIF.IOC,
            TIF.FOK,
        ):
            reject(GtwRejectCode.InvalidRequest, f"order type {ord_type!r} / tif {tif!r}")
            return
        if req.exec_instr is ExecInstructions.PostOnly and (
            ord_type is OrderType.Market or tif is not TIF.GTC
        ):
            reject(GtwRejectCode.InvalidRequest, "post-only needs a GTC limit order")
            return
        existing = self._find(req.strat, req.cl_id)
        if existing is not None and not existing.closed:
            reject(GtwRejectCode.DuplicateClientId, f"cl_id {req.cl_id} is still live")
            return
        if self.journal is not None and (
            existing is not None or self.journal.has_order(req.strat, req.cl_id)
        ):
            reject(GtwRejectCode.DuplicateClientId, f"cl_id {req.cl_id} was used already")
            return
        try:
            qty = _dec(req.qty, "qty")
            price = _dec(req.price, "price") if ord_type is OrderType.Limit else Decimal(0)
        except ValueError as exc:
            reject(GtwRejectCode.InvalidRequest, str(exc))
            return
        if qty <= 0 or qty % inst.lot_size != 0 or qty < inst.min_qty:
            reject(
                GtwRejectCode.InvalidQty,
                f"qty {req.qty} not a positive multiple of {inst.lot_size} >= {inst.min_qty}",
            )
            return
        if ord_type is OrderType.Limit and (price <= 0 or price % inst.tick_size != 0):
            reject(GtwRejectCode.InvalidPrice, f"price {req.price} not on tick {inst.tick_size}")
            return
        order = LiveOrder(
            strat=req.strat,
            cl_id=req.cl_id,
            venue_cid=venue_client_id(req.strat, req.cl_id),
            instrument=inst,
            side=req.side,
            price=price,
            qty=qty,
            ord_type=ord_type,
            tif=tif,
            exec_instr=req.exec_instr,
            reduce_only=req.close_position,
            created_ts=self._now(),
        )
        if existing is not None:
            self._forget(existing)
        self.orders[order.venue_cid] = order
        self._by_strat[(order.strat, order.cl_id)] = order.venue_cid
        self._save(order, done=seq)  # before the venue hears of it
        self._serve(
            self._on_new_order(order),
            f"new[{order.venue_cid}]",
            req,
            "new",
            settled=lambda: order.acked or order.closed,
        )

    async def _on_new_order(self, order: LiveOrder) -> None:
        async with order.lock:
            try:
                vo = await self.api.place(order)
            except VenueRejected as exc:
                self._new_rejected(order, exc.code, exc.reason)
            except RateLimited as exc:
                self._new_rejected(order, GtwRejectCode.RateLimitExceeded, self._rate_limited(exc))
            except VenueTimeout as exc:
                await self._resolve_unknown_new(order, str(exc))
            except VenueUnavailable as exc:
                self._new_rejected(order, GtwRejectCode.ExchangeError, self._unavailable(exc))
            else:
                self._apply_venue_order(order, vo, from_stream=False)
            finally:
                self._rate(order.strat)

    def _new_rejected(self, order: LiveOrder, code: GtwRejectCode, reason: str) -> None:
        if order.acked:  # the stream already acked it: the venue has it after all
            return
        order.reject()
        self._forget(order)
        self._report(
            order, NewOrderReject(cl_id=order.cl_id, code=code, reason=reason, ts=self._now())
        )

    async def _resolve_unknown_new(self, order: LiveOrder, why: str) -> None:
        """A NewOrder timed out: ask the venue whether it has the order."""
        try:
            vo = await self.api.query_order(order)
        except GatewayError as exc:
            self.log.warning("%s: %s unresolved after timeout: %s", self.name, order.cl_id, exc)
            vo = None
        if vo is None:
            self._new_rejected(order, GtwRejectCode.Timeout, why)
        else:
            self._apply_venue_order(order, vo, from_stream=False)

    # ================================================================================ modify
    def on_modify_order(self, req: ModifyOrder, seq: int = 0) -> None:
        """Check the request, then amend the order (``_on_modify_order``)."""

        def reject(code: GtwRejectCode, reason: str) -> None:
            self._refuse(req, seq, code, reason)

        order = self._target(req, seq)
        if order is None:
            return
        if order.ord_type is not OrderType.Limit:
            reject(GtwRejectCode.InvalidRequest, "only limit orders can be modified")
            return
        if req.new_price is None and req.new_qty is None:
            reject(GtwRejectCode.InvalidRequest, "modify needs new_price or new_qty")
            return
        try:
            price = _dec(req.new_price, "new_price") if req.new_price else order.price
            qty = _dec(req.new_qty, "new_qty") if req.new_qty else order.qty
        except ValueError as exc:
            reject(GtwRejectCode.InvalidRequest, str(exc))
            return
        inst = order.instrument
        if price <= 0 or price % inst.tick_size != 0:
            reject(GtwRejectCode.InvalidPrice, f"price {price} not on tick {inst.tick_size}")
            return
        if qty <= order.filled or qty % inst.lot_size != 0:
            reject(GtwRejectCode.InvalidQty, f"qty {qty} off the lot grid or not above filled")
            return
        self._serve(
            self._on_modify_order(order, price, qty, seq),
            f"modify[{order.venue_cid}]",
            req,
            "modify",
            seq,
        )

    async def _on_modify_order(
        self, order: LiveOrder, price: Decimal, qty: Decimal, seq: int = 0
    ) -> None:
        async with order.lock:
            code: GtwRejectCode | None = None
            reason = ""
            try:
                await self.api.amend(order, price, qty)
            except VenueRejected as exc:
                if exc.code is GtwRejectCode.UnsupportedOperation:
                    self._report(order, UnsupportedOp(msg_type="ModifyOrder"), done=seq)
                    return
                code, reason = exc.code, exc.reason
            except RateLimited as exc:
                code, reason = GtwRejectCode.RateLimitExceeded, self._rate_limited(exc)
            except VenueTimeout as exc:
                code, reason = GtwRejectCode.Timeout, str(exc)
            except VenueUnavailable as exc:
                code, reason = GtwRejectCode.ExchangeError, self._unavailable(exc)
            finally:
                self._rate(order.strat)
            if code is not None:
                self._report(
                    order,
                    ModifyOrderReject(cl_id=order.cl_id, code=code, reason=reason, ts=self._now()),
                    done=seq,
                )
                return
            order.price = price
            self._resize(order, qty)
            self._report(
                order,
                ModifyOrderAck(
                    cl_id=order.cl_id,
                    new_price=_fmt(price),
                    new_qty=_fmt(qty),
                    leaves_qty=_fmt(order.leaves),
                    ts=self._now(),
                ),
                done=seq,
            )

    # ================================================================================ cancel
    def on_cancel_order(self, req: CancelOrder, seq: int = 0) -> None:
        """Check the request, then cancel the order (``_on_cancel_order``)."""
        order = self._target(req, seq)
        if order is None:
            return
        self._serve(
            self._on_cancel_order(order, seq), f"cancel[{order.venue_cid}]", req, "cancel", seq
        )

    async def _on_cancel_order(self, order: LiveOrder, seq: int = 0) -> None:
        try:
            if not await self._cancel_one(order, "user", CancelCode.CanceledByUser):
                # it closed (filled) while waiting for its turn, or is being cancelled already
                why = "order closed" if order.closed else "order already being cancelled"
                self._report(
                    order,
                    CancelOrderReject(
                        cl_id=order.cl_id,
                        code=GtwRejectCode.UnknownOrder,
                        reason=f"no open order {order.cl_id}: {why}",
                        ts=self._now(),
                    ),
                    done=seq,
                )
                return
            self._request_done(seq)
        except GatewayError as exc:
            code = exc.code if isinstance(exc, VenueRejected) else GtwRejectCode.ExchangeError
            if isinstance(exc, RateLimited):
                code = GtwRejectCode.RateLimitExceeded
            elif isinstance(exc, VenueTimeout):
                code = GtwRejectCode.Timeout
            reason = exc.reason if isinstance(exc, VenueRejected) else str(exc)
            self._report(
                order,
                CancelOrderReject(cl_id=order.cl_id, code=code, reason=reason, ts=self._now()),
                done=seq,
            )

    async def _cancel_one(self, order: LiveOrder, why: str, code: CancelCode) -> bool:
        """Cancel at the venue; on success send CancelOrderAck (single cancels) and, once the
        fills the venue reports for it are in, OrderCancelled. Returns False if the order closed
        meanwhile (filled); raises the venue's error otherwise."""
        async with order.lock:
            if order.closed or order.closing is not None:
                return False
            order.cancel_pending = why
            vo: VenueOrder | None = None
            try:
                vo = await self.api.cancel(order)
            except GatewayError as exc:
                if isinstance(exc, RateLimited):
                    self._rate_limited(exc)
                if not order.cancel_seen:
                    if isinstance(exc, VenueRejected) and order.closed:
                        return False  # filled meanwhile
                    raise
                # the stream saw it cancelled: the venue's error (unknown order...) is a race
            finally:
                order.cancel_pending = ""
                self._rate(order.strat)
            self._ack(order)  # the venue had it (Bybit acks from the stream, maybe not yet)
            if why == "user":
                self._report(order, CancelOrderAck(cl_id=order.cl_id, ts=self._now()))
            # the venue's final figure: its answer's executedQty, else what the stream said
            # (if it reported the cancellation already), else awaited from the stream
            if vo is not None:
                filled: Decimal | None = max(vo.filled, order.venue_filled)
            elif order.cancel_seen:
                filled = order.venue_filled
            else:
                filled = None
            order.cancel_seen = False
            if order.closed:  # a fill completed it meanwhile (the cancel was answered above)
                return True
            self._venue_cancelled(order, filled, False, code, "")
            return True

    def on_cancel_all(self, req: CancelAll, seq: int = 0) -> None:
        """Cancel every open order of the strategy (on one instrument, or all)."""
        gate = self._gate()
        if gate is not None:
            self._send(
                req.strat,
                CancelAllReject(
                    instrument_id=req.instrument_id, code=gate[0], reason=gate[1], ts=self._now()
                ),
                done=seq,
            )
            return
        targets = [
            o
            for o in self.orders.values()
            if o.strat == req.strat
            and not o.closed
            and (req.instrument_id == 0 or o.instrument.instrument_id == req.instrument_id)
        ]
        self._serve(
            self._on_cancel_all(req, targets, seq),
            f"cancel_all[{req.strat}]",
            req,
            "cancel_all",
            seq,
        )

    async def _on_cancel_all(self, req: CancelAll, targets: list[LiveOrder], seq: int = 0) -> None:
        code = CancelCode.StopEscalation if req.escalation else CancelCode.CancelAll
        results = await asyncio.gather(
            *(self._cancel_one(o, "all", code) for o in targets), return_exceptions=True
        )
        errors = [r for r in results if isinstance(r, BaseException)]
        for r in errors:
            if not isinstance(r, Exception):
                raise r
        failed = [
            r
            for r in errors
            if not (isinstance(r, VenueRejected) and r.code is GtwRejectCode.UnknownOrder)
        ]
        if failed:
            first = failed[0]
            rc = (
                GtwRejectCode.RateLimitExceeded
                if isinstance(first, RateLimited)
                else (
                    first.code if isinstance(first, VenueRejected) else GtwRejectCode.ExchangeError
                )
            )
            self._send(
                req.strat,
                CancelAllReject(
                    instrument_id=req.instrument_id,
                    code=rc,
                    reason=f"{len(failed)} of {len(targets)} cancels failed: {first}",
                    ts=self._now(),
                ),
                done=seq,
            )
            return
        self._send(
            req.strat, CancelAllAck(instrument_id=req.instrument_id, ts=self._now()), done=seq
        )

    # ================================================================================ fetch
    def on_fetch(self, req: FetchRequest) -> None:
        """Answer from the registry (orders) or the venue (account, wallet, position,
        funding)."""
        if isinstance(req, FetchOrders):
            wires = [
                self._wire(o)
                for o in self.orders.values()
                if o.strat == req.strat
                and not o.closed
                and o.acked
                and (req.instrument_id == 0 or o.instrument.instrument_id == req.instrument_id)
            ]
            self.publish_report(req.strat, echo_req_id(req, OrdersInfo(orders=wires)))
            return
        if isinstance(req, FetchOrderStatus):
            order = self._find(req.strat, req.cl_id)
            if order is None:
                self.publish_report(
                    req.strat,
                    reject_for(
                        req, GtwRejectCode.UnknownOrder, f"no order {req.cl_id}", self._now()
                    ),
                )
            else:
                self.publish_report(
                    req.strat, echo_req_id(req, OrderStatusInfo(order=self._wire(order)))
                )
            return
        if (
            isinstance(req, FetchPosition | FetchFunding)
            and req.instrument_id not in self.instruments
        ):
            self.publish_report(
                req.strat,
                reject_for(
                    req,
                    GtwRejectCode.UnknownInstrument,
                    f"instrument {req.instrument_id} not served",
                    self._now(),
                ),
            )
            return
        self._serve(self._on_fetch(req), f"fetch[{req.strat}]", req, "fetch")

    async def _on_fetch(self, req: FetchRequest) -> None:
        msg: Msg
        try:
            if isinstance(req, FetchAccount):
                msg = AccountInfo(user_id=await self.api.account_id())
            elif isinstance(req, FetchWallet):
                total, avail = await self.api.wallet(req.coin)
                msg = WalletInfo(coin=req.coin, total=_fmt(total), available=_fmt(avail))
            elif isinstance(req, FetchPosition):
                pos = await self.api.position(self.instruments[req.instrument_id])
                msg = PositionInfo(instrument_id=req.instrument_id, position=_fmt(pos))
            elif isinstance(req, FetchFunding):
                rate, next_ts = await self.api.funding(self.instruments[req.instrument_id])
                msg = FundingInfo(instrument_id=req.instrument_id, rate=_fmt(rate), next_ts=next_ts)
            else:  # pragma: no cover - handled synchronously
                return
        except GatewayError as exc:
            code = GtwRejectCode.ExchangeError
            if isinstance(exc, VenueRejected):
                code = exc.code
            elif isinstance(exc, RateLimited):
                code = GtwRejectCode.RateLimitExceeded
                self._rate_limited(exc)
            elif isinstance(exc, VenueTimeout):
                code = GtwRejectCode.Timeout
            msg = reject_for(req, code, str(exc), self._now())
        finally:
            self._rate(req.strat)
        self.publish_report(req.strat, echo_req_id(req, msg))

    def _wire(self, o: LiveOrder) -> OrderWire:
        return OrderWire(
            instrument_id=o.instrument.instrument_id,
            cl_id=o.cl_id,
            exch_id=o.exch_id,
            side=o.side,
            price=_fmt(o.price),
            qty=_fmt(o.qty),
            leaves_qty=_fmt(o.leaves),
            filled_qty=_fmt(o.filled),
            status=o.status,
            ord_type=o.ord_type,
            tif=o.tif,
            exec_instr=o.exec_instr,
            created_ts=o.created_ts,
        )


def _order_state(o: LiveOrder) -> dict[str, Any]:
    """An order's journal form (JSON-ready)."""
    return {
        "strat": o.strat,
        "cl_id": o.cl_id,
        "venue_cid": o.venue_cid,
        "iid": o.instrument.instrument_id,
        "side": o.side.value,
        "price": str(o.price),
        "qty": str(o.qty),
        "ord_type": o.ord_type.value,
        "tif": o.tif.value,
        "exec_instr": o.exec_instr.value,
        "reduce_only": o.reduce_only,
        "stop_price": None if o.stop_price is None else str(o.stop_price),
        "exch_id": o.exch_id,
        "filled": str(o.filled),
        "status": o.status.value,
        "acked": o.acked,
        "closed": o.closed,
        "venue_filled": str(o.venue_filled),
        "created_ts": o.created_ts,
    }


def _order_from_state(
    state: dict[str, Any], instruments: dict[int, Instrument]
) -> LiveOrder | None:
    """An order back from its journal form (None if its instrument is not served)."""
    inst = instruments.get(int(state["iid"]))
    if inst is None:
        return None
    stop = state.get("stop_price")
    return LiveOrder(
        strat=str(state["strat"]),
        cl_id=str(state["cl_id"]),
        venue_cid=str(state["venue_cid"]),
        instrument=inst,
        side=Side(state["side"]),
        price=Decimal(state["price"]),
        qty=Decimal(state["qty"]),
        ord_type=OrderType(state["ord_type"]),
        tif=TIF(state["tif"]),
        exec_instr=ExecInstructions(state["exec_instr"]),
        reduce_only=bool(state["reduce_only"]),
        stop_price=None if stop is None else Decimal(stop),
        exch_id=str(state["exch_id"]),
        filled=Decimal(state["filled"]),
        status=OrderStatus(state["status"]),
        acked=bool(state["acked"]),
        venue_filled=Decimal(state.get("venue_filled", state["filled"])),
        created_ts=int(state["created_ts"]),
    )
