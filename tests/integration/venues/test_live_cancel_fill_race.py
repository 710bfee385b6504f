"""A fill that the venue made before a cancel, but whose report comes after the cancel's answer,
reaches the strategy before the order is closed; a status never goes back (issue 15, item 7).

Binance answers ``DELETE /fapi/v1/order`` with ``executedQty`` while the ORDER_TRADE_UPDATE of the
fill is still on its way; Bybit's cancel answer says nothing and its ``order`` (Cancelled, with
``cumExecQty``) and ``execution`` topics arrive in any order. If the fill never comes on the
stream, the gateway fetches it (``order_fills``) after ``fill_wait_s`` and then closes the order.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest

from mlthon.basics.mlt_enum import Exchange, OrderStatus, Side
from mlthon.gateways.binance_usdm.gateway import build_gateway as build_binance
from mlthon.gateways.bybit_v5.gateway import build_gateway as build_bybit
from mlthon.gateways.live.config import Credentials, LiveGatewayConfig
from mlthon.gateways.live.gateway import venue_client_id
from mlthon.infra.bus.messages import (
    CancelOrder,
    CancelOrderAck,
    FetchOrderStatus,
    NewOrder,
    NewOrderAck,
    OrderCancelled,
    OrderExecution,
    OrderStatusInfo,
)
from tests.fakes.venues import binance, bybit
from tests.integration.venues.support import STRAT, Harness, running

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]

BINANCE_BTC = 1001
BYBIT_BTC = 2001
LIFE = ["NewOrderAck", "CancelOrderAck", "OrderExecution", "OrderCancelled"]


@pytest.fixture
async def fxb() -> AsyncIterator[binance.FakeBinance]:
    async with binance.FakeBinance() as f:
        f.best["BTCUSDT"] = (Decimal("50000.0"), Decimal("50000.1"))
        yield f


@pytest.fixture
async def fxy() -> AsyncIterator[bybit.FakeBybit]:
    async with bybit.FakeBybit() as f:
        f.best["BTCUSDT"] = (Decimal("50000.0"), Decimal("50000.1"))
        yield f


def _new(iid: int, cl_id: str) -> NewOrder:
    return NewOrder(
        strat=STRAT, cl_id=cl_id, instrument_id=iid, side=Side.Buy, price="49000.0", qty="0.010"
    )


def _life(h: Harness, cl_id: str) -> list[str]:
    return [type(r).__name__ for r in h.reports if getattr(r, "cl_id", None) == cl_id]


async def _status(h: Harness, iid: int, cl_id: str) -> Any:
    h.send(FetchOrderStatus(strat=STRAT, instrument_id=iid, cl_id=cl_id))
    (info,) = await h.wait(OrderStatusInfo)
    return info.order


def _binance(fx: binance.FakeBinance, **kw: Any) -> Any:
    config = LiveGatewayConfig(
        exchange=Exchange.BinanceUsdm,
        rest_url=fx.rest_url,
        ws_url=fx.ws_url,
        request_timeout_s=1.0,
        reconnect_max_s=0.2,
        **kw,
    )
    creds = Credentials(binance.API_KEY, binance.API_SECRET)
    return running(build_binance, config, creds, Exchange.BinanceUsdm)


def _bybit(fx: bybit.FakeBybit, **kw: Any) -> Any:
    config = LiveGatewayConfig(
        exchange=Exchange.Bybit,
        rest_url=fx.rest_url,
        ws_url=fx.private_url,
        request_timeout_s=1.0,
        reconnect_max_s=0.2,
        **kw,
    )
    creds = Credentials(bybit.API_KEY, bybit.API_SECRET)
    return running(build_bybit, config, creds, Exchange.Bybit)


async def test_binance_fill_after_the_cancel_answer_reported_before_order_cancelled(
    fxb: binance.FakeBinance,
) -> None:
    async with _binance(fxb, fill_wait_s=10.0) as h:
        await h.ready()
        h.send(_new(BINANCE_BTC, "r1"))
        await h.wait(NewOrderAck)
        fxb.hold_pushes = True  # the venue fills part of it; the event is late
        await fxb.fill(venue_client_id(STRAT, "r1"), qty="0.004")
        h.send(CancelOrder(strat=STRAT, cl_id="r1", instrument_id=BINANCE_BTC))
        await h.wait(CancelOrderAck)  # the REST answer (executedQty 0.004) is in
        fxb.hold_pushes = False
        await fxb.push_raw_user(fxb.lost)  # the TRADE event, then the CANCELED one
        (c,) = await h.wait(OrderCancelled)
        assert _life(h, "r1") == LIFE
        (x,) = h.of(OrderExecution)
        assert (x.fill_qty, x.leaves_qty) == ("0.004", "0")
        assert not c.unsolicited
        order = await _status(h, BINANCE_BTC, "r1")
        assert order.status is OrderStatus.Cancelled and order.filled_qty == "0.004"


async def test_binance_cancel_waiting_for_a_fill_that_never_comes_fetches_it_then_closes(
    fxb: binance.FakeBinance,
) -> None:
    async with _binance(fxb, fill_wait_s=0.2) as h:
        await h.ready()
        h.send(_new(BINANCE_BTC, "r2"))
        await h.wait(NewOrderAck)
        fxb.hold_pushes = True  # the stream never tells: neither the fill nor the cancel
        await fxb.fill(venue_client_id(STRAT, "r2"), qty="0.004")
        h.send(CancelOrder(strat=STRAT, cl_id="r2", instrument_id=BINANCE_BTC))
        await h.wait(OrderCancelled, timeout=10)
        assert _life(h, "r2") == LIFE
        assert any(r[1] == "/fapi/v1/userTrades" for r in fxb.requests)
        order = await _status(h, BINANCE_BTC, "r2")
        assert order.status is OrderStatus.Cancelled and order.filled_qty == "0.004"


async def test_bybit_cancelled_order_topic_before_its_execution_keeps_the_fill_first(
    fxy: bybit.FakeBybit,
) -> None:
    async with _bybit(fxy, fill_wait_s=10.0) as h:
        await h.ready()
        h.send(_new(BYBIT_BTC, "y1"))
        await h.wait(NewOrderAck)
        fxy.hold_pushes = True
        await fxy.fill(venue_client_id(STRAT, "y1"), qty="0.004")  # execution + order frames, held
        h.send(CancelOrder(strat=STRAT, cl_id="y1", instrument_id=BYBIT_BTC))
        await h.wait(CancelOrderAck)  # Bybit's answer carries no fills
        fxy.hold_pushes = False
        execution, *orders = fxy.lost  # the order topic (Cancelled, cumExecQty 0.004) first
        await fxy.push_raw_private([*orders, execution])
        await h.wait(OrderCancelled)
        assert _life(h, "y1") == LIFE
        order = await _status(h, BYBIT_BTC, "y1")
        assert order.status is OrderStatus.Cancelled and order.filled_qty == "0.004"


async def test_bybit_cancel_without_its_final_figure_fetches_fills_then_closes(
    fxy: bybit.FakeBybit,
) -> None:
    async with _bybit(fxy, fill_wait_s=0.2) as h:
        await h.ready()
        h.send(_new(BYBIT_BTC, "y2"))
        await h.wait(NewOrderAck)
        fxy.hold_pushes = True  # nothing more on the stream
        await fxy.fill(venue_client_id(STRAT, "y2"), qty="0.004")
        h.send(CancelOrder(strat=STRAT, cl_id="y2", instrument_id=BYBIT_BTC))
        await h.wait(OrderCancelled, timeout=10)
        assert _life(h, "y2") == LIFE
        assert any(r[1] == "/v5/execution/list" for r in fxy.requests)
        order = await _status(h, BYBIT_BTC, "y2")
        assert order.status is OrderStatus.Cancelled and order.filled_qty == "0.004"
