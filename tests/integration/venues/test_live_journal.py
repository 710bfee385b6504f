"""The live gateway's order journal against the fake Binance exchange: a gateway object killed
mid-stream (its task cancelled, no clean stop) and started again from its journal loses no fill,
reports none twice, keeps its client order ids used and restores its open orders."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import attrs
import pytest

from mlthon.basics.mlt_enum import Exchange, GtwRejectCode, GtwStatus, Side
from mlthon.gateways.binance_usdm.gateway import build_gateway
from mlthon.gateways.journal import OrderJournal
from mlthon.gateways.live.config import Credentials, LiveGatewayConfig
from mlthon.gateways.live.gateway import LiveGateway, venue_client_id
from mlthon.infra.bus.inproc import InProcBus
from mlthon.infra.bus.messages import (
    FetchOrders,
    GatewayStatus,
    ModifyOrder,
    ModifyOrderAck,
    ModifyOrderReject,
    Msg,
    NewOrder,
    NewOrderAck,
    NewOrderReject,
    OrderExecution,
    OrdersInfo,
)
from mlthon.infra.bus.topics import Topics
from mlthon.infra.clock import LiveScheduler
from tests.conftest import wait_until
from tests.fakes.venues.binance import API_KEY, API_SECRET, FakeBinance
from tests.integration.venues.support import instruments

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

EX = Exchange.BinanceUsdm
BTC = 1001


def _new(cl_id: str, price: str = "49000.0", ts: int = 1) -> NewOrder:
    """A new order; ``ts`` tells two requests with the same fields apart (else a repeat)."""
    return NewOrder(
        strat="s1", cl_id=cl_id, instrument_id=BTC, side=Side.Buy, price=price, qty="0.010", ts=ts
    )


class Run:
    """One life of the gateway process: a gateway object on the shared bus, its own journal
    connection, a task that can be killed."""

    def __init__(self, fx: FakeBinance, bus: InProcBus, topics: Topics, db: Path) -> None:
        scheduler = LiveScheduler(loop=asyncio.get_running_loop())
        config = LiveGatewayConfig(
            exchange=EX,
            rest_url=fx.rest_url,
            ws_url=fx.ws_url,
            request_timeout_s=1.0,
            reconnect_max_s=0.2,
            cancel_on_stop=False,
            # the requests carry small ts values (identities, not send times): never expire them
            request_ttl_ns=0,
        )
        self.journal = OrderJournal(db)
        self.gw: LiveGateway = build_gateway(
            bus, scheduler, topics, config, instruments(EX), Credentials(API_KEY, API_SECRET)
        )
        self.gw.journal = self.journal
        self.task = asyncio.create_task(self.gw.run(asyncio.Event()), name="test.gateway")

    async def kill(self) -> None:
        """Like kill -9 after the broker acknowledged what was published: no cancel, no final
        status; the journal keeps what was committed."""
        self.journal.mark_sent(self.gw.published_seq)
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
        self.journal.close()


@attrs.define
class Strategy:
    """What strategy s1 receives."""

    reports: list[Msg] = attrs.field(factory=list)
    ready: int = 0

    def on_report(self, _topic: str, msg: Msg) -> None:
        self.reports.append(msg)

    def on_status(self, _topic: str, msg: GatewayStatus) -> None:
        self.ready += msg.status is GtwStatus.ReadyToTrade

    def of(self, kind: type) -> list:
        return [r for r in self.reports if isinstance(r, kind)]


@pytest.fixture
async def fx() -> AsyncIterator[FakeBinance]:
    async with FakeBinance() as f:
        f.best["BTCUSDT"] = (Decimal("50000.0"), Decimal("50000.1"))
        yield f


async def test_live_gateway_restarted_from_its_journal_loses_and_doubles_no_fill(
    fx: FakeBinance, tmp_path: Path
) -> None:
    bus = InProcBus(LiveScheduler(loop=asyncio.get_running_loop()))
    topics = Topics("t")
    s1 = Strategy()
    bus.subscribe(topics.gtw_rpt(EX, "s1"), s1.on_report)
    bus.subscribe(topics.gtw_status(EX), s1.on_status)
    db = tmp_path / "binance.db"

    def send(msg: Msg) -> None:
        bus.publish(topics.gtw_req(EX, "s1"), msg)

    # first life: two resting orders, one fill reported
    run = Run(fx, bus, topics, db)
    await wait_until(lambda: s1.ready == 1, 30, "ready")
    send(_new("a1"))
    send(_new("a2", price="48000.0"))
    await wait_until(lambda: len(s1.of(NewOrderAck)) == 2, 30, "two acks")
    await fx.fill(venue_client_id("s1", "a1"), qty="0.004")
    await wait_until(lambda: len(s1.of(OrderExecution)) == 1, 30, "first fill")
    await run.kill()

    # while it is down: a1 fills more, a2 fills completely; the pushes are lost
    await fx.fill(venue_client_id("s1", "a1"), qty="0.003")
    await fx.fill(venue_client_id("s1", "a2"))
    assert len(fx.lost) == 2

    # second life, from the journal
    run = Run(fx, bus, topics, db)
    await wait_until(lambda: s1.ready == 2, 30, "ready again")
    await wait_until(lambda: len(s1.of(OrderExecution)) == 3, 30, "the missed fills")
    assert run.gw.reconciled_fills == 2
    # the lost pushes arrive late after all: nothing twice
    await fx.push_raw_user(fx.lost)
    send(_new("a1"))  # a repeat of the first request (same bytes): dropped, not answered
    send(_new("a1", ts=2))  # a new order reusing the id: refused, the id stays used
    await wait_until(lambda: s1.of(NewOrderReject), 30, "reject of the reused id")
    send(FetchOrders(strat="s1"))
    await wait_until(lambda: s1.of(OrdersInfo), 30, "open orders")
    await run.kill()

    execs = s1.of(OrderExecution)
    venue_trades = 3
    print(f"fills: {len(execs)} reported, {venue_trades} at the venue; 1 gateway kill")
    assert len({e.exec_id for e in execs}) == len(execs) == venue_trades
    by_order: dict[str, Decimal] = {}
    for e in execs:
        by_order[e.cl_id] = by_order.get(e.cl_id, Decimal(0)) + Decimal(e.fill_qty)
    assert by_order == {"a1": Decimal("0.007"), "a2": Decimal("0.010")}
    assert [e.leaves_qty for e in execs if e.cl_id == "a1"] == ["0.006", "0.003"]
    assert len(s1.of(NewOrderAck)) == 2  # no ack repeated by the restart
    (reject,) = s1.of(NewOrderReject)
    assert reject.code is GtwRejectCode.DuplicateClientId
    (info,) = s1.of(OrdersInfo)
    assert [(o.cl_id, o.leaves_qty) for o in info.orders] == [("a1", "0.003")]
    # a kill cancels nothing
    assert fx.orders[venue_client_id("s1", "a1")].status == "PARTIALLY_FILLED"
    assert run.gw.duplicate_requests == 1


async def test_live_gateway_answers_requests_a_previous_run_never_handled(
    fx: FakeBinance, tmp_path: Path
) -> None:
    db = tmp_path / "binance.db"
    journal = OrderJournal(db)
    # arrived and journaled, then the process died before handling it
    journal.add_request("new:x", "s1", "new", _new("lost1"), 1)
    journal.close()
    bus = InProcBus(LiveScheduler(loop=asyncio.get_running_loop()))
    topics = Topics("t")
    s1 = Strategy()
    bus.subscribe(topics.gtw_rpt(EX, "s1"), s1.on_report)
    bus.subscribe(topics.gtw_status(EX), s1.on_status)
    run = Run(fx, bus, topics, db)
    await wait_until(lambda: s1.ready == 1, 30, "ready")
    await run.kill()
    (reject,) = s1.of(NewOrderReject)
    assert reject.cl_id == "lost1" and reject.code is GtwRejectCode.GtwNotReady
    assert venue_client_id("s1", "lost1") not in fx.orders
    journal = OrderJournal(db)
    assert journal.pending_requests() == []
    journal.close()


async def test_live_gateway_restarted_takes_the_venues_terms_of_a_modify_it_never_answered(
    fx: FakeBinance, tmp_path: Path
) -> None:
    """A modify in flight when the process died: the restart answers it ``GtwNotReady`` (it
    cannot know), then reconciliation finds the venue applied it and tells the strategy."""
    bus = InProcBus(LiveScheduler(loop=asyncio.get_running_loop()))
    topics = Topics("t")
    s1 = Strategy()
    bus.subscribe(topics.gtw_rpt(EX, "s1"), s1.on_report)
    bus.subscribe(topics.gtw_status(EX), s1.on_status)
    db = tmp_path / "binance.db"
    run = Run(fx, bus, topics, db)
    await wait_until(lambda: s1.ready == 1, 30, "ready")
    bus.publish(topics.gtw_req(EX, "s1"), _new("m1"))
    await wait_until(lambda: s1.of(NewOrderAck), 30, "ack")
    await run.kill()
    # The modify reached the venue, the answer never reached the strategy; the journal holds
    # the request as arrived but not handled.
    modify = ModifyOrder(strat="s1", cl_id="m1", new_price="48500.0", new_qty="0.020", ts=5)
    journal = OrderJournal(db)
    journal.add_request("modify:m1", "s1", "modify", modify, 1)
    journal.close()
    fx.orders[venue_client_id("s1", "m1")].price = Decimal("48500.0")
    fx.orders[venue_client_id("s1", "m1")].qty = Decimal("0.020")

    run = Run(fx, bus, topics, db)
    await wait_until(lambda: s1.of(ModifyOrderAck), 30, "the venue's terms")
    bus.publish(topics.gtw_req(EX, "s1"), FetchOrders(strat="s1"))
    await wait_until(lambda: s1.of(OrdersInfo), 30, "open orders")
    await run.kill()
    (refused,) = s1.of(ModifyOrderReject)
    assert refused.code is GtwRejectCode.GtwNotReady
    (ack,) = s1.of(ModifyOrderAck)
    assert (ack.cl_id, Decimal(ack.new_price), Decimal(ack.new_qty)) == (
        "m1",
        Decimal("48500.0"),
        Decimal("0.020"),
    )
    (info,) = s1.of(OrdersInfo)
    assert [(o.cl_id, Decimal(o.price), Decimal(o.qty)) for o in info.orders] == [
        ("m1", Decimal("48500.0"), Decimal("0.020"))
    ]
    # the reject came first: the strategy's last word on the order is the venue's
    assert s1.reports.index(refused) < s1.reports.index(ack)
