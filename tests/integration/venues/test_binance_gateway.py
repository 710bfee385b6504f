"""The Binance USD-M gateway against the fake Binance exchange on loopback."""

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
from mlthon.gateways.binance_usdm.gateway import build_gateway
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
from tests.fakes.venues.binance import API_KEY, API_SECRET, FakeBinance
from tests.integration.venues.support import STRAT, Harness, running

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

BTC = 1001
CREDS = Credentials(API_KEY, API_SECRET)


def _config(fx: FakeBinance, **kw: object) -> LiveGatewayConfig:
    base = LiveGatewayConfig(
        exchange=Exchange.BinanceUsdm,
        rest_url=fx.rest_url,
        ws_url=fx.ws_url,
        request_timeout_s=1.0,
        reconnect_max_s=0.2,
    )
    return attrs.evolve(base, **kw)  # type: ignore[arg-type]


@contextlib.asynccontextmanager
async def _gateway(
    fx: FakeBinance, creds: Credentials = CREDS, **kw: object
) -> AsyncIterator[Harness]:
    async with running(build_gateway, _config(fx, **kw), creds, Exchange.BinanceUsdm) as h:
        yield h


@pytest.fixture
async def fx() -> AsyncIterator[FakeBinance]:
    async with FakeBinance() as f:
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


async def test_binance_limit_order_acked_filled_in_parts(fx: FakeBinance) -> None:
    async with _gateway(fx) as h:
        await h.ready()
        h.send(_new("a1"))
        (ack,) = await h.wait(NewOrderAck)
        assert ack.cl_id == "a1" and ack.exch_id and ack.qty == "0.01"
        order = fx.orders[venue_client_id(STRAT, "a1")]
        assert order.tif == "GTC" and order.price == Decimal("49000.0")
        await fx.fill(order.cid, qty="0.004")
        await fx.fill(order.cid)
        ex = await h.wait(OrderExecution, 2)
        assert [e.fill_qty for e in ex] == ["0.004", "0.006"]
        assert [e.leaves_qty for e in ex] == ["0.006", "0"]
        assert ex[0].maker and ex[0].fee_coin == "USDT" and ex[0].exec_id.startswith("BTCUSDT:")
        assert len(h.of(NewOrderAck)) == 1


async def test_binance_post_only_sent_as_gtx_and_cross_rejected(fx: FakeBinance) -> None:
    async with _gateway(fx) as h:
        await h.ready()
        h.send(_new("p1", exec_instr=ExecInstructions.PostOnly))
        await h.wait(NewOrderAck)
        assert fx.orders[venue_client_id(STRAT, "p1")].tif == "GTX"
        h.send(_new("p2", price="50000.1", exec_instr=ExecInstructions.PostOnly))
        (rej,) = await h.wait(NewOrderReject)
        assert rej.code is GtwRejectCode.PostOnlyWouldCross and "-5022" in rej.reason
        assert "Post Only" in rej.reason


async def test_binance_ioc_expires_unsolicited_and_fok_rejected(fx: FakeBinance) -> None:
    async with _gateway(fx) as h:
        await h.ready()
        h.send(_new("i1", tif=TIF.IOC))
        (c,) = await h.wait(OrderCancelled)
        assert c.unsolicited and c.cancel_code is CancelCode.ImmediateOrCancel
        h.send(_new("f1", tif=TIF.FOK))
        (rej,) = await h.wait(NewOrderReject)
        assert rej.code is GtwRejectCode.FokNotFilled
        fx.fok_liquidity = True
        h.send(_new("f2", tif=TIF.FOK))
        (ex,) = await h.wait(OrderExecution)
        assert ex.cl_id == "f2" and ex.leaves_qty == "0" and not ex.maker


async def test_binance_market_and_reduce_only(fx: FakeBinance) -> None:
    async with _gateway(fx) as h:
        await h.ready()
        h.send(_new("r1", close_position=True, side=Side.Sell))
        (rej,) = await h.wait(NewOrderReject)
        assert rej.code is GtwRejectCode.ReduceOnlyWouldIncrease
        h.send(_new("m1", ord_type=OrderType.Market, price="0"))
        (ex,) = await h.wait(OrderExecution)
        assert ex.price == "50000.1"
        assert "price" not in fx.requests[-1][2] or fx.requests[-1][0] != "POST"
        h.send(
            _new("r2", close_position=True, side=Side.Sell, ord_type=OrderType.Market, price="0")
        )
        await h.wait(OrderExecution, 2)
        assert fx.orders[venue_client_id(STRAT, "r2")].reduce_only
        h.send(FetchPosition(strat=STRAT, instrument_id=BTC))
        (pos,) = await h.wait(PositionInfo)
        assert Decimal(pos.position) == 0


async def test_binance_modify_and_cancel(fx: FakeBinance) -> None:
    async with _gateway(fx) as h:
        await h.ready()
        h.send(_new("c1"))
        await h.wait(NewOrderAck)
        h.send(ModifyOrder(strat=STRAT, cl_id="c1", new_price="49100.0"))
        (mod,) = await h.wait(ModifyOrderAck)
        assert mod.new_price == "49100" or Decimal(mod.new_price) == Decimal("49100.0")
        assert fx.orders[venue_client_id(STRAT, "c1")].price == Decimal("49100.0")
        h.send(CancelOrder(strat=STRAT, cl_id="c1", instrument_id=BTC))
        await h.wait(CancelOrderAck)
        (c,) = await h.wait(OrderCancelled)
        assert not c.unsolicited and c.cancel_code is CancelCode.CanceledByUser
        h.send(CancelOrder(strat=STRAT, cl_id="c1", instrument_id=BTC))
        (rej,) = await h.wait(CancelOrderReject)
        assert rej.code is GtwRejectCode.UnknownOrder
        # a cancel racing a fill: the venue says unknown order
        h.send(_new("c2"))
        await h.wait(NewOrderAck, 2)
        await fx.fill(venue_client_id(STRAT, "c2"))
        await h.wait(OrderExecution)
        h.send(CancelOrder(strat=STRAT, cl_id="c2", instrument_id=BTC))
        await h.wait(CancelOrderReject, 2)
        assert len(h.of(OrderCancelled)) == 1


async def test_binance_cancel_all_and_stop_cancels_open_orders(fx: FakeBinance) -> None:
    async with _gateway(fx) as h:
        await h.ready()
        for i in range(3):
            h.send(_new(f"k{i}"))
        await h.wait(NewOrderAck, 3)
        h.send(CancelAll(strat=STRAT))
        await h.wait(CancelAllAck)
        cancels = await h.wait(OrderCancelled, 3)
        assert {c.cancel_code for c in cancels} == {CancelCode.CancelAll}
        h.send(_new("k9"))
        await h.wait(NewOrderAck, 4)
    assert fx.orders[venue_client_id(STRAT, "k9")].status == "CANCELED"
    assert h.statuses[-1].status is GtwStatus.Connecting


@pytest.mark.parametrize(
    ("status", "code", "msg", "expected"),
    [
        (400, -2019, "Margin is insufficient.", GtwRejectCode.InsufficientBalance),
        (400, -1121, "Invalid symbol.", GtwRejectCode.UnknownInstrument),
        (400, -4164, "Order's notional must be no smaller than 100", GtwRejectCode.InvalidQty),
        (400, -4014, "Price not increased by tick size.", GtwRejectCode.InvalidPrice),
        (400, -1021, "Timestamp outside of the recvWindow.", GtwRejectCode.ClockOffset),
        (400, -9999, "Something new.", GtwRejectCode.ExchangeError),
        (503, -1001, "Internal error.", GtwRejectCode.ExchangeError),
    ],
)
async def test_binance_venue_errors_map_to_reject_codes(
    fx: FakeBinance, status: int, code: int, msg: str, expected: GtwRejectCode
) -> None:
    async with _gateway(fx) as h:
        await h.ready()
        fx.fail("POST", "/fapi/v1/order", status, code, msg)
        h.send(_new("e1"))
        (rej,) = await h.wait(NewOrderReject)
        assert rej.code is expected
        assert msg in rej.reason


async def test_binance_local_checks_reject_before_sending(fx: FakeBinance) -> None:
    async with _gateway(fx) as h:
        await h.ready()
        n = len(fx.requests)
        h.send(_new("x1", price="49000.05"))
        h.send(_new("x2", qty="0.0005"))
        h.send(_new("x3", instrument_id=424242))
        rej = await h.wait(NewOrderReject, 3)
        assert [r.code for r in rej] == [
            GtwRejectCode.InvalidPrice,
            GtwRejectCode.InvalidQty,
            GtwRejectCode.UnknownInstrument,
        ]
        assert len(fx.requests) == n


async def test_binance_rate_limit_headers_feed_rate_limit_info(fx: FakeBinance) -> None:
    async with _gateway(fx) as h:
        await h.ready()
        fx.used_weight = 3100  # of 6000 (the sample exchangeInfo's REQUEST_WEIGHT): over 50 %
        h.send(_new("w1"))
        (info,) = await h.wait(RateLimitInfo)
        assert info.rate_limit == 6000 and 0 < info.rate_remaining < 3000
        assert info.reset_ts > 0
        fx.used_weight = 5500
        h.send(_new("w2"))
        infos = await h.wait(RateLimitInfo, 2)
        assert infos[1].rate_remaining < 600
        fx.used_weight = 10
        fx.order_count = 1199  # of 1200 orders per minute
        h.send(_new("w3"))
        infos = await h.wait(RateLimitInfo, 3)
        assert infos[2].rate_limit == 1200 and infos[2].rate_remaining == 0


@pytest.mark.parametrize("status", [429, 418])
async def test_binance_429_418_reject_and_back_off(fx: FakeBinance, status: int) -> None:
    async with _gateway(fx) as h:
        await h.ready()
        fx.fail(
            "POST",
            "/fapi/v1/order",
            status,
            -1003,
            "Too many requests; current limit is 2400 requests per minute.",
            headers={"Retry-After": "30"},
        )
        h.send(_new("l1"))
        (rej,) = await h.wait(NewOrderReject)
        assert rej.code is GtwRejectCode.RateLimitExceeded
        n = len(fx.requests)
        h.send(_new("l2"))
        rej2 = await h.wait(NewOrderReject, 2)
        assert rej2[1].code is GtwRejectCode.RateLimitExceeded and "retry in" in rej2[1].reason
        assert len(fx.requests) == n  # backed off: nothing sent


async def test_binance_wrong_secret_rejected_as_not_logged_in(fx: FakeBinance) -> None:
    async with _gateway(fx, creds=Credentials(API_KEY, "wrong-secret-0000000000")) as h:
        # the listen key needs the key only, so the stream comes up; signed calls fail
        await h.ready()
        h.send(_new("s1"))
        (rej,) = await h.wait(NewOrderReject)
        assert rej.code is GtwRejectCode.NotLoggedIn and "-1022" in rej.reason


async def test_binance_timeout_resolved_by_query(fx: FakeBinance) -> None:
    async with _gateway(fx) as h:
        await h.ready()
        fx.delay("POST", "/fapi/v1/order", 1.5)
        h.send(_new("t1"))
        # the order did reach the venue: the query after the timeout finds it
        (ack,) = await h.wait(NewOrderAck, timeout=8)
        assert ack.cl_id == "t1"
        fx.delays.clear()
        fx.fail("POST", "/fapi/v1/order", 400, -1007, "Timeout waiting for response.")
        h.send(_new("t2"))
        (rej,) = await h.wait(NewOrderReject)
        assert rej.code is GtwRejectCode.Timeout


async def test_binance_fetches(fx: FakeBinance) -> None:
    async with _gateway(fx) as h:
        await h.ready()
        h.send(FetchWallet(strat=STRAT, coin="USDT"))
        h.send(FetchAccount(strat=STRAT))
        h.send(FetchFunding(strat=STRAT, instrument_id=BTC))
        h.send(_new("o1"))
        await h.wait(NewOrderAck)
        h.send(FetchOrders(strat=STRAT))
        (w,) = await h.wait(WalletInfo)
        assert w.total == "10000" and w.available == "10000"
        (a,) = await h.wait(AccountInfo)
        assert API_KEY not in a.user_id
        (f,) = await h.wait(FundingInfo)
        assert f.rate == "0.00038246" and f.next_ts == 1597392000000 * 1_000_000
        (o,) = await h.wait(OrdersInfo)
        assert [x.cl_id for x in o.orders] == ["o1"]


async def test_binance_disconnect_mid_order_reconciles_missed_fill_once(fx: FakeBinance) -> None:
    async with _gateway(fx) as h:
        await h.ready()
        h.send(_new("d1"))
        h.send(_new("d2"))
        await h.wait(NewOrderAck, 2)
        fx.hold_pushes = True
        await fx.drop_user_streams()
        await fx.fill(venue_client_id(STRAT, "d1"), qty="0.004")  # lost: nobody listening
        await fx.fill(venue_client_id(STRAT, "d1"))
        await fx.cancel_by_venue(venue_client_id(STRAT, "d2"))
        fx.hold_pushes = False
        await h.ready(2)
        ex = await h.wait(OrderExecution, 2)
        assert [e.fill_qty for e in ex] == ["0.004", "0.006"]
        (c,) = await h.wait(OrderCancelled)
        assert c.cl_id == "d2" and c.unsolicited
        assert fx.listen_keys == ["lk0xyz", "lk1xyz"]
        # the lost messages arrive late (a replaying venue): nothing is reported twice
        await fx.push_raw_user(fx.lost)
        h.send(FetchOrders(strat=STRAT))
        await h.wait(OrdersInfo)
        assert len(h.of(OrderExecution)) == 2 and len(h.of(OrderCancelled)) == 1
        statuses = [s.status for s in h.statuses]
        assert GtwStatus.Connecting in statuses[statuses.index(GtwStatus.ReadyToTrade) :]


async def test_binance_duplicated_and_reordered_private_messages(fx: FakeBinance) -> None:
    async with _gateway(fx) as h:
        await h.ready()
        fx.duplicate_pushes = True
        fx.reverse_pushes = True
        fx.best["BTCUSDT"] = (Decimal("50000.0"), Decimal("50000.1"))
        h.send(_new("u1", ord_type=OrderType.Market, price="0"))
        (ex,) = await h.wait(OrderExecution)
        h.send(_new("u2"))
        await h.wait(NewOrderAck, 2)
        await fx.fill(venue_client_id(STRAT, "u2"))
        await h.wait(OrderExecution, 2)
        h.send(FetchOrders(strat=STRAT))
        await h.wait(OrdersInfo)
        assert len(h.of(OrderExecution)) == 2
        assert len(h.of(NewOrderAck)) == 2
        assert ex.leaves_qty == "0"


async def test_binance_listen_key_kept_alive(fx: FakeBinance) -> None:
    async with _gateway(fx, keepalive_s=0.05) as h:
        await h.ready()
        await wait_until(lambda: fx.keepalives >= 2, 30, "keepalives")


async def test_binance_cancel_right_after_new_keeps_report_order(fx: FakeBinance) -> None:
    async with _gateway(fx) as h:
        await h.ready()
        fx.reverse_pushes = True
        h.send(_new("q1"))
        h.send(CancelOrder(strat=STRAT, cl_id="q1", instrument_id=BTC))
        await h.wait(OrderCancelled)
        h.send(ModifyOrder(strat=STRAT, cl_id="q1"))
        await h.wait(ModifyOrderReject)
        h.send(FetchOrders(strat=STRAT))
        (o,) = await h.wait(OrdersInfo)
        kinds = [type(r).__name__ for r in h.reports]
        assert kinds == [
            "NewOrderAck",
            "CancelOrderAck",
            "OrderCancelled",
            "ModifyOrderReject",
            "OrdersInfo",
        ]
        assert o.orders == []
