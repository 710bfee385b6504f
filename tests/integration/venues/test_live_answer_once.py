"""Every request to a live gateway gets exactly one answer (issue 16, item 1): a request task
that raises (a bug: faults are injected into the real venue API) is answered ``ExchangeError``
instead of leaving the strategy waiting; values the venue would misread are refused at the door
(a side ``Unset`` was sent as a sell)."""

from __future__ import annotations

from unittest import mock

import pytest

from mlthon.basics.mlt_enum import TIF, ExecInstructions, GtwRejectCode, OrderType, Side
from mlthon.infra.bus.messages import (
    FetchWallet,
    ModifyOrder,
    ModifyOrderReject,
    NewOrderAck,
    NewOrderReject,
    RequestReject,
)
from tests.integration.venues.kits import KIT_IDS, KITS, Kit
from tests.integration.venues.support import STRAT

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


@pytest.mark.parametrize("kit", KITS, ids=KIT_IDS)
async def test_a_failing_request_task_is_answered_exchange_error(kit: Kit) -> None:
    async with kit.venue() as fx, kit.gateway(fx) as h:
        await h.ready(timeout=10)
        with mock.patch.object(h.gw.api, "place", side_effect=RuntimeError("bug in place")):
            h.send(kit.new("f1"))
            (rej,) = await h.wait(NewOrderReject, timeout=10)
        assert rej.cl_id == "f1" and rej.code is GtwRejectCode.ExchangeError
        assert "RuntimeError: bug in place" in rej.reason
        assert h.gw._find(STRAT, "f1") is None  # forgotten: the id may be used again
        h.send(kit.new("f1"))
        await h.wait(NewOrderAck, timeout=10)
        with mock.patch.object(h.gw.api, "amend", side_effect=KeyError("oops")):
            h.send(ModifyOrder(strat=STRAT, cl_id="f1", new_price="48000.0"))
            (mrej,) = await h.wait(ModifyOrderReject, timeout=10)
        assert mrej.code is GtwRejectCode.ExchangeError and "KeyError" in mrej.reason
        with mock.patch.object(h.gw.api, "wallet", side_effect=ValueError("bad body")):
            h.send(FetchWallet(strat=STRAT, coin="USDT", req_id="w1"))
            (frej,) = await h.wait(RequestReject, timeout=10)
        assert frej.req_id == "w1" and frej.code is GtwRejectCode.ExchangeError
        assert h.gw.faults == 3
        assert len(h.of(NewOrderReject)) == 1 and len(h.of(NewOrderAck)) == 1


@pytest.mark.parametrize("kit", KITS, ids=KIT_IDS)
@pytest.mark.parametrize(
    ("fields", "why"),
    [
        ({"side": Side.Unset}, "side"),
        ({"ord_type": OrderType.Market, "exec_instr": ExecInstructions.PostOnly}, "post-only"),
        ({"tif": TIF.IOC, "exec_instr": ExecInstructions.PostOnly}, "post-only"),
    ],
    ids=["side-unset", "post-only-market", "post-only-ioc"],
)
async def test_orders_the_venue_would_misread_refused_at_the_door(
    kit: Kit, fields: dict[str, object], why: str
) -> None:
    async with kit.venue() as fx, kit.gateway(fx) as h:
        await h.ready(timeout=10)
        n = len(fx.requests)
        h.send(kit.new("u1", **fields))
        (rej,) = await h.wait(NewOrderReject, timeout=10)
        assert rej.code is GtwRejectCode.InvalidRequest and why in rej.reason
        assert len(fx.requests) == n and not fx.orders  # nothing sent


@pytest.mark.parametrize("kit", KITS, ids=KIT_IDS)
async def test_unset_order_type_and_tif_mean_limit_gtc(kit: Kit) -> None:
    async with kit.venue() as fx, kit.gateway(fx) as h:
        await h.ready(timeout=10)
        h.send(kit.new("d1", ord_type=OrderType.Unset, tif=TIF.Unset))
        (ack,) = await h.wait(NewOrderAck, timeout=10)
        assert ack.ord_type is OrderType.Limit and ack.tif is TIF.GTC and ack.price == "49000"
