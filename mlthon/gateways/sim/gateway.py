"""``SimGateway``: the simulated exchange on the bus.

It wraps the pure :class:`~mlthon.gateways.sim.matching.MatchingEngine` with what a venue adds
around its matching engine: latency, a connection status, maintenance windows, a request-rate
budget and a profile of unsupported operations.

Timing (``docs/simulation.md`` has the long form). With ``e`` the entry delay of the command,
``m`` the market-data delay and ``r`` the response delay:

* a request published at ``t`` reaches the engine at ``t_ex = t + e`` (never before the previous
  request of the same strategy: requests of one strategy stay in order);
* the engine handles it when the bus clock reads ``t_ex + m``: by then every market-data message
  the exchange had sent by ``t_ex`` has been applied, so the order meets the book as it was at
  ``t_ex``, not as it was when sent. It is never handled before the previous request of the same
  strategy (a random ``m`` would otherwise let a cancel overtake its order): each strategy's
  requests wait in their own queue, handled in arrival order;
* market data received at ``t`` happened at the exchange at ``t - m``;
* answers and fills reach the strategy at ``t_ex + r`` (never earlier than the bus clock, and in
  the order they were produced).

With every delay zero, a request is handled inside its bus delivery and its answers are published
at once, in order.

With an :class:`~mlthon.gateways.journal.OrderJournal` (``docs/reliability.md``): a request is
journaled when it arrives; a repeated one (same bytes: a QoS 1 redelivery) is dropped. The reports
of the engine calls and the state they changed are committed together once per turn of the event
loop (group commit: one transaction for everything handled in that turn), and none of them is
published before that commit. ``start()`` first reconciles with the journal (requests are refused
``GtwNotReady`` until then), publishes again what may not have been sent, and reports what it found
to the log, the status topic and Telegram.

Ids: exchange order ids are ``<id_prefix>-<n>`` and execution ids ``<id_prefix>-x<n>``. With a
journal the counters survive restarts; without one the prefix carries the time the gateway was
built (``sim.<ms in base 36>``), so a restarted gateway never repeats an id (in a backtest that
time is simulated: the same backtest gets the same ids on every run).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from typing import Any

from mlthon.basics.errors import ConfigError
from mlthon.basics.instrument import Instrument
from mlthon.basics.mlt_enum import GtwRejectCode, GtwStatus
from mlthon.basics.tickbook import TickBook
from mlthon.gateways.base import ANSWERS, FetchRequest, GatewayBase, reject_for
from mlthon.gateways.journal import OrderJournal
from mlthon.gateways.sim.config import SimGatewayConfig
from mlthon.gateways.sim.fees import FeeModel
from mlthon.gateways.sim.latency import FixedDelay, LatencyModel
from mlthon.gateways.sim.matching import MatchingEngine
from mlthon.gateways.sim.queue import queue_model_from_name
from mlthon.gateways.sim.recovery import Reconciliation, reconcile
from mlthon.gateways.sim.state import account_to_state, order_to_state
from mlthon.infra.bus.bus import BusBase
from mlthon.infra.bus.messages import (
    CancelAll,
    CancelOrder,
    FundingUpdate,
    ModifyOrder,
    Msg,
    NewOrder,
    OrderExecution,
    RateLimitInfo,
    TelegramPublish,
    UnsupportedOp,
    echo_req_id,
)
from mlthon.infra.bus.topics import Topics
from mlthon.infra.clock import Handle, Scheduler

log = logging.getLogger(__name__)

_KIND: dict[type[Any], str] = {
    NewOrder: "new",
    ModifyOrder: "modify",
    CancelOrder: "cancel",
    CancelAll: "cancel_all",
}
_THRESHOLDS = (50, 90, 100)
_B36 = "0123456789abcdefghijklmnopqrstuvwxyz"


def run_tag(ts_ns: int) -> str:
    """A short tag of a start time: its milliseconds in base 36 (``lq3k2a1f``)."""
    ms = max(ts_ns // 1_000_000, 0)
    out = ""
    while True:
        ms, r = divmod(ms, 36)
        out = _B36[r] + out
        if not ms:
            return out


class SimGateway(GatewayBase):
    """The simulated exchange gateway.

    Args:
        bus: the bus to serve on.
        scheduler: time and timers (``SimScheduler`` in backtests, ``LiveScheduler`` for paper).
        topics: topic names.
        config: the gateway's configuration.
        instruments: candidate instruments; those of ``config.instrument_ids`` (or, if empty,
            those of ``config.exchange``) are served.
        logger: where to log.
        journal: the order journal (None: nothing survives a restart).
        books: ``books(instrument_id)``: the shared book of an instrument, kept up to date by
            someone else in this process before each market-data message is delivered (a
            backtest's feed engine or book keeper; see
            :class:`~mlthon.gateways.sim.matching.MatchingEngine`); None: the sim keeps its own.

    Raises:
        ConfigError: no instrument to serve, or an unknown instrument id in the config.
    """

    def __init__(
        self,
        bus: BusBase,
        scheduler: Scheduler,
        topics: Topics,
        config: SimGatewayConfig,
        instruments: list[Instrument],
        *,
        logger: logging.Logger | None = None,
        journal: OrderJournal | None = None,
        books: Callable[[int], TickBook | None] | None = None,
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
        self.journal = journal
        # reports of the engine call in progress, persisted then delivered at its end
        self._staged: list[tuple[str, Msg, str]] = []
        # journal writes not committed yet; a commit is scheduled for the end of this loop turn
        self._dirty = False
        self._commit_scheduled = False
        self._counters_saved = (-1, -1)
        # orders and accounts the journaled reports changed, saved (as they are then) at commit
        self._dirty_orders: set[tuple[str, str]] = set()
        self._dirty_accounts: set[str] = set()
        self.published_seq = 0  # journal seq of the last report handed to the bus
        self.reconciliation: Reconciliation | None = None
        if config.instrument_ids:
            by_id = {i.instrument_id: i for i in instruments}
            missing = [i for i in config.instrument_ids if i not in by_id]
            if missing:
                raise ConfigError(f"unknown instrument ids {missing}", key="gateway.instruments")
            served = [by_id[i] for i in config.instrument_ids]
        else:
            served = [i for i in instruments if i.exchange is config.exchange]
        if not served:
            raise ConfigError(
                f"no instrument of {config.exchange.name} to serve", key="gateway.instruments"
            )
        self.instruments = served
        self.engine = MatchingEngine(
            served,
            self._on_report,
            exchange=config.exchange,
            queue_model=queue_model_from_name(
                config.queue_model, power=config.queue_power, seed=config.seed
            ),
            fees=FeeModel(
                {config.exchange: config.exchange_fees} if config.exchange_fees else None,
                config.instrument_fees,
            ),
            balances=config.balances,
            leverage=config.leverage,
            hedge_mode=config.hedge_mode,
            id_prefix=(
                config.id_prefix
                if journal is not None
                else f"{config.id_prefix}.{run_tag(scheduler.now_ns())}"
            ),
            books=books,
        )
        self.latency = LatencyModel(config.latency)
        md_delay = config.latency.market_data
        self._md_delay: int | None = md_delay.ns if isinstance(md_delay, FixedDelay) else None
        self._ready = False
        self._started = False
        self._timers: list[Handle] = []
        self._funding_timers: dict[int, tuple[int, Handle]] = {}
        self._last_arrival: dict[str, int] = {}
        # per strategy, requests waiting for their handling time, in arrival order:
        # (run_at, req, kind, t_ex, seq); a timer is armed for the head of each non-empty queue
        self._waiting: dict[str, deque[tuple[int, Any, str, int, int]]] = {}
        # answers waiting for their delivery time, in delivery order: (due, strat, msg, seq)
        self._outbox: deque[tuple[int, str, Msg, int]] = deque()
        self._last_due = 0
        self._flush_handle: Handle | None = None
        # delivery time of the answers of the engine call in progress
        self._call_ts = 0
        self._call_due: int | None = None
        # rate budget: current window index, requests used, thresholds already announced
        self._window = -1
        self._used = 0
        self._announced: set[int] = set()

    # ================================================================================ lifecycle
    def start(self) -> None:
        """Subscribe to requests and market data; Connecting now, ReadyToTrade after the delay."""
        if self._started:
            return
        self._started = True
        self.publish_status(GtwStatus.Connecting, "starting")
        if self.journal is not None:
            self._reconcile(self.journal)
        self.subscribe_requests()
        for inst in self.instruments:
            self._subs.append(
                self.bus.subscribe(self.topics.md(self.exchange, inst.instrument_id), self._on_md)
            )
        now = self.scheduler.now_ns()
        self._timers.append(
            self.scheduler.call_at(now + self.config.connect_delay_ns, self._become_ready)
        )
        for start, end in self.config.maintenance:
            if end <= now:
                continue
            self._timers.append(self.scheduler.call_at(start, self._enter_maintenance, end))
            self._timers.append(self.scheduler.call_at(end, self._leave_maintenance))

    def stop(self) -> None:
        """Cancel every open order (reports sent at once), announce the stop, unsubscribe."""
        if not self._started:
            return
        self._started = False
        self._ready = False
        now = self.scheduler.now_ns()
        self._waiting.clear()  # requests still in flight are dropped, as a venue going down does
        self._begin_call(now)
        n = self.engine.cancel_everything(now)
        self._end_call()
        self._commit()
        for _, strat, msg, seq in self._outbox:
            self._publish(strat, msg, seq)
        self._outbox.clear()
        for h in self._timers:
            h.cancel()
        self._timers.clear()
        for _, h in self._funding_timers.values():
            h.cancel()
        self._funding_timers.clear()
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        self.unsubscribe_all()
        self.publish_status(GtwStatus.Connecting, f"stopped; {n} open orders cancelled")

    def _reconcile(self, journal: OrderJournal) -> None:
        """Load and check the journaled state; re-send and answer what the last run left."""
        rec = reconcile(self.engine, journal)
        self.reconciliation = rec
        self.publish_status(GtwStatus.Connecting, "reconciling with the journal")
        for r in rec.unsent:
            self._publish(r.strat, r.msg, r.seq)
        now = self.scheduler.now_ns()
        for p in rec.pending:
            self._begin_call(now)
            if p.kind != "fetch":
                why = "gateway restarted before handling it"
                self._reject(p.msg, p.kind, GtwRejectCode.GtwNotReady, why, now)
            journal.request_done(p.seq)
            self._end_call()
        text = rec.text()
        if rec.clean:
            self.log.info("sim %s: %s", self.exchange.name, text)
        else:
            self.log.error("sim %s: %s", self.exchange.name, text)
        self.publish_status(GtwStatus.Connecting, rec.summary())
        if rec.orders or rec.unsent or rec.pending or not rec.clean:
            for strat in sorted(rec.strategies):
                self.bus.publish(
                    self.topics.telegram(strat),
                    TelegramPublish(
                        strat=strat,
                        text=f"gateway {self.exchange.name} restarted; {rec.text(strat)}",
                        priority=0,
                        ts=now,
                    ),
                    qos=1,
                )

    def _become_ready(self) -> None:
        self._ready = True
        if self._in_maintenance(self.scheduler.now_ns()):
            return
        self.publish_status(GtwStatus.ReadyToTrade, "simulated exchange ready")

    def _enter_maintenance(self, end: int) -> None:
        self.publish_status(GtwStatus.Maintenance, f"scheduled maintenance until {end}")

    def _leave_maintenance(self) -> None:
        now = self.scheduler.now_ns()
        if self._ready and not self._in_maintenance(now):
            self.publish_status(GtwStatus.ReadyToTrade, "maintenance over")

    def _in_maintenance(self, ts: int) -> bool:
        windows = self.config.maintenance
        return bool(windows) and any(start <= ts < end for start, end in windows)

    # ================================================================================ requests
    def on_new_order(self, req: NewOrder, seq: int = 0) -> None:
        """Schedule a NewOrder for its arrival at the exchange."""
        self._arrive(req, "new", seq)

    def on_modify_order(self, req: ModifyOrder, seq: int = 0) -> None:
        """Schedule a ModifyOrder for its arrival at the exchange."""
        self._arrive(req, "modify", seq)

    def on_cancel_order(self, req: CancelOrder, seq: int = 0) -> None:
        """Schedule a CancelOrder for its arrival at the exchange."""
        self._arrive(req, "cancel", seq)

    def on_cancel_all(self, req: CancelAll, seq: int = 0) -> None:
        """Schedule a CancelAll for its arrival at the exchange."""
        self._arrive(req, "cancel_all", seq)

    def on_fetch(self, req: FetchRequest) -> None:
        """Schedule a Fetch* request for its arrival at the exchange."""
        self._arrive(req, "fetch", 0)

    def holds_open_order(self, req: CancelOrder) -> bool:
        """Whether the order a cancel names is open on the simulated exchange."""
        return self.engine.order_is_open(req.strat, req.cl_id)

    def refuse_request(
        self, req: Any, kind: str, code: GtwRejectCode, reason: str, seq: int = 0
    ) -> None:
        """Answer a request refused before execution, after the answers queued before it. A
        journaled request (``seq``) gets its answer journaled with it marked handled, as an
        engine call's."""
        now = self.scheduler.now_ns()
        if seq and self.journal is not None:
            self._begin_call(now)
            self._reject(req, kind, code, reason, now)
            self.journal.request_done(seq)
            self._end_call()
            return
        self._call_ts = now
        self._call_due = now
        self._deliver(req.strat, reject_for(req, code, reason, now), kind, 0)

    def _arrive(self, req: Any, kind: str, seq: int) -> None:
        now = self.scheduler.now_ns()
        strat = req.strat
        t_ex = max(now + self.latency.entry_ns(kind), self._last_arrival.get(strat, 0))
        self._last_arrival[strat] = t_ex
        run_at = t_ex + self.latency.market_data_ns()
        queue = self._waiting.get(strat)
        if queue:  # never before an earlier request of the same strategy
            run_at = max(run_at, queue[-1][0])
        elif run_at <= now:
            self._process(req, kind, t_ex, seq)
            return
        else:
            queue = self._waiting[strat] = deque()
            # not kept: after stop(), _run_waiting finds the queue gone
            self.scheduler.call_at(run_at, self._run_waiting, strat, queue)
        queue.append((run_at, req, kind, t_ex, seq))

    def _run_waiting(self, strat: str, queue: deque[tuple[int, Any, str, int, int]]) -> None:
        """Handle the requests of ``strat`` whose time has come, in order; re-arm for the rest."""
        if self._waiting.get(strat) is not queue:
            return  # stopped meanwhile
        now = self.scheduler.now_ns()
        while queue and queue[0][0] <= now:
            _, req, kind, t_ex, seq = queue.popleft()
            self._process(req, kind, t_ex, seq)
        if queue:
            self.scheduler.call_at(queue[0][0], self._run_waiting, strat, queue)
        else:
            del self._waiting[strat]

    def _process(self, req: Any, kind: str, t_ex: int, seq: int = 0) -> None:
        if not self._started:
            return
        self._begin_call(t_ex)
        try:
            self._handle(req, kind, t_ex)
        except Exception as exc:  # the last line of defence: one answer per request all the same
            self._engine_fault(req, kind, t_ex, exc)
        if seq and self.journal is not None:
            self.journal.request_done(seq)
        self._end_call()

    def _engine_fault(self, req: Any, kind: str, t_ex: int, exc: Exception) -> None:
        """The engine raised on ``req`` (a bug: refusals are rejects): log it and, unless the
        engine had answered the request before failing, answer it ``ExchangeError``."""
        self.faults += 1
        if self.faults == 1:
            self.log.error(
                "sim %s: the engine failed on %s of %s; answered ExchangeError",
                self.exchange.name,
                type(req).__name__,
                req.strat,
                exc_info=exc,
            )
        else:
            self._log_refusal(
                self.faults,
                "sim %s: the engine failed on %s of %s (%d faults so far): %r",
                self.exchange.name,
                type(req).__name__,
                req.strat,
                self.faults,
                exc,
            )
        answers = ANSWERS[kind]
        if any(s == req.strat and isinstance(m, answers) for s, m, _ in self._staged):
            return
        why = f"internal error handling the request: {type(exc).__name__}: {exc}"[:300]
        self._reject(req, kind, GtwRejectCode.ExchangeError, why, t_ex)

    def _handle(self, req: Any, kind: str, t_ex: int) -> None:
        rqst_type = type(req).__name__
        if not self._ready or self._in_maintenance(t_ex):
            state = "in maintenance" if self._in_maintenance(t_ex) else "not ready"
            self._reject(req, kind, GtwRejectCode.GtwNotReady, f"gateway {state}", t_ex)
            return
        if rqst_type in self.config.unsupported:
            self._on_report(req.strat, echo_req_id(req, UnsupportedOp(msg_type=rqst_type)), kind)
            return
        if not self._take_budget(req.strat, kind, t_ex):
            self._reject(
                req,
                kind,
                GtwRejectCode.RateLimitExceeded,
                f"rate limit of {self.config.rate_limit} requests per "
                f"{self.config.rate_window_ns} ns exceeded",
                t_ex,
            )
            return
        eng = self.engine
        if kind == "new":
            eng.new_order(req, t_ex)
        elif kind == "modify":
            eng.modify_order(req, t_ex)
        elif kind == "cancel":
            eng.cancel_order(req, t_ex)
        elif kind == "cancel_all":
            eng.cancel_all(req, t_ex)
        else:
            eng.fetch(req, t_ex)

    def _reject(self, req: Any, kind: str, code: GtwRejectCode, reason: str, ts: int) -> None:
        self._on_report(req.strat, reject_for(req, code, reason, ts), kind)

    def _take_budget(self, strat: str, kind: str, ts: int) -> bool:
        """Count one request in the window containing ``ts``; False once the budget is spent."""
        limit = self.config.rate_limit
        if not limit:
            return True
        window = ts // self.config.rate_window_ns
        if window != self._window:
            self._window = window
            self._used = 0
            self._announced.clear()
        if self._used >= limit:
            return False
        self._used += 1
        reset_ts = (window + 1) * self.config.rate_window_ns
        for pct in _THRESHOLDS:
            if pct not in self._announced and self._used * 100 >= pct * limit:
                self._announced.add(pct)
                self._on_report(
                    strat,
                    RateLimitInfo(
                        rate_limit=limit, rate_remaining=limit - self._used, reset_ts=reset_ts
                    ),
                    kind,
                )
        return True

    # ================================================================================ market data
    def _on_md(self, topic: str, msg: Any) -> None:
        # Once per market-data message: kept lean (a fixed market-data delay is not drawn, and
        # a message that made no report is not committed).
        md_delay = self._md_delay
        t_ex = self.scheduler.now_ns() - (
            md_delay if md_delay is not None else self.latency.market_data_ns()
        )
        # _begin_call, inline (this runs per message)
        self._call_ts = t_ex
        self._call_due = None
        if self._staged:
            self._staged.clear()
        handle = self.engine.md_handlers.get(type(msg))  # engine.on_market_data, inline
        if handle is not None:
            handle(msg, t_ex)
        if self._staged:
            self._end_call()
        if type(msg) is FundingUpdate and msg.next_ts:
            self._arm_funding(msg.iid, msg.next_ts)

    def _arm_funding(self, iid: int, due: int) -> None:
        old = self._funding_timers.get(iid)
        if old is not None:
            if old[0] == due:
                return
            old[1].cancel()
        # the exchange pays at ``due``; we learn of it a market-data delay later at the earliest
        handle = self.scheduler.call_at(due, self._pay_funding, iid, due)
        self._funding_timers[iid] = (due, handle)

    def _pay_funding(self, iid: int, due: int) -> None:
        self._funding_timers.pop(iid, None)
        self._begin_call(due)
        payments = self.engine.settle_funding(iid, due)
        self._end_call({p.strat for p in payments})
        for p in payments:
            self.log.info(
                "sim %s: funding %s %s paid by %s on %s (rate %s, qty %s, mark %s)",
                self.exchange.name,
                p.amount,
                p.coin,
                p.strat,
                iid,
                p.rate,
                p.qty,
                p.mark,
            )

    # ================================================================================ delivery
    def _begin_call(self, t_ex: int) -> None:
        self._call_ts = t_ex
        self._call_due = None
        self._staged.clear()

    def _on_report(self, strat: str, msg: Msg, kind: str) -> None:
        """Engine sink: keep ``msg`` until the end of the engine call (see :meth:`_end_call`)."""
        self._staged.append((strat, msg, kind))

    def _end_call(self, touched: set[str] | None = None) -> None:
        """Journal the call's reports and changed state (committed with everything else of this
        loop turn, :meth:`commit_soon`), then queue them for delivery after that commit."""
        staged = self._staged
        if not staged and not touched:
            return
        self._staged = []
        j = self.journal
        if j is None:
            for strat, msg, kind in staged:
                self._deliver(strat, msg, kind, 0)
            return
        kept: list[tuple[str, Msg, str, int]] = []
        if touched:  # accounts changed: fills and funding only
            self._dirty_accounts.update(touched)
        for strat, msg, kind in staged:
            seq = j.add_report(strat, msg, self._call_ts)
            if seq is None:
                self.log.warning(
                    "sim %s: execution %s already journaled; not sent again",
                    self.exchange.name,
                    getattr(msg, "exec_id", "?"),
                )
                continue
            kept.append((strat, msg, kind, seq))
            cl_id = getattr(msg, "cl_id", None)
            if cl_id:
                self._dirty_orders.add((strat, cl_id))
            if type(msg) is OrderExecution:
                self._dirty_accounts.add(strat)
        self.commit_soon()
        for strat, msg, kind, seq in kept:
            self._deliver(strat, msg, kind, seq)

    def commit_soon(self) -> None:
        """Group commit: the journal's writes are committed once, after the requests read in
        this batch were handled and before the broker hears they were received
        (``bus.before_acks``; else at the end of this turn of the loop, ``scheduler.call_soon``);
        what they answer is published only after it."""
        if self.journal is None:
            return
        self._dirty = True
        if not self._commit_scheduled:
            self._commit_scheduled = True
            if not self.bus.before_acks(self._commit_and_flush):
                self.scheduler.call_soon(self._commit_and_flush)

    def _commit(self) -> None:
        """Commit the journal's pending writes: the state of the orders and accounts the
        reports since the last commit changed (once each, as they are now), and the id counters
        if they moved."""
        j = self.journal
        if j is None or not self._dirty:
            return
        engine = self.engine
        if self._dirty_orders:
            for strat, cl_id in self._dirty_orders:
                o = engine.order(strat, cl_id)
                if o is not None:
                    j.save_order(strat, cl_id, order_to_state(o))
            self._dirty_orders.clear()
        if self._dirty_accounts:
            for strat in self._dirty_accounts:
                j.save_account(strat, account_to_state(engine.account(strat)))
            self._dirty_accounts.clear()
        counters = self.engine.counters
        if counters != self._counters_saved:
            j.set_meta_many({"order_n": str(counters[0]), "exec_n": str(counters[1])})
            self._counters_saved = counters
        j.commit()
        self._dirty = False

    def _commit_and_flush(self) -> None:
        self._commit_scheduled = False
        self._commit()
        self._flush_due()

    def _deliver(self, strat: str, msg: Msg, kind: str, seq: int) -> None:
        """Queue ``msg`` for delivery one response delay after the exchange time (and after
        the journal's next commit)."""
        now = self.scheduler.now_ns()
        if self._call_due is None:
            self._call_due = self._call_ts + self.latency.response_ns(kind)
        due = max(self._call_due, now, self._last_due)
        self._last_due = due
        if due <= now and not self._outbox and not self._dirty:
            self._publish(strat, msg, seq)
            return
        self._outbox.append((due, strat, msg, seq))
        if due > now and self._flush_handle is None and len(self._outbox) == 1:
            self._flush_handle = self.scheduler.call_at(due, self._flush)
        # due now: the commit scheduled by commit_soon publishes it

    def _publish(self, strat: str, msg: Msg, seq: int) -> None:
        self.publish_report(strat, msg)
        if seq > self.published_seq:
            self.published_seq = seq

    def _flush(self) -> None:
        self._flush_handle = None
        self._commit()
        self._flush_due()

    def _flush_due(self) -> None:
        """Publish what is due (everything queued is committed by now); re-arm for the rest."""
        now = self.scheduler.now_ns()
        box = self._outbox
        while box and box[0][0] <= now:
            _, strat, msg, seq = box.popleft()
            self._publish(strat, msg, seq)
        if box and self._flush_handle is None:
            self._flush_handle = self.scheduler.call_at(box[0][0], self._flush)
