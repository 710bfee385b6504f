"""One real strategy through the whole lifecycle, every env call and every callback, on both
buses (in-process, and a real mosquitto on loopback)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from mlthon.api import MDSub
from mlthon.basics import (
    TIF,
    CancelCode,
    Exchange,
    ExecInstructions,
    FeedHandlerStatus,
    GtwRejectCode,
    GtwStatus,
    Order,
    OrderStatus,
    OrderType,
    Price,
    Qty,
    Side,
)
from mlthon.infra.bus import messages as m
from tests import md
from tests.fakes.recorder import CALLBACKS
from tests.harness import System, inproc_system, mqtt_system

pytestmark = pytest.mark.integration

SIM = Exchange.Sim


@pytest.fixture(params=["inproc", "mqtt"])
def system_factory(request, mosquitto, topic_root):
    @contextlib.asynccontextmanager
    async def make(**kw) -> AsyncIterator[System]:
        if request.param == "inproc":
            async with inproc_system(**kw) as s:
                yield s
        else:
            async with mqtt_system(mosquitto.port, topic_root, **kw) as s:
                yield s

    return make


async def test_lifecycle_every_call_and_callback(system_factory):
    async with system_factory() as s:
        r = s.strat
        await s.until("on_strat_params_update")
        # Start-up order exactly as the reference: no status callbacks at start-up.
        assert r.names()[:4] == [
            "on_framework_connected",
            "on_start",
            "on_instruments",
            "on_strat_params_update",
        ]
        assert r.of("on_start")[0] == ("",)
        assert {i.instrument_id for i in r.of("on_instruments")[0][0]} == {9001, 1001}
        assert r.of("on_strat_params_update")[0][0] == {
            "spread": 2,
            "size": "0.001",
            "active": True,
        }
        env = s.env
        assert env is not None

        # --- market data: every MDSub ---
        for sub in (
            MDSub.PriceLevelBook,
            MDSub.LevelBook,
            MDSub.BBO,
            MDSub.PublicTrades,
            MDSub.Funding,
        ):
            env.subscribe(SIM, 9001, sub)
        await s.until_subscribed() if hasattr(s, "until_subscribed") else None
        if s.sys_bus is not s.strat_bus:
            await s.strat_bus.flush()
        s.feed(
            m.FeedStatus(
                ex=SIM.value,
                iid=9001,
                status=FeedHandlerStatus.SnapshotStart,
                detail="SIMUSDT snapshot",
            )
        )
        s.feed(md.book(ex=1, iid=9001, ts=10, ch=[(0, 1, "100.0", "1.5"), (0, 2, "100.2", "2")]))
        s.feed(m.FeedStatus(ex=SIM.value, iid=9001, status=FeedHandlerStatus.SnapshotEnd))
        s.feed(
            md.book(
                ex=1,
                iid=9001,
                ts=11,
                ch=[(1, 1, "100.0", "1.0"), (2, 2, "100.2", "0"), (0, 2, "100.3", "4")],
            )
        )
        s.feed(md.trades(ex=1, iid=9001, ts=12, tr=[(2, "100.0", "0.5", 9, "t1")]))
        s.feed(m.FundingUpdate(ex=1, iid=9001, ts=13, rate="0.0001", next_ts=99))
        await s.until("on_funding_info")
        assert r.of("on_add_price_level")[0] == (
            SIM,
            9001,
            Side.Buy,
            Price("100.0"),
            Qty("1.5"),
            10,
        )
        assert r.of("on_modify_price_level") == [
            (SIM, 9001, Side.Buy, Price("100.0"), Qty("1.0"), 11)
        ]
        assert r.of("on_delete_price_level") == [(SIM, 9001, Side.Sell, Price("100.2"), 11)]
        # Price-level feeds give level ids in ticks (tick 0.10): 100.0 -> 1000.
        assert r.of("on_add_level")[0] == (
            SIM,
            9001,
            Side.Buy,
            1000,
            Price("100.0"),
            Qty("1.5"),
            10,
        )
        assert r.of("on_modify_level") == [(SIM, 9001, Side.Buy, 1000, Qty("1.0"), 11)]
        assert r.of("on_delete_level") == [(SIM, 9001, Side.Sell, 1002, 11)]
        # BBO: once at the end of the snapshot, then only for what changed.
        assert r.of("on_best_bid_level_update") == [
            (SIM, 9001, Price("100.0"), Qty("1.5"), 10),
            (SIM, 9001, Price("100.0"), Qty("1.0"), 11),
        ]
        assert r.of("on_best_ask_level_update") == [
            (SIM, 9001, Price("100.2"), Qty("2"), 10),
            (SIM, 9001, Price("100.3"), Qty("4"), 11),
        ]
        assert r.of("on_public_trade") == [
            (SIM, 9001, Side.Sell, Price("100.0"), Qty("0.5"), 9, 12)
        ]
        assert r.of("on_funding_info") == [(SIM, 9001, 0.0001, 99)]
        statuses = [a[1] for a in r.of("on_feed_handler_status")]
        assert statuses == [FeedHandlerStatus.SnapshotStart, FeedHandlerStatus.SnapshotEnd]
        book = env.get_book(SIM, 9001)
        assert book is not None and book.valid
        assert book.top(5) == ([(Price("100.0"), Qty("1.0"))], [(Price("100.3"), Qty("4"))])

        # --- order entry ---
        cid = env.send_new_order(
            None,
            SIM,
            9001,
            Side.Buy,
            "100.0",
            Qty("0.002"),
            ExecInstructions.PostOnly,
            OrderType.Limit,
            TIF.GTC,
            False,
        )
        assert isinstance(cid, int)
        await s.until("on_new_order_ack")
        assert r.of("on_new_order_ack")[0] == (
            SIM,
            str(cid),
            f"X{cid}",
            9001,
            Side.Buy,
            Price("100.0"),
            Qty("0.002"),
            Qty("0.002"),
            OrderType.Limit,
            TIF.GTC,
            ExecInstructions.PostOnly,
        )
        ioc = env.send_new_order(
            None,
            SIM,
            9001,
            Side.Sell,
            Decimal("100.3"),
            "0.001",
            ExecInstructions.Unset,
            OrderType.Limit,
            TIF.IOC,
            False,
        )
        await s.until("on_order_execution")
        assert r.of("on_order_execution")[0][:7] == (
            SIM,
            str(ioc),
            Side.Sell,
            Price("100.3"),
            Qty("0.001"),
            Qty("0"),
            123,
        )
        env.send_new_order(None, SIM, 9001, Side.Buy, "100.0", "999")
        await s.until("on_new_order_reject")
        assert r.of("on_new_order_reject")[0][2:] == (GtwRejectCode.InsufficientBalance, "no money")
        env.send_modify_order(SIM, cid, "99.9", None)
        await s.until("on_modify_order_ack")
        assert r.of("on_modify_order_ack")[0] == (
            SIM,
            str(cid),
            Price("99.9"),
            Qty("0.002"),
            Qty("0.002"),
        )
        env.send_modify_order(SIM, 424242, None, "0.005")
        await s.until("on_modify_order_reject")
        assert r.of("on_modify_order_reject")[0][2] is GtwRejectCode.UnknownOrder
        env.fetch_order_status(SIM, 9001, cid)
        await s.until("on_order_status")
        assert r.of("on_order_status")[0] == (
            SIM,
            9001,
            str(cid),
            f"X{cid}",
            Side.Buy,
            Price("100.0"),
            Qty("0.002"),
            OrderStatus.New,
            OrderType.Limit,
            TIF.GTC,
            ExecInstructions.PostOnly,
        )
        env.fetch_orders_info(SIM)
        await s.until("on_orders_info")
        ((ex, orders),) = r.of("on_orders_info")
        assert ex is SIM and [o.client_ord_id for o in orders] == [str(cid)]
        assert isinstance(orders[0], Order)
        env.send_cancel_order(SIM, 9001, cid)
        await s.until("on_order_cancelled")
        assert r.of("on_cancel_order_ack") == [(SIM, str(cid))]
        assert r.of("on_order_cancelled")[0][:4] == (SIM, str(cid), False, 7)
        assert r.of("on_order_cancelled")[0][5:] == (CancelCode.CanceledByUser, "asked")
        env.send_cancel_order(SIM, 9001, cid)
        await s.until("on_cancel_order_reject")
        assert r.of("on_cancel_order_reject")[0][1:3] == (str(cid), GtwRejectCode.UnknownOrder)
        c2 = env.send_new_order(None, SIM, 9001, Side.Buy, "99.0", "0.001")
        await s.until("on_new_order_ack", 2)
        env.send_cancel_all(SIM, 9001)
        await s.until("on_cancel_all_ack")
        await s.until("on_order_cancelled", 2)
        assert r.of("on_cancel_all_ack") == [(SIM, 9001)]
        assert r.of("on_order_cancelled")[1][1] == str(c2)
        env.fetch_order_status(SIM, 9001, c2)
        await s.until("on_request_reject")
        assert r.of("on_request_reject")[0][1:] == (
            GtwRejectCode.UnknownOrder,
            "unknown",
            "FetchOrderStatus",
        )

        # --- fetches ---
        env.fetch_account_info(SIM)
        env.fetch_wallet_info(SIM, "USDT")
        env.fetch_position_info(SIM, 9001)
        env.fetch_funding_info(SIM, 9001)
        await s.until("on_funding_info", 2)
        assert r.of("on_account_info") == [(SIM, "user-1")]
        assert r.of("on_wallet_info") == [(SIM, "USDT", Qty("10.5"), Qty("7.25"))]
        assert r.of("on_position_info") == [(SIM, 9001, Qty("-0.003"))]
        assert r.of("on_funding_info")[1] == (SIM, 9001, 0.0001, 1_700_000_000_000_000_000)

        # --- unsolicited gateway reports ---
        s.gateway.report("rec", m.RateLimitInfo(rate_limit=100, rate_remaining=10, reset_ts=5))
        s.gateway.report("rec", m.UnsupportedOp(msg_type="ModifyOrder"))
        s.gateway.report(
            "rec",
            m.CancelAllReject(
                instrument_id=9001, code=GtwRejectCode.RateLimitExceeded, reason="slow down"
            ),
        )
        await s.until("on_cancel_all_reject")
        assert r.of("on_rate_limit_info") == [(SIM, 100, 10, 5)]
        assert r.of("on_unsupported_op") == [(SIM, "ModifyOrder")]
        assert r.of("on_cancel_all_reject") == [
            (SIM, 9001, GtwRejectCode.RateLimitExceeded, "slow down")
        ]

        # --- gateway transitions: only on change; env refuses while not ready ---
        s.gateway.set_status(GtwStatus.Maintenance, "scheduled")
        await s.until("on_gateway_status")
        assert r.of("on_gateway_status") == [(SIM, GtwStatus.Maintenance, "scheduled")]
        rej = env.send_new_order(None, SIM, 9001, Side.Buy, "99.0", "0.001")
        await s.until("on_new_order_reject", 2)
        assert r.of("on_new_order_reject")[1][1:3] == (str(rej), GtwRejectCode.GtwNotReady)
        s.gateway.set_status(GtwStatus.ReadyToTrade)
        await s.until("on_gateway_status", 2)

        # --- command hooks, params ---
        got: list[list[str]] = []

        def flatten(params: list[str]) -> str:
            """Close every position."""
            got.append(params)
            return "flat"

        env.add_cmd_hook("Flatten", flatten, dangerous=True)
        res = await s.cmd("FLATTEN", "now", "fast")
        assert res.ok and res.detail == "flat" and got == [["now", "fast"]]
        res = await s.cmd("nosuch")
        assert not res.ok and "unknown command" in res.detail
        res = await s.cmd("params", "spread=3", "mode=wide")
        assert res.ok
        await s.until("on_strat_params_update", 2)
        assert r.of("on_strat_params_update")[1][0] == {
            "spread": 3,
            "size": "0.001",
            "active": True,
            "mode": "wide",
        }
        res = await s.cmd("params", "spread=wide")
        assert not res.ok and "spread is a int" in res.detail

        # --- timers ---
        ticks: list[int] = []
        env.setup_timer(5, lambda: ticks.append(1) or len(ticks) < 3)
        from tests.conftest import wait_until

        await wait_until(lambda: len(ticks) == 3)

        # --- stop, refusals while stopped, restart ---
        res = await s.cmd("stop", "eod")
        assert res.ok and "acknowledged" in res.detail
        assert r.of("on_stop") == [("eod",)]
        stopped_id = env.send_new_order(None, SIM, 9001, Side.Buy, "99.0", "0.001")
        await s.until("on_new_order_reject", 3)
        assert r.of("on_new_order_reject")[2][1:3] == (
            str(stopped_id),
            GtwRejectCode.StrategyStopped,
        )
        res = await s.cmd("start", "again")
        assert res.ok
        assert r.of("on_start")[-1] == ("again",)
        env.send_new_order(None, SIM, 9001, Side.Buy, "99.0", "0.001")
        await s.until("on_new_order_ack", 3)

        # Every callback of the API was exercised except the level-id ones for L3 data, which
        # the order-level test covers, and the framework disconnection (broker restart test).
        seen = set(r.names())
        assert set(CALLBACKS) - seen <= {"on_framework_disconnected"}
