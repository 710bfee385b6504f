"""The seam every order-entry gateway implements, simulated or real.

A gateway serves one exchange. It reads the strategies' requests on ``topics.gtw_req_all(exchange)``
(one topic per strategy, ``.../req/<strat>``), answers each strategy on ``topics.gtw_rpt(exchange,
strat)`` and keeps its state retained on ``topics.gtw_status(exchange)``. :class:`GatewayBase` does
the routing and publishing; a concrete gateway implements one ``on_<request>`` method per request
kind and its lifecycle.

Contract for implementations (``mlthon/gateways/_template/README.md`` repeats it):

* every ``NewOrder`` gets a ``NewOrderAck`` or a ``NewOrderReject``; every ``ModifyOrder``,
  ``CancelOrder`` and ``CancelAll`` its ack or reject; every ``Fetch*`` its info report or a
  ``RequestReject``; an operation the venue lacks gets ``UnsupportedOp``;
* fills are ``OrderExecution`` (unique ``exec_id``), cancellations ``OrderCancelled`` (requested or
  not);
* ``stop()`` cancels the open orders before the gateway lets go of the bus.

Before any ``on_*`` method sees a request, the base (``GatewayBase._dispatch``), in this order:

1. drops a request whose payload ``strat`` is not the strategy of its topic (the broker's ACL lets a
   strategy publish on its own request topic only, so the topic names the real sender): it logs a
   WARNING and answers the topic's strategy with the request's reject (``InvalidRequest``);
2. drops a repeat of an order request (the same bytes, ``ts`` included: a QoS 1 redelivery, maybe
   across a restart when there is a journal), remembered in memory and, with a journal, in the
   journal (an unstamped request, ``ts`` 0, is checked against the journal only);
3. refuses a request whose values decode but make no sense (a ``NaN`` or ``1e30`` price or
   quantity, an empty or 10 kB client id, a bad strategy name or coin...), with the rule of
   :func:`mlthon.infra.bus.checks.request_problem`: its reject, ``InvalidRequest``, the reason
   naming the field (``NewOrder.qty: '1e30' is out of range ...``);
4. refuses, without executing it, a request older than the time-to-live (``request_ttl_ns``, from
   the request's ``ts``, the sender's clock): ``RequestExpired``; and one that waited longer than
   ``overload_lag_ns`` although it was sent while the gateway was up (the gateway is behind):
   ``GatewayOverloaded``. Cancels and cancel-alls are exempt when they have something to pull
   (see :meth:`GatewayBase.refusal`). A request without a send time (``ts`` 0, or a fetch, which
   has none) never expires;
5. journals the order request (with a journal) and hands it to its ``on_*`` method with its
   journal sequence number. An exception escaping the ``on_*`` method (a bug: every refusal is a
   reject) is logged with its traceback and the request answered ``ExchangeError`` all the same
   (:meth:`GatewayBase.answer_fault`): every request gets exactly one answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mlthon.basics.mlt_enum import Exchange, GtwRejectCode, GtwStatus
from mlthon.gateways.journal import legacy_request_key, request_key
from mlthon.infra.bus.bus import BusBase, Subscription
from mlthon.infra.bus.checks import request_problem
from mlthon.infra.bus.codec import encode
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
    GatewayStatus,
    ModifyOrder,
    ModifyOrderAck,
    ModifyOrderReject,
    Msg,
    NewOrder,
    NewOrderAck,
    NewOrderReject,
    OrdersInfo,
    OrderStatusInfo,
    PositionInfo,
    RequestReject,
    UnsupportedOp,
    WalletInfo,
)
from mlthon.infra.bus.topics import Topics
from mlthon.infra.clock import Scheduler

if TYPE_CHECKING:
    from mlthon.gateways.journal import OrderJournal
    from mlthon.infra.bus.mqtt import MqttBus

FetchRequest = (
    FetchAccount | FetchWallet | FetchPosition | FetchFunding | FetchOrderStatus | FetchOrders
)
OrderRequest = NewOrder | ModifyOrder | CancelOrder | CancelAll

DEFAULT_REQUEST_TTL_NS = 5_000_000_000
"""A request older than this (from its ``ts``) is refused ``RequestExpired`` (0: never)."""
DEFAULT_OVERLOAD_LAG_NS = 1_000_000_000
"""A request sent while the gateway was up and waiting longer than this is refused
``GatewayOverloaded`` (0: never)."""

_KINDS: dict[type[Any], str] = {
    NewOrder: "new",
    ModifyOrder: "modify",
    CancelOrder: "cancel",
    CancelAll: "cancel_all",
    FetchAccount: "fetch",
    FetchWallet: "fetch",
    FetchPosition: "fetch",
    FetchFunding: "fetch",
    FetchOrderStatus: "fetch",
    FetchOrders: "fetch",
}
_SEEN_MAX = 200_000
log = logging.getLogger(__name__)
_MS = 1_000_000

ANSWERS: dict[str, tuple[type[Msg], ...]] = {
    "new": (NewOrderAck, NewOrderReject, UnsupportedOp),
    "modify": (ModifyOrderAck, ModifyOrderReject, UnsupportedOp),
    "cancel": (CancelOrderAck, CancelOrderReject, UnsupportedOp),
    "cancel_all": (CancelAllAck, CancelAllReject, UnsupportedOp),
    "fetch": (
        AccountInfo,
        WalletInfo,
        PositionInfo,
        FundingInfo,
        OrderStatusInfo,
        OrdersInfo,
        RequestReject,
        UnsupportedOp,
    ),
}
"""The reports that answer a request of each kind (exactly one of them answers each request)."""


def reject_for(req: Any, code: GtwRejectCode, reason: str, ts: int) -> Msg:
    """The reject that answers request ``req``: the order-specific reject for order requests,
    else a ``RequestReject`` naming the request's type."""
    if isinstance(req, NewOrder):
        return NewOrderReject(cl_id=req.cl_id, code=code, reason=reason, ts=ts)
    if isinstance(req, ModifyOrder):
        return ModifyOrderReject(cl_id=req.cl_id, code=code, reason=reason, ts=ts)
    if isinstance(req, CancelOrder):
        return CancelOrderReject(cl_id=req.cl_id, code=code, reason=reason, ts=ts)
    if isinstance(req, CancelAll):
        return CancelAllReject(instrument_id=req.instrument_id, code=code, reason=reason, ts=ts)
    return RequestReject(
        code=code,
        detail=reason,
        rqst_type=type(req).__name__,
        ts=ts,
        req_id=getattr(req, "req_id", ""),
    )


async def confirm_sent(
    bus: MqttBus,
    published_seq: Callable[[], int],
    journal: OrderJournal,
    stop: asyncio.Event,
    every_s: float = 0.05,
    checkpoint_every_s: float = 0.25,
) -> None:
    """Until ``stop``: advance the journal's sent watermark to the last report handed to the bus
    (``published_seq()``) once the broker has acknowledged everything published so far; every
    ``checkpoint_every_s``, checkpoint the journal in a worker thread (off the loop)."""
    loop = asyncio.get_running_loop()
    checkpoint: asyncio.Future[None] | None = None
    next_checkpoint = loop.time() + checkpoint_every_s
    try:
        while not stop.is_set():
            upto = published_seq()
            if upto > journal.sent_seq and bus.connected and await bus.flush(2.0):
                journal.mark_sent(upto)
            if checkpoint is not None and checkpoint.done():
                exc = checkpoint.exception()
                if exc is not None:
                    log.warning("journal %s: checkpoint failed: %s", journal.path, exc)
                checkpoint = None
            if checkpoint is None and loop.time() >= next_checkpoint:
                next_checkpoint = loop.time() + checkpoint_every_s
                checkpoint = loop.run_in_executor(None, journal.checkpoint)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(every_s):
                    await stop.wait()
    finally:
        if checkpoint is not None:  # the journal is closed next: let the thread finish first
            with contextlib.suppress(Exception):
                await asyncio.shield(checkpoint)


class GatewayBase(ABC):
    """Routing and publishing shared by every gateway.

    Args:
        bus: the message bus.
        scheduler: time and timers (the only clock a gateway may read).
        topics: topic names.
        exchange: the venue served.
        logger: where to log (default: this module's logger).
        request_ttl_ns: time-to-live of a request from its send time (0: never expires).
        overload_lag_ns: the longest wait of a request sent while the gateway was up before it
            is refused ``GatewayOverloaded`` (0: never).

    Attributes:
        journal: the order journal (None: none); requests are journaled on arrival.
    """

    def __init__(
        self,
        bus: BusBase,
        scheduler: Scheduler,
        topics: Topics,
        exchange: Exchange,
        logger: logging.Logger | None = None,
        *,
        request_ttl_ns: int = DEFAULT_REQUEST_TTL_NS,
        overload_lag_ns: int = DEFAULT_OVERLOAD_LAG_NS,
    ) -> None:
        if request_ttl_ns < 0 or overload_lag_ns < 0:
            raise ValueError(
                f"request_ttl_ns ({request_ttl_ns}) and overload_lag_ns ({overload_lag_ns}) "
                "must be >= 0"
            )
        self.bus = bus
        self.scheduler = scheduler
        self.topics = topics
        self.exchange = exchange
        self.log = logger or logging.getLogger(__name__)
        self.status = GtwStatus.Connecting
        self.journal: OrderJournal | None = None
        self.request_ttl_ns = request_ttl_ns
        self.overload_lag_ns = overload_lag_ns
        self._subs: list[Subscription] = []
        self._seen_reqs: dict[str, None] = {}  # identities of recent order requests, in order
        # requests sent before this are a backlog from before (re)connecting, not a sign of load
        self._up_since = 0
        self._started_ns = 0  # a request sent after this cannot be in an earlier run's journal
        self.foreign_requests = 0  # requests dropped: payload strat != topic strat
        self.duplicate_requests = 0  # repeats of an order request (QoS 1 redeliveries) dropped
        self.invalid_requests = 0  # refused InvalidRequest: values that make no sense
        self.expired_requests = 0  # refused RequestExpired
        self.overloaded_requests = 0  # refused GatewayOverloaded
        self.late_pulls = 0  # cancels / cancel-alls executed although older than the TTL
        self.faults = 0  # requests whose handling raised (a bug), answered ExchangeError

    # --- lifecycle --------------------------------------------------------------------------------
    @abstractmethod
    def start(self) -> None:
        """Subscribe to requests (and whatever else is needed) and announce the status."""

    @abstractmethod
    def stop(self) -> None:
        """Cancel open orders, announce the status, and stop reading requests."""

    # --- requests -------------------------------------------------------------------------------
    # ``seq`` is the request's journal sequence number (0 without a journal): the gateway marks
    # it handled (``journal.request_done``) in the transaction of its answer.
    @abstractmethod
    def on_new_order(self, req: NewOrder, seq: int = 0) -> None:
        """Place an order: answer NewOrderAck / NewOrderReject, then fills and cancels."""

    @abstractmethod
    def on_modify_order(self, req: ModifyOrder, seq: int = 0) -> None:
        """Change price and/or qty: answer ModifyOrderAck / ModifyOrderReject."""

    @abstractmethod
    def on_cancel_order(self, req: CancelOrder, seq: int = 0) -> None:
        """Cancel one order: answer CancelOrderAck + OrderCancelled, or CancelOrderReject."""

    @abstractmethod
    def on_cancel_all(self, req: CancelAll, seq: int = 0) -> None:
        """Cancel a strategy's orders: CancelAllAck + one OrderCancelled each, or a reject."""

    @abstractmethod
    def on_fetch(self, req: FetchRequest) -> None:
        """Answer a Fetch* request with its info report or a RequestReject."""

    # --- shared plumbing ------------------------------------------------------------------------
    def subscribe_requests(self) -> None:
        """Route every request on ``gtw_req_all(exchange)`` to the ``on_*`` methods."""
        now = self.scheduler.now_ns()
        self._started_ns = self._started_ns or now
        self._up_since = now
        self.bus.add_connection_listener(self._on_bus_connection)
        self._subs.append(
            self.bus.subscribe(self.topics.gtw_req_all(self.exchange), self._dispatch, qos=1)
        )

    def _on_bus_connection(self, up: bool) -> None:
        if up:  # what the broker kept for us while away is a backlog, not load
            self._up_since = self.scheduler.now_ns()

    def unsubscribe_all(self) -> None:
        """End every subscription made through this base."""
        for sub in self._subs:
            self.bus.unsubscribe(sub)
        self._subs.clear()

    def _dispatch(self, topic: str, msg: Any) -> None:
        sender = self.topics.req_strat(topic)
        strat = getattr(msg, "strat", None)
        if sender is None or strat != sender:
            self._refuse_foreign(topic, sender, msg)
            return
        kind = _KINDS.get(type(msg))
        if kind is None:
            self.log.warning(
                "gateway %s: ignoring %s on %s", self.exchange.name, type(msg).__name__, topic
            )
            return
        key = ""
        raw = b""
        # Identical bytes are a redelivery when the sender stamped its send time; without a
        # stamp (ts 0: tests, tools) only a journaled gateway treats them as one. A bus that
        # never redelivers (a backtest's) needs the check only for the journal.
        if kind != "fetch" and ((msg.ts > 0 and self.bus.redelivers) or self.journal is not None):
            raw = encode(msg)
            key = request_key(msg, kind, raw)
            if self._is_repeat(key, msg, kind, raw):
                self.duplicate_requests += 1
                self.log.info(
                    "gateway %s: repeated %s of %s dropped (%s)",
                    self.exchange.name,
                    type(msg).__name__,
                    msg.strat,
                    getattr(msg, "cl_id", ""),
                )
                return
            self._remember(key)
        problem = request_problem(msg)
        if problem is not None:
            self.invalid_requests += 1
            self._log_refusal(
                self.invalid_requests,
                "gateway %s: %s of %s refused: %s (%d so far)",
                self.exchange.name,
                type(msg).__name__,
                msg.strat,
                problem,
                self.invalid_requests,
            )
            self.refuse_request(msg, kind, GtwRejectCode.InvalidRequest, problem)
            return
        refused = self.refusal(msg, kind, self.scheduler.now_ns())
        if refused is not None:
            self.refuse_request(msg, kind, *refused)
            return
        seq = 0
        j = self.journal
        if key and j is not None:
            seq = j.add_request(key, msg.strat, kind, msg, self.scheduler.now_ns(), raw) or 0
            self.commit_soon()
        try:
            if kind == "new":
                self.on_new_order(msg, seq)
            elif kind == "cancel":
                self.on_cancel_order(msg, seq)
            elif kind == "modify":
                self.on_modify_order(msg, seq)
            elif kind == "cancel_all":
                self.on_cancel_all(msg, seq)
            else:
                self.on_fetch(msg)
        except Exception as exc:  # the last line of defence: the request still gets its answer
            self.answer_fault(msg, kind, exc, seq)

    def answer_fault(self, req: Any, kind: str, exc: BaseException, seq: int = 0) -> None:
        """A request's handling raised ``exc`` (a bug: refusals are rejects, not exceptions):
        log it (the traceback the first time, then every 10th, 100th...) and answer the request
        ``ExchangeError`` naming the fault. Gateways that journal the answer override
        :meth:`refuse_request`; ``seq`` is the request's journal sequence number."""
        self.faults += 1
        if self.faults == 1:
            self.log.error(
                "gateway %s: handling %s of %s failed; answered ExchangeError",
                self.exchange.name,
                type(req).__name__,
                getattr(req, "strat", "?"),
                exc_info=exc,
            )
        else:
            self._log_refusal(
                self.faults,
                "gateway %s: handling %s of %s failed (%d faults so far): %r",
                self.exchange.name,
                type(req).__name__,
                getattr(req, "strat", "?"),
                self.faults,
                exc,
            )
        reason = f"internal error handling the request: {type(exc).__name__}: {exc}"[:300]
        self.refuse_request(req, kind, GtwRejectCode.ExchangeError, reason, seq)

    def _is_repeat(self, key: str, msg: Any, kind: str, raw: bytes) -> bool:
        if key in self._seen_reqs:
            return True
        j = self.journal
        if j is None:
            return False
        # Only a request sent before this run started can be in the journal without being in
        # memory (memory holds the last _SEEN_MAX); skipping the lookup saves a query each.
        ts = getattr(msg, "ts", 0)
        if ts > 0 and ts >= self._started_ns:
            return False
        return j.has_request(key, legacy_request_key(msg, kind, raw))

    def _remember(self, key: str) -> None:
        seen = self._seen_reqs
        seen[key] = None
        if len(seen) > _SEEN_MAX:
            del seen[next(iter(seen))]

    def commit_soon(self) -> None:
        """Make the journal's pending writes durable; gateways that group commits override it
        (the commit must come before any report of the request is published)."""
        if self.journal is not None:
            self.journal.commit()

    def refusal(self, req: Any, kind: str, now: int) -> tuple[GtwRejectCode, str] | None:
        """Why ``req`` (of ``kind``: new, modify, cancel, cancel_all, fetch) must not be
        executed now, from its age ``now - req.ts`` (None: it may).

        * older than ``request_ttl_ns``: ``RequestExpired``;
        * sent while the gateway was up and waiting longer than ``overload_lag_ns``: the gateway
          is behind, ``GatewayOverloaded``.

        A cancel-all, and a cancel whose order is open (:meth:`holds_open_order`), is executed
        all the same: pulling an order only ever reduces risk, the cancel names one order by
        its client id (never reused), and a strategy that died after sending its last
        cancel-all must have it done. A cancel with nothing to pull is answered as usual when
        merely old, and refused when the gateway is overloaded (that is cheaper).
        """
        ts = getattr(req, "ts", 0)
        if ts <= 0:
            return None
        age = now - ts
        ttl = self.request_ttl_ns
        if ttl and age > ttl:
            if kind in ("cancel", "cancel_all"):
                self.late_pulls += 1
                self._log_refusal(
                    self.late_pulls,
                    "gateway %s: %s of %s is %.0f ms old (time-to-live %.0f ms): executed (pulls)",
                    self.exchange.name,
                    type(req).__name__,
                    req.strat,
                    age / _MS,
                    ttl / _MS,
                )
                return None
            self.expired_requests += 1
            self._log_refusal(
                self.expired_requests,
                "gateway %s: %s of %s expired: %.0f ms old, time-to-live %.0f ms (%d so far)",
                self.exchange.name,
                type(req).__name__,
                req.strat,
                age / _MS,
                ttl / _MS,
                self.expired_requests,
            )
            return (
                GtwRejectCode.RequestExpired,
                f"request expired: sent {age / _MS:.0f} ms ago, the gateway's time-to-live is "
                f"{ttl / _MS:.0f} ms; not executed",
            )
        lag = self.overload_lag_ns
        if lag and age > lag and ts >= self._up_since:
            if kind == "cancel_all" or (kind == "cancel" and self.holds_open_order(req)):
                return None
            self.overloaded_requests += 1
            self._log_refusal(
                self.overloaded_requests,
                "gateway %s: overloaded: %s of %s waited %.0f ms (bound %.0f ms), refused (%d)",
                self.exchange.name,
                type(req).__name__,
                req.strat,
                age / _MS,
                lag / _MS,
                self.overloaded_requests,
            )
            return (
                GtwRejectCode.GatewayOverloaded,
                f"gateway overloaded: the request waited {age / _MS:.0f} ms, more than "
                f"{lag / _MS:.0f} ms; not executed, send it again later",
            )
        return None

    def _log_refusal(self, n: int, fmt: str, *args: Any) -> None:
        # the 1st, 10th, 100th... and every 10,000th: a flood of refusals must not flood the log
        if n in (1, 10, 100, 1000) or n % 10_000 == 0:
            self.log.warning(fmt, *args)

    def holds_open_order(self, req: CancelOrder) -> bool:
        """Whether the order a cancel names is open here (default: assume it is)."""
        return True

    def refuse_request(
        self, req: Any, kind: str, code: GtwRejectCode, reason: str, seq: int = 0
    ) -> None:
        """Answer a request refused before execution (insane, expired, overloaded) with its
        reject; ``seq`` is its journal sequence number when it was journaled (0: it was not)."""
        self.publish_report(req.strat, reject_for(req, code, reason, self.scheduler.now_ns()))

    def _refuse_foreign(self, topic: str, sender: str | None, msg: Any) -> None:
        """Drop a request sent in another strategy's name; tell the sender why."""
        self.foreign_requests += 1
        kind = type(msg).__name__
        strat = getattr(msg, "strat", None)
        self.log.warning(
            "gateway %s: dropped %s on %s: it names strategy %r, the topic %r",
            self.exchange.name,
            kind,
            topic,
            strat,
            sender,
        )
        if sender is None:
            return
        reason = f"request names strategy {strat!r} but was sent on {sender!r}'s topic"
        answer = reject_for(msg, GtwRejectCode.InvalidRequest, reason, self.scheduler.now_ns())
        self.publish_report(sender, answer)

    def publish_report(self, strat: str, msg: Msg) -> None:
        """Send a report to one strategy (QoS 1)."""
        self.bus.publish(self.topics.gtw_rpt(self.exchange, strat), msg, qos=1)

    def publish_status(self, status: GtwStatus, detail: str = "") -> None:
        """Set and announce (retained) the gateway's status."""
        self.status = status
        self.log.info("gateway %s: %s %s", self.exchange.name, status.name, detail)
        self.bus.publish(
            self.topics.gtw_status(self.exchange),
            GatewayStatus(
                exchange=self.exchange, status=status, detail=detail, ts=self.scheduler.now_ns()
            ),
            qos=1,
            retain=True,
        )
