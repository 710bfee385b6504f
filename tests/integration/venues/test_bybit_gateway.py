"""The Bybit v5 gateway against the fake Bybit exchange on loopback."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from decimal import Decimal

import attrs
import pytest

from mlthon.basics.mlt_enum import (
    TIF,
    CancelCode,
    Exchange,
    ExecInstructions,
    GtwRejectCode,
    GtwStatus,
    OrderType,
    Side,
)
from mlthon.gateways.bybit_v5.gateway import build_gateway
from mlthon.gateways.live.config import Credentials, LiveGatewayConfig
from mlthon.gateways.live.gateway import venue_client_id
from mlthon.infra.bus.messages import (
    AccountInfo,
    CancelAll,
    CancelAllAck,
    CancelOrder,
    CancelOrderAck,
    CancelOrderReject,
    FetchAccount,
    FetchFunding,
    FetchOrders,
    FetchPosition,
    FetchWallet,
    FundingInfo,
    ModifyOrder,
    ModifyOrderAck,
    ModifyOrderReject,
    NewOrder,
    NewOrderAck,
    NewOrderReject,
    OrderCancelled,
    OrderExecution,
    OrdersInfo,
    PositionInfo,
    RateLimitInfo,
    WalletInfo,
)
from tests.conftest import wait_until
from tests.fakes.venues.bybit import API_KEY, API_SECRET, FakeBybit
from tests.integration.venues.support import STRAT, Harness, running

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

BTC = 2001
CREDS = Credentials(API_KEY, API_SECRET)


def _config(fx: FakeBybit, **kw: object) -> LiveGatewayConfig:
    base = LiveGatewayConfig(
        exchange=Exchange.Bybit,
        rest_url=fx.rest_url,
        ws_url=fx.private_url,
        request_timeout_s=1.0,
        reconnect_max_s=0.2,
        maintenance_probe_s=0.05,
    )
    return attrs.evolve(base, **kw)  # type: ignore[arg-type]


@contextlib.asynccontextmanager
async def _gateway(
    fx: FakeBybit, creds: Credentials = CREDS, **kw: object
) -> AsyncIterator[Harness]:
    async with running(build_gateway, _config(fx, **kw), creds, Exchange.Bybit) as h:
        yield h


@pytest.fixture
async def fx() -> AsyncIterator[FakeBybit]:
    async with FakeBybit() as f:
        f.best["BTCUSDT"] = (Decimal("50000.0"), Decimal("50000.1"))
        yield f


def _new(cl_id: str, price: str = "49000.0", qty: str = "0.010", **kw: object) -> NewOrder:
    fields: dict[str, object] = {
        "strat": STRAT,
        "cl_id": cl_id,
        "instrument_id": BTC,
        "side": Side.Buy,
        "price": price,
        "qty": qty,
    }
    fields.update(kw)
    return NewOrder(**fields)  # type: ignore[arg-type]


async def test_bybit_limit_order_acked_from_stream_and_filled(fx: FakeBybit) -> None:
    async with _gateway(fx) as h:
        await h.ready()
        h.send(_new("a1"))
        (ack,) = await h.wait(NewOrderAck)
        assert ack.exch_id.endswith("fake-order") and ack.qty == "0.01"
        link = venue_client_id(STRAT, "a1")
        await fx.fill(link, qty="0.004")
        await fx.fill(link)
        ex = await h.wait(OrderExecution, 2)
        assert [e.fill_qty for e in ex] == ["0.004", "0.006"]
        assert [e.leaves_qty for e in ex] == ["0.006", "0"]
        assert ex[0].maker and ex[0].fee_coin == "USDT"


async def test_bybit_post_only_cross_is_a_reject(fx: FakeBybit) -> None:
    async with _gateway(fx) as h:
        await h.ready()
        h.send(_new("p1", price="50000.1", exec_instr=ExecInstructions.PostOnly))
        (rej,) = await h.wait(NewOrderReject)
        assert rej.code is GtwRejectCode.PostOnlyWouldCross
        assert "EC_PostOnlyWillTakeLiquidity" in rej.reason
        assert fx.requests[-1][2]["timeInForce"] == "PostOnly"
        assert not h.of(NewOrderAck)


async def test_bybit_ioc_fok_market_reduce_only(fx: FakeBybit) -> None:
    async with _gateway(fx) as h:
        await h.ready()
        h.send(_new("i1", tif=TIF.IOC))
        (c,) = await h.wait(OrderCancelled)
        assert c.unsolicited and c.cancel_code is CancelCode.ImmediateOrCancel
        h.send(_new("f1", tif=TIF.FOK))
        (rej,) = await h.wait(NewOrderReject)
        assert rej.code is GtwRejectCode.FokNotFilled
        h.send(_new("r1", close_position=True, side=Side.Sell))
        rej = (await h.wait(NewOrderReject, 2))[1]
        assert rej.code is GtwRejectCode.ReduceOnlyWouldIncrease and "110017" in rej.reason
        h.send(_new("m1", ord_type=OrderType.Market, price="0"))
        (ex,) = await h.wait(OrderExecution)
        assert ex.price == "50000.1" and not ex.maker
        h.send(
            _new("r2", close_position=True, side=Side.Sell, ord_type=OrderType.Market, price="0")
        )
        await h.wait(OrderExecution, 2)
        h.send(FetchPosition(strat=STRAT, instrument_id=BTC))
        (pos,) = await h.wait(PositionInfo)
        assert Decimal(pos.position) == 0


async def test_bybit_modify_cancel_cancel_all(fx: FakeBybit) -> None:
    async with _gateway(fx) as h:
        await h.ready()
        h.send(_new("c1"))
        h.send(_new("c2"))
        await h.wait(NewOrderAck, 2)
        h.send(ModifyOrder(strat=STRAT, cl_id="c1", new_price="49100.0", new_qty="0.02"))
        (mod,) = await h.wait(ModifyOrderAck)
        assert mod.new_price == "49100" and mod.new_qty == "0.02" and mod.leaves_qty == "0.02"
        assert fx.orders[venue_client_id(STRAT, "c1")].qty == Decimal("0.02")
        h.send(CancelOrder(strat=STRAT, cl_id="c1", instrument_id=BTC))
        await h.wait(CancelOrderAck)
        (c,) = await h.wait(OrderCancelled)
        assert not c.unsolicited and c.cancel_code is CancelCode.CanceledByUser
        h.send(CancelOrder(strat=STRAT, cl_id="c1", instrument_id=BTC))
        (rej,) = await h.wait(CancelOrderReject)
        assert rej.code is GtwRejectCode.UnknownOrder
        fx.fail("/v5/order/amend", 110001, "order not exists or too late to replace")
        h.send(ModifyOrder(strat=STRAT, cl_id="c2", new_price="49200.0"))
        (mrej,) = await h.wait(ModifyOrderReject)
        assert mrej.code is GtwRejectCode.UnknownOrder and "110001" in mrej.reason
        h.send(CancelAll(strat=STRAT))
        await h.wait(CancelAllAck)
        cancels = await h.wait(OrderCancelled, 2)
        assert cancels[1].cl_id == "c2" and cancels[1].cancel_code is CancelCode.CancelAll


@pytest.mark.parametrize(
    ("code", "msg", "expected"),
    [
        (110007, "ab not enough for new order", GtwRejectCode.InsufficientBalance),
        (10001, "params error: qty invalid", GtwRejectCode.InvalidRequest),
        (110003, "price is out of permissible range", GtwRejectCode.InvalidPrice),
        (110094, "order does not meet minimum order value", GtwRejectCode.InvalidQty),
        (110072, "OrderLinkedID is duplicate", GtwRejectCode.DuplicateClientId),
        (10029, "symbol not whitelisted", GtwRejectCode.UnknownInstrument),
        (123456, "brand new error", GtwRejectCode.ExchangeError),
        (10016, "service is restarting", GtwRejectCode.ExchangeError),
    ],
)
async def test_bybit_ret_codes_map_to_reject_codes(
    fx: FakeBybit, code: int, msg: str, expected: GtwRejectCode
) -> None:
    async with _gateway(fx) as h:
        await h.ready()
        fx.fail("/v5/order/create", code, msg)
        h.send(_new("e1"))
        (rej,) = await h.wait(NewOrderReject)
        assert rej.code is expected and msg in rej.reason


async def test_bybit_10006_rate_limited_with_back_off_and_headers(fx: FakeBybit) -> None:
    async with _gateway(fx) as h:
        await h.ready()
        fx.limit_remaining = 4  # 6 of 10 used
        h.send(_new("w1"))
        (info,) = await h.wait(RateLimitInfo)
        assert info.rate_limit == 10 and info.rate_remaining == 4
        reset = str(fx._now_ms + 30_000)
        fx.fail(
            "/v5/order/create",
            10006,
            "Too many visits!",
            headers={"X-Bapi-Limit-Reset-Timestamp": reset},
        )
        h.send(_new("w2"))
        rej = await h.wait(NewOrderReject)
        assert rej[0].code is GtwRejectCode.RateLimitExceeded and "10006" not in rej[0].reason
        n = len(fx.requests)
        h.send(_new("w3"))
        rej = await h.wait(NewOrderReject, 2)
        assert rej[1].code is GtwRejectCode.RateLimitExceeded and len(fx.requests) == n


async def test_bybit_403_ip_limit_is_rate_limited(fx: FakeBybit) -> None:
    async with _gateway(fx) as h:
        await h.ready()
        fx.fail("/v5/order/create", 0, "", http_status=403)
        h.send(_new("x1"))
        (rej,) = await h.wait(NewOrderReject)
        assert rej.code is GtwRejectCode.RateLimitExceeded


async def test_bybit_wrong_secret_never_gets_ready(fx: FakeBybit) -> None:
    async with _gateway(fx, creds=Credentials(API_KEY, "wrong-secret-0000000000")) as h:
        await wait_until(lambda: fx.auths >= 2, 30, "auth retries")
        assert all(s.status is GtwStatus.Connecting for s in h.statuses)
        h.send(_new("s1"))
        (rej,) = await h.wait(NewOrderReject)
        assert rej.code is GtwRejectCode.GtwNotReady


async def test_bybit_wrong_signature_on_rest(fx: FakeBybit) -> None:
    async with _gateway(fx) as h:
        await h.ready()
        h.gw.api.rest._creds = Credentials(API_KEY, "another-secret-000000000")  # type: ignore[attr-defined]
        h.send(_new("s2"))
        (rej,) = await h.wait(NewOrderReject)
        assert rej.code is GtwRejectCode.NotLoggedIn and "10004" in rej.reason


async def test_bybit_fetches(fx: FakeBybit) -> None:
    async with _gateway(fx) as h:
        await h.ready()
        h.send(FetchWallet(strat=STRAT, coin="USDT"))
        h.send(FetchAccount(strat=STRAT))
        h.send(FetchFunding(strat=STRAT, instrument_id=BTC))
        (w,) = await h.wait(WalletInfo)
        assert w.total == "10000"
        (a,) = await h.wait(AccountInfo)
        assert a.user_id == "24617703"
        (f,) = await h.wait(FundingInfo)
        assert f.rate == "-0.001034" and f.next_ts == 1672387200000 * 1_000_000


async def test_bybit_private_disconnect_reconciles_missed_fill_once(fx: FakeBybit) -> None:
    async with _gateway(fx) as h:
        await h.ready()
        assert fx.auths == 1
        h.send(_new("d1"))
        h.send(_new("d2"))
        await h.wait(NewOrderAck, 2)
        fx.hold_pushes = True
        await fx.drop_private_streams()
        await fx.fill(venue_client_id(STRAT, "d1"), qty="0.004")
        await fx.fill(venue_client_id(STRAT, "d1"))
        await fx.cancel_by_venue(venue_client_id(STRAT, "d2"))
        fx.hold_pushes = False
        await h.ready(2)
        ex = await h.wait(OrderExecution, 2)
        assert [e.fill_qty for e in ex] == ["0.004", "0.006"]
        (c,) = await h.wait(OrderCancelled)
        assert c.cl_id == "d2" and c.unsolicited
        await fx.push_raw_private(fx.lost)
        h.send(FetchOrders(strat=STRAT))
        await h.wait(OrdersInfo)
        assert len(h.of(OrderExecution)) == 2 and len(h.of(OrderCancelled)) == 1
        assert fx.auths == 2


async def test_bybit_duplicated_and_reordered_private_messages(fx: FakeBybit) -> None:
    async with _gateway(fx) as h:
        await h.ready()
        fx.duplicate_pushes = True
        fx.reverse_pushes = True
        h.send(_new("u1", ord_type=OrderType.Market, price="0"))
        await h.wait(OrderExecution)
        h.send(_new("u2"))
        await h.wait(NewOrderAck, 2)
        await fx.fill(venue_client_id(STRAT, "u2"), qty="0.003")
        await fx.fill(venue_client_id(STRAT, "u2"))
        await h.wait(OrderExecution, 3)
        h.send(FetchOrders(strat=STRAT))
        await h.wait(OrdersInfo)
        assert len(h.of(OrderExecution)) == 3 and len(h.of(NewOrderAck)) == 2
        assert h.of(OrderExecution, cl_id="u2")[-1].leaves_qty == "0"


async def test_bybit_pings_private_stream(fx: FakeBybit) -> None:
    async with _gateway(fx) as h:
        h.gw.api.ping_interval_s = 0.05  # type: ignore[attr-defined]
        await h.ready()
        await fx.drop_private_streams()
        await h.ready(2)
        await wait_until(lambda: fx.pings >= 2, 30, "pings")


async def test_bybit_maintenance_status_and_recovery(fx: FakeBybit) -> None:
    async with _gateway(fx) as h:
        await h.ready()
        fx.fail("/v5/order/create", 10016, "system under maintenance")
        fx.fail("/v5/user/query-api", 10016, "system under maintenance", times=2)
        h.send(_new("mt1"))
        (rej,) = await h.wait(NewOrderReject)
        assert rej.code is GtwRejectCode.ExchangeError
        await wait_until(lambda: any(s.status is GtwStatus.Maintenance for s in h.statuses), 30)
        h.send(_new("mt2"))
        rej2 = (await h.wait(NewOrderReject, 2))[1]
        assert rej2.code is GtwRejectCode.GtwNotReady
        await h.ready(2)
        h.send(_new("mt3"))
        await h.wait(NewOrderAck)


async def test_bybit_cancel_right_after_new_keeps_report_order(fx: FakeBybit) -> None:
    async with _gateway(fx) as h:
        await h.ready()
        fx.hold_pushes = True  # the stream's "New" never comes
        h.send(_new("q1"))
        h.send(CancelOrder(strat=STRAT, cl_id="q1", instrument_id=BTC))
        await h.wait(OrderCancelled)
        fx.hold_pushes = False
        await fx.push_raw_private(fx.lost)  # ... or comes late
        h.send(FetchOrders(strat=STRAT))
        await h.wait(OrdersInfo)
        kinds = [type(r).__name__ for r in h.reports if type(r).__name__ != "OrdersInfo"]
        assert kinds == ["NewOrderAck", "CancelOrderAck", "OrderCancelled"]


async def test_bybit_timeout_resolved_by_query(fx: FakeBybit) -> None:
    async with _gateway(fx) as h:
        await h.ready()
        fx.hold_pushes = True  # only the query after the timeout can tell
        fx.delay("/v5/order/create", 1.5)
        h.send(_new("t1"))
        (ack,) = await h.wait(NewOrderAck, timeout=8)
        assert ack.cl_id == "t1"
        assert ("GET", "/v5/order/realtime") in [(m, p) for m, p, _ in fx.requests]
