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

The base drops, before any ``on_*`` method sees it, a request whose payload ``strat`` is not the
strategy of its topic (the broker's ACL lets a strategy publish on its own request topic only, so
the topic names the real sender): it logs a WARNING and answers the topic's strategy with the
request's reject (``InvalidRequest``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mlthon.basics.mlt_enum import Exchange, GtwRejectCode, GtwStatus
from mlthon.infra.bus.bus import BusBase, Subscription
from mlthon.infra.bus.messages import (
    CancelAll,
    CancelAllReject,
    CancelOrder,
    CancelOrderReject,
    FetchAccount,
    FetchFunding,
    FetchOrders,
    FetchOrderStatus,
    FetchPosition,
    FetchWallet,
    GatewayStatus,
    ModifyOrder,
    ModifyOrderReject,
    Msg,
    NewOrder,
    NewOrderReject,
    RequestReject,
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
) -> None:
    """Until ``stop``: advance the journal's sent watermark to the last report handed to the bus
    (``published_seq()``) once the broker has acknowledged everything published so far."""
    while not stop.is_set():
        upto = published_seq()
        if upto > journal.sent_seq and bus.connected and await bus.flush(2.0):
            journal.mark_sent(upto)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(every_s):
                await stop.wait()


class GatewayBase(ABC):
    """Routing and publishing shared by every gateway.

    Args:
        bus: the message bus.
        scheduler: time and timers (the only clock a gateway may read).
        topics: topic names.
        exchange: the venue served.
        logger: where to log (default: this module's logger).
    """

    def __init__(
        self,
        bus: BusBase,
        scheduler: Scheduler,
        topics: Topics,
        exchange: Exchange,
        logger: logging.Logger | None = None,
    ) -> None:
        self.bus = bus
        self.scheduler = scheduler
        self.topics = topics
        self.exchange = exchange
        self.log = logger or logging.getLogger(__name__)
        self.status = GtwStatus.Connecting
        self._subs: list[Subscription] = []
        self.foreign_requests = 0  # requests dropped: payload strat != topic strat

    # --- lifecycle --------------------------------------------------------------------------------
    @abstractmethod
    def start(self) -> None:
        """Subscribe to requests (and whatever else is needed) and announce the status."""

    @abstractmethod
    def stop(self) -> None:
        """Cancel open orders, announce the status, and stop reading requests."""

    # --- requests -------------------------------------------------------------------------------
    @abstractmethod
    def on_new_order(self, req: NewOrder) -> None:
        """Place an order: answer NewOrderAck / NewOrderReject, then fills and cancels."""

    @abstractmethod
    def on_modify_order(self, req: ModifyOrder) -> None:
        """Change price and/or qty: answer ModifyOrderAck / ModifyOrderReject."""

    @abstractmethod
    def on_cancel_order(self, req: CancelOrder) -> None:
        """Cancel one order: answer CancelOrderAck + OrderCancelled, or CancelOrderReject."""

    @abstractmethod
    def on_cancel_all(self, req: CancelAll) -> None:
        """Cancel a strategy's orders: CancelAllAck + one OrderCancelled each, or a reject."""

    @abstractmethod
    def on_fetch(self, req: FetchRequest) -> None:
        """Answer a Fetch* request with its info report or a RequestReject."""

    # --- shared plumbing ------------------------------------------------------------------------
    def subscribe_requests(self) -> None:
        """Route every request on ``gtw_req_all(exchange)`` to the ``on_*`` methods."""
        self._subs.append(
            self.bus.subscribe(self.topics.gtw_req_all(self.exchange), self._dispatch, qos=1)
        )

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
        if isinstance(msg, NewOrder):
            self.on_new_order(msg)
        elif isinstance(msg, ModifyOrder):
            self.on_modify_order(msg)
        elif isinstance(msg, CancelOrder):
            self.on_cancel_order(msg)
        elif isinstance(msg, CancelAll):
            self.on_cancel_all(msg)
        elif isinstance(
            msg,
            FetchAccount
            | FetchWallet
            | FetchPosition
            | FetchFunding
            | FetchOrderStatus
            | FetchOrders,
        ):
            self.on_fetch(msg)
        else:
            self.log.warning(
                "gateway %s: ignoring %s on %s", self.exchange.name, type(msg).__name__, topic
            )

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
