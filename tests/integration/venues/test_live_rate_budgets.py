"""Local rate budgets (issue 16, item 4): a request the venue would refuse for its rate limits is
refused by the gateway first, ``RateLimitExceeded`` naming the budget, and never sent; other
budgets keep working (a cancel goes out while new orders are held back); the venue's own count,
from its headers, is taken when it is higher."""

from __future__ import annotations

import pytest

from mlthon.basics.mlt_enum import GtwRejectCode
from mlthon.infra.bus.messages import CancelOrder, CancelOrderAck, NewOrderAck, NewOrderReject
from tests.integration.venues.kits import BINANCE, BYBIT, KIT_IDS, KITS, Kit
from tests.integration.venues.support import STRAT

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

NEW_BUDGET = {BINANCE.exchange: "orders-10s", BYBIT.exchange: "order-create"}


def _sent_new_orders(fx: object, kit: Kit) -> int:
    path = "/fapi/v1/order" if kit is BINANCE else "/v5/order/create"
    return sum(1 for m, p, _ in fx.requests if p == path and m == "POST")  # type: ignore[attr-defined]


@pytest.mark.parametrize("kit", KITS, ids=KIT_IDS)
async def test_spent_budget_refused_locally_naming_it_and_other_budgets_still_work(
    kit: Kit,
) -> None:
    name = NEW_BUDGET[kit.exchange]
    async with kit.venue() as fx, kit.gateway(fx, rate_limits={name: 2}) as h:
        await h.ready(timeout=10)
        for i in range(3):
            h.send(kit.new(f"n{i}", price=f"4900{i}.0"))
        await h.wait(NewOrderAck, 2, timeout=10)
        (rej,) = await h.wait(NewOrderReject, timeout=10)
        assert rej.cl_id == "n2" and rej.code is GtwRejectCode.RateLimitExceeded
        assert f"local rate budget {name} (2 " in rej.reason and "not sent" in rej.reason
        assert _sent_new_orders(fx, kit) == 2  # the third never reached the venue
        h.send(CancelOrder(strat=STRAT, cl_id="n0", instrument_id=kit.iid))
        (ack,) = await h.wait(CancelOrderAck, timeout=10)  # cancels have their own budget
        assert ack.cl_id == "n0" and h.gw.api.budgets.refused == 1


async def test_the_venues_reported_weight_counts_against_the_local_budget() -> None:
    async with BINANCE.venue() as fx, BINANCE.gateway(fx) as h:
        await h.ready(timeout=10)
        # the sample exchangeInfo's REQUEST_WEIGHT budget is 6000 per minute
        assert h.gw.api.budgets.budget("weight-1m").limit == 6000
        fx.used_weight = 5999  # another process on this IP spent all of it but one
        h.send(BINANCE.new("w1"))
        await h.wait(NewOrderAck, timeout=10)
        n = len(fx.requests)
        h.send(BINANCE.new("w2"))
        (rej,) = await h.wait(NewOrderReject, timeout=10)
        assert rej.code is GtwRejectCode.RateLimitExceeded and "weight-1m" in rej.reason
        assert len(fx.requests) == n


async def test_bybit_endpoint_limit_follows_its_header_unless_configured() -> None:
    async with BYBIT.venue() as fx, BYBIT.gateway(fx, rate_limits={"order-amend": 3}) as h:
        await h.ready(timeout=10)
        h.send(BYBIT.new("b1"))
        await h.wait(NewOrderAck, timeout=10)
        budgets = h.gw.api.budgets
        assert budgets.budget("order-create").limit == 10  # X-Bapi-Limit of the fake
        assert budgets.budget("order-amend").limit == 3
