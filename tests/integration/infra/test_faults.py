"""Bad input never stops the reactor: raising and blocking callbacks, bad env arguments,
malformed bus messages, a broker restart, a stop that is never acknowledged."""

from __future__ import annotations

import logging
import time
from decimal import Decimal

import pytest

from mlthon.api import MDSub
from mlthon.basics import (
    TIF,
    CancelCode,
    Exchange,
    GtwRejectCode,
    InvalidArgument,
    InvalidArgumentType,
    OrderStatus,
    OrderType,
    Side,
)
from mlthon.infra.bus import messages as m
from mlthon.infra.bus.mqtt import MqttBus
from tests import md
from tests.conftest import wait_until
from tests.fakes.recorder import Recorder
from tests.harness import inproc_system, mqtt_system

pytestmark = pytest.mark.integration
SIM = Exchange.Sim


async def test_raising_callback_is_logged_counted_reported_and_the_reactor_goes_on(caplog):
    strat = Recorder()
    strat.hooks["on_public_trade"] = lambda *a: 1 / 0
    async with inproc_system(strat) as s:
        await s.until("on_strat_params_update")
        s.env.subscribe(SIM, 9001, MDSub.PublicTrades)
        alerts = []
        s.sys_bus.subscribe(s.topics.telegram("rec"), lambda t, msg: alerts.append(msg))
        s.feed(
            md.trades(
                ex=1, iid=9001, ts=1, tr=[(1, "100.0", "1", 1, "a"), (2, "100.1", "2", 2, "b")]
            )
        )
        await s.until("on_public_trade", 2)
        # Both trades reached the strategy although the first callback raised.
        assert [a[3] for a in strat.of("on_public_trade")] == [Decimal("100.0"), Decimal("100.1")]
        assert s.reactor.callback_errors == 2
        assert "ZeroDivisionError" in caplog.text and "on_public_trade" in caplog.text
        await wait_until(lambda: alerts)
        assert alerts[0].priority == 0 and "ZeroDivisionError" in alerts[0].text
        # The reactor still serves other callbacks.
        s.env.fetch_account_info(SIM)
        await s.until("on_account_info")


async def test_raising_command_hook_answers_not_ok(caplog):
    async with inproc_system() as s:
        await s.until("on_strat_params_update")

        def boom(params):
            raise RuntimeError("bad hook")

        s.env.add_cmd_hook("boom", boom)
        res = await s.cmd("boom")
        assert not res.ok and "RuntimeError: bad hook" in res.detail


async def test_blocking_callback_is_reported_with_name_and_duration(caplog):
    strat = Recorder()
    strat.hooks["on_account_info"] = lambda *a: time.sleep(0.08)
    async with inproc_system(strat, slow_callback_ms=20) as s:
        s.reactor.slow_callback_ns = 20_000_000
        await s.until("on_strat_params_update")
        with caplog.at_level(logging.WARNING):
            s.env.fetch_account_info(SIM)
            await s.until("on_account_info")
        assert s.reactor.slow_callbacks == 1
        rec = [r for r in caplog.records if "blocked the reactor" in r.getMessage()]
        assert rec and "on_account_info" in rec[0].getMessage()
        ms = float(rec[0].getMessage().split("for ")[1].split(" ms")[0])
        assert ms >= 80


@pytest.mark.parametrize(
    "call,param",
    [
        (lambda e: e.send_new_order(None, SIM, 9001, Side.Buy, 100.0, "0.001"), "price"),
        (lambda e: e.send_new_order(None, SIM, 9001, Side.Buy, "100.0", 0.001), "qty"),
        (lambda e: e.send_new_order(None, SIM, 9001, Side.Buy, "NaN", "0.001"), "price"),
        (lambda e: e.send_new_order(None, SIM, 9001, Side.Buy, "100.0", "0"), "qty"),
        (lambda e: e.send_new_order(None, SIM, 9001, Side.Buy, "100.0", "-1"), "qty"),
        (lambda e: e.send_new_order(None, SIM, 9001, Side.Buy, "100.05", "0.001"), "price"),
        (lambda e: e.send_new_order(None, SIM, 9001, Side.Buy, "100.0", "0.0015"), "qty"),
        (lambda e: e.send_new_order(None, SIM, 4242, Side.Buy, "100.0", "0.001"), "instrument_id"),
        (lambda e: e.send_new_order(None, "Sim", 9001, Side.Buy, "100.0", "0.001"), "exchange"),
        (
            lambda e: e.send_new_order(None, Exchange.Bybit, 9001, Side.Buy, "100", "1"),
            "instrument_id",
        ),
        (lambda e: e.send_new_order(None, SIM, 9001, "Buy", "100.0", "0.001"), "side"),
        (
            lambda e: e.send_new_order(None, SIM, 9001, Side.Buy, "100.0", "0.001", ord_type=1),
            "ord_type",
        ),
        (lambda e: e.send_new_order(1.5, SIM, 9001, Side.Buy, "100.0", "0.001"), "client_id"),
        (
            lambda e: e.send_new_order(
                None, SIM, 9001, Side.Buy, "100.0", "0.001", ord_type=OrderType.StopLimit
            ),
            "stop_price",
        ),
        (
            lambda e: e.send_new_order(
                None, SIM, 9001, Side.Buy, "100.0", "0.001", time_in_force="GTC"
            ),
            "time_in_force",
        ),
        (lambda e: e.send_modify_order(SIM, 1, None, None), "new_price"),
        (lambda e: e.send_cancel_order(SIM, 9001, 1.0), "client_ord_id"),
        (lambda e: e.subscribe(SIM, 9001, "BBO"), "md_sub"),
        (lambda e: e.subscribe(SIM, 77, MDSub.BBO), "instrument_id"),
        (lambda e: e.setup_timer(0, lambda: None), "duration_ms"),
        (lambda e: e.setup_daily_callback("25:00:00", lambda: None), "hh_mm_ss"),
        (lambda e: e.add_cmd_hook("start", lambda p: None), "cmd_name_str"),
        (lambda e: e.add_cmd_hook("ok", "not callable"), "callback_func"),
        (lambda e: e.publish_telegram(""), "msg"),
        (lambda e: e.fetch_wallet_info(SIM, 5), "coin"),
    ],
)
async def test_bad_env_argument_raises_at_once_naming_it_and_sends_nothing(call, param):
    async with inproc_system() as s:
        await s.until("on_strat_params_update")
        before = len(s.gateway.requests)
        with pytest.raises(InvalidArgument) as ei:
            call(s.env)
        assert ei.value.param == param and param in str(ei.value)
        if isinstance(ei.value, InvalidArgumentType):
            assert isinstance(ei.value, TypeError)
        # The env keeps working after the error.
        s.env.send_new_order(None, SIM, 9001, Side.Buy, "100.0", "0.001", time_in_force=TIF.GTC)
        await s.until("on_new_order_ack")
        assert len(s.gateway.requests) == before + 1


async def test_duplicate_client_id_is_refused_at_once():
    async with inproc_system() as s:
        await s.until("on_strat_params_update")
        assert s.env.send_new_order(7, SIM, 9001, Side.Buy, "100.0", "0.001") == 7
        with pytest.raises(InvalidArgument, match="already used"):
            s.env.send_new_order(7, SIM, 9001, Side.Buy, "100.0", "0.001")


async def test_order_before_login_raises_inside_the_guard_and_the_env_goes_on():
    strat = Recorder()
    attempts = []

    def connected(env):
        # Before login the env knows no instruments: the call raises InvalidArgument.
        attempts.append(env.send_new_order(None, SIM, 9001, Side.Buy, "100.0", "0.001"))

    strat.hooks["on_framework_connected"] = connected
    async with inproc_system(strat) as s:
        await s.until("on_strat_params_update")
    assert s.reactor.callback_errors == 1 and "instrument_id" in s.reactor.last_error


async def test_unacknowledged_stop_escalates_to_cancel_all():
    strat = Recorder(auto_ack_stop=False)
    async with inproc_system(strat, stop_ack_timeout_s=0.05) as s:
        await s.until("on_strat_params_update")
        s.env.send_new_order(None, SIM, 9001, Side.Buy, "100.0", "0.001")
        await s.until("on_new_order_ack")
        res = await s.cmd("stop")
        assert res.ok and "escalated" in res.detail and "cancel-all sent to" in res.detail
        assert any(isinstance(r, m.CancelAll) and r.escalation for r in s.gateway.requests)
        await s.until("on_order_cancelled")
        # After the escalation the strategy counts as stopped: its orders are refused.
        await wait_until(lambda: s.env.stopped)
        s.env.send_new_order(None, SIM, 9001, Side.Buy, "100.0", "0.001")
        await wait_until(
            lambda: any(
                a[2] is GtwRejectCode.StrategyStopped for a in strat.of("on_new_order_reject")
            )
        )


async def test_malformed_bus_messages_are_dropped_and_logged(mosquitto, topic_root, caplog):
    async with mqtt_system(mosquitto.port, topic_root) as s:
        await s.until("on_strat_params_update")
        s.env.subscribe(SIM, 9001, MDSub.PublicTrades)
        await s.strat_bus.flush()
        topic = s.topics.md(SIM, 9001)
        raw = s.sys_bus
        assert isinstance(raw, MqttBus)
        with caplog.at_level(logging.WARNING):
            raw.publish_raw(topic, b"{garbage")
            raw.publish_raw(topic, b'{"k":"trd","v":1,"ex":1,"iid":9001}')
            raw.publish_raw(s.topics.strat_ctl("rec"), b'{"k":"start","v":1,"bogus":1}')
            s.feed(md.trades(ex=1, iid=9001, ts=1, tr=[(1, "100.0", "1", 1, "a")]))
            await s.until("on_public_trade")
        assert s.strat_bus.malformed == 3
        assert caplog.text.count("malformed message") == 3
        assert topic in caplog.text


async def test_broker_restart_disconnects_then_reconnects_and_logs_in_again(broker, topic_root):
    async with mqtt_system(broker.port, topic_root) as s:
        await s.until("on_strat_params_update")
        broker.stop()
        await s.until("on_framework_disconnected", timeout=10)
        # While the broker is down, env calls return at once.
        t0 = time.perf_counter()
        s.env.publish_telegram("queued while down")
        assert time.perf_counter() - t0 < 0.01
        broker.start()
        await s.until("on_framework_connected", 2, timeout=15)
        await s.until("on_strat_params_update", 2, timeout=10)
        names = s.strat.names()
        i = names.index("on_framework_disconnected")
        # Logged in again, the strategy goes on: on_start ran once in this process (it is not
        # run again by the answer to the new login), and the instruments did not change.
        assert names[i + 1 : i + 3] == ["on_framework_connected", "on_strat_params_update"]
        assert names.count("on_start") == 1 and names.count("on_instruments") == 1
        assert s.env.state == "running"


async def test_a_repeated_execution_reaches_the_strategy_once():
    async with inproc_system() as s:
        await s.until("on_strat_params_update")
        await wait_until(lambda: s.env.last_reconciliation, what="start-up reconciliation")
        cl = str(s.env.send_new_order(None, SIM, 9001, Side.Buy, "100.0", "0.002"))
        await s.until("on_new_order_ack")
        before = s.env.reports_received
        fill = m.OrderExecution(
            cl_id=cl,
            exec_id="E-77",
            instrument_id=9001,
            side=Side.Buy,
            price="100.0",
            fill_qty="0.001",
            leaves_qty="0.001",
            exec_ts=5,
        )
        s.gateway.report("rec", fill)
        s.gateway.report("rec", fill)  # redelivered after a reconnect
        s.gateway.report(
            "rec",
            m.OrderExecution(
                cl_id=cl,
                exec_id="E-78",
                instrument_id=9001,
                side=Side.Buy,
                price="100.0",
                fill_qty="0.001",
                leaves_qty="0",
                exec_ts=6,
            ),
        )
        await s.until("on_order_execution", 2)
        await wait_until(lambda: s.env.reports_received == before + 3)
        assert [a[6] for a in s.strat.of("on_order_execution")] == [5, 6]
        assert s.env.duplicate_fills == 1


async def test_repeated_acks_and_cancels_reach_the_strategy_once():
    async with inproc_system() as s:
        await s.until("on_strat_params_update")
        cid = s.env.send_new_order(None, SIM, 9001, Side.Buy, "100.0", "0.001")
        await s.until("on_new_order_ack")
        ack = next(r for r in s.gateway.requests if isinstance(r, m.NewOrder))
        s.gateway._on_req("", ack)  # the gateway answers the same request again
        s.env.send_cancel_order(SIM, 9001, cid)
        await s.until("on_order_cancelled")
        s.gateway.report(
            "rec",
            m.OrderCancelled(
                cl_id=str(cid),
                unsolicited=False,
                engine_ts=7,
                cancel_code=CancelCode.CanceledByUser,
            ),
        )
        s.env.fetch_account_info(SIM)
        await s.until("on_account_info")
        assert len(s.strat.of("on_new_order_ack")) == 1
        assert len(s.strat.of("on_order_cancelled")) == 1


async def test_orders_that_ended_while_away_are_closed_after_the_reconnection():
    async with inproc_system() as s:
        await s.until("on_strat_params_update")
        env, gw, strat = s.env, s.gateway, s.strat
        gone = env.send_new_order(None, SIM, 9001, Side.Buy, "100.0", "0.001")
        lost = env.send_new_order(None, SIM, 9001, Side.Buy, "99.0", "0.001")
        kept = env.send_new_order(None, SIM, 9001, Side.Buy, "98.0", "0.001")
        await s.until("on_new_order_ack", 3)
        env._on_bus_connection(False)  # the strategy loses the broker...
        gw.end_silently(str(gone), OrderStatus.Cancelled)  # ...cancelled meanwhile
        gw.end_silently(str(lost), None)  # ...and one the gateway no longer knows
        env._on_bus_connection(True)
        await s.until("on_order_cancelled")
        await s.until("on_new_order_reject")
        (args,) = strat.of("on_order_cancelled")
        assert args[1] == str(gone) and args[2] is True and args[5] is CancelCode.ExchangeCancel
        (rej,) = strat.of("on_new_order_reject")
        assert rej[1:3] == (str(lost), GtwRejectCode.UnknownOrder)
        # The checks were the env's own: the strategy saw no status answers it did not ask for,
        # and the order still open stays open.
        assert not strat.of("on_order_status") and not strat.of("on_request_reject")
        assert env.reconciled_orders == 2
        env.send_cancel_order(SIM, 9001, kept)
        await s.until("on_cancel_order_ack")
