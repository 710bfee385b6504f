"""The env's order tracking: reports about orders the strategy never sent, the time a report was
received, and one life cycle per order.

* A report about a client id the env never sent, never asked about and never adopted is dropped
  with a warning (it used to reach ``on_order_execution``); the accounting check still sees it.
* After a restart (kill -9) the persistent session may deliver reports of the earlier life's
  orders before the adoption answer: they wait; those of the orders adopted reach the strategy
  after ``on_orders_info``; for the others the gateway is asked: an order it knows (it ended while
  the strategy was away) is told in ``on_orders_info`` and its reports follow; the rest are
  dropped.
* ``recv_ts`` of ``on_order_execution`` / ``on_order_cancelled`` is when the env received the
  report (it used to be the gateway's ``ts``, so latencies measured from it were zero).
* A fill reported after the cancel reaches the strategy, and the order stays closed.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from mlthon.basics import CancelCode, Exchange, OrderStatus, Side
from mlthon.infra.bus import messages as m
from mlthon.infra.env.strat_env import StratEnv
from mlthon.infra.reactor import Reactor
from tests.conftest import wait_until
from tests.fakes.recorder import Recorder
from tests.harness import inproc_system

SIM = Exchange.Sim


def _fill(cl: str, exec_id: str, qty: str, leaves: str, **kw: Any) -> m.OrderExecution:
    return m.OrderExecution(
        cl_id=cl,
        exec_id=exec_id,
        instrument_id=9001,
        side=Side.Buy,
        price="100.0",
        fill_qty=qty,
        leaves_qty=leaves,
        exec_ts=kw.pop("exec_ts", 3),
        **kw,
    )


def _cancelled(cl: str, **kw: Any) -> m.OrderCancelled:
    return m.OrderCancelled(
        cl_id=cl, unsolicited=True, engine_ts=4, cancel_code=CancelCode.ExchangeCancel, **kw
    )


async def test_report_for_an_order_never_sent_is_dropped_with_a_warning(caplog):
    async with inproc_system() as s:
        await s.until("on_strat_params_update")
        env = s.env
        assert env is not None
        # The open orders of Sim are known (the start-up reconciliation listed them).
        await wait_until(lambda: env.last_reconciliation, what="start-up reconciliation")
        seen: list[Any] = []
        env.report_listeners.append(lambda _t, msg: seen.append(msg))
        with caplog.at_level(logging.WARNING):
            s.gateway.report("rec", _fill("4242", "X-1", "0.001", "0"))
            s.gateway.report("rec", _cancelled("4243"))
            s.env.fetch_account_info(SIM)  # a marker: its answer comes after both reports
            await s.until("on_account_info")
        assert not s.strat.of("on_order_execution") and not s.strat.of("on_order_cancelled")
        assert env.unknown_reports == 2
        assert "OrderExecution for order 4242 on Sim dropped" in caplog.text
        assert "never sent, asked about or adopted" in caplog.text
        # The accounting check still saw every report.
        assert [type(x).__name__ for x in seen[:2]] == ["OrderExecution", "OrderCancelled"]
        # A cancel the strategy asks for an id the env does not know is answered to it.
        env.send_cancel_order(SIM, 9001, "777")
        await s.until("on_cancel_order_reject")
        assert s.strat.of("on_cancel_order_reject")[0][1] == "777"


async def test_restarted_strategy_gets_held_reports_of_adopted_orders_after_orders_info(caplog):
    async with inproc_system() as s:
        await s.until("on_strat_params_update")
        first = s.env
        assert first is not None
        kept = str(first.send_new_order(None, SIM, 9001, Side.Buy, "100.0", "0.002"))
        gone = str(first.send_new_order(None, SIM, 9001, Side.Buy, "99.0", "0.001"))
        await s.until("on_new_order_ack", 2)
        first.close()  # kill -9
        # While it was away: a part fill of one order; the other was cancelled and is no
        # longer open at the gateway.
        s.gateway.end_silently(gone, OrderStatus.Cancelled)
        strat = Recorder()
        listened: list[str] = []

        def right_after_login(_env: Any) -> None:
            # The persistent session delivers the reports kept for the strategy at once, before
            # the control service's answer and the adoption answer come back.
            s.gateway.report("rec", _fill(kept, "P-1", "0.001", "0.001", exec_ts=11))
            s.gateway.report("rec", _cancelled(gone))
            s.gateway.report("rec", _fill("999", "P-2", "0.001", "0"))  # nobody's

        strat.hooks["on_framework_connected"] = right_after_login
        env = StratEnv(strat, s.strat_bus, Reactor(s.scheduler, name="strategy[rec]"), s.topics)
        env.report_listeners.append(lambda _t, msg: listened.append(type(msg).__name__))
        with caplog.at_level(logging.WARNING):
            await wait_until(lambda: strat.of("on_order_execution"), what="held fill delivered")
            env.fetch_account_info(SIM)
            await wait_until(lambda: strat.of("on_account_info"), what="marker")
        names = strat.names()
        # Held, then delivered after the strategy heard of the adopted order.
        assert names.index("on_start") < names.index("on_orders_info")
        assert names.index("on_orders_info") < names.index("on_order_execution")
        ((_, adopted),) = strat.of("on_orders_info")
        assert [o.client_ord_id for o in adopted] == [kept]
        ((ex, cl, _side, _price, qty, leaves, exec_ts, _recv),) = strat.of("on_order_execution")
        assert (ex, cl, str(qty), str(leaves), exec_ts) == (SIM, kept, "0.001", "0.001", 11)
        # The cancel of the order that is not open any more, and the stranger's fill: dropped.
        assert not strat.of("on_order_cancelled")
        assert env.unknown_reports == 2
        assert f"OrderCancelled for order {gone} on Sim dropped" in caplog.text
        # The accounting check saw all three when they came.
        assert listened[:3] == ["OrderExecution", "OrderCancelled", "OrderExecution"]


async def test_recv_ts_is_when_the_env_received_the_report():
    async with inproc_system() as s:
        await s.until("on_strat_params_update")
        env = s.env
        assert env is not None
        cl = str(env.send_new_order(None, SIM, 9001, Side.Buy, "100.0", "0.002"))
        await s.until("on_new_order_ack")
        before = env.get_time_ns()
        # The gateway's own time stamps (exchange time 3, sent at 5): not the receive time.
        s.gateway.report("rec", _fill(cl, "R-1", "0.001", "0.001", ts=5))
        s.gateway.report("rec", _cancelled(cl, ts=5))
        await s.until("on_order_cancelled")
        after = env.get_time_ns()
        ((*_, exec_ts, recv_ts),) = s.strat.of("on_order_execution")
        ((_, _, _, engine_ts, cancel_recv_ts, _, _),) = s.strat.of("on_order_cancelled")
        assert exec_ts == 3 and engine_ts == 4  # the exchange's
        assert before <= recv_ts <= cancel_recv_ts <= after
        assert after - before < 60 * 10**9 and time.time_ns() - recv_ts < 60 * 10**9


async def test_fill_after_cancel_reaches_the_strategy_and_the_order_stays_closed(caplog):
    async with inproc_system() as s:
        await s.until("on_strat_params_update")
        env = s.env
        assert env is not None
        cl = str(env.send_new_order(None, SIM, 9001, Side.Buy, "100.0", "0.002"))
        await s.until("on_new_order_ack")
        s.gateway.report("rec", _cancelled(cl))
        with caplog.at_level(logging.WARNING):
            # A venue's execution stream late behind its cancel answer.
            s.gateway.report("rec", _fill(cl, "L-1", "0.001", "0.001"))
            await s.until("on_order_execution")
        assert s.strat.names().index("on_order_cancelled") < s.strat.names().index(
            "on_order_execution"
        )
        assert "after the order was closed (Cancelled)" in caplog.text
        assert env.orders.late_fills == 1
        assert (SIM, cl) not in env.orders.open  # never reopened
        # A cancel delivered again (a redelivery) reaches the strategy once.
        s.gateway.report("rec", _cancelled(cl))
        env.fetch_account_info(SIM)
        await s.until("on_account_info")
        assert len(s.strat.of("on_order_cancelled")) == 1


async def test_restarted_strategy_gets_the_fills_of_an_earlier_life_order_that_ended_away(caplog):
    """An order of the earlier life that filled to the end while the strategy was away is not
    among the open orders: the gateway is asked about it, knows it, and the strategy hears of
    the order (adopted, Filled) and then gets its fill: no fill is lost to a restart. A fill of an
    order the gateway does not know is dropped."""
    async with inproc_system() as s:
        await s.until("on_strat_params_update")
        first = s.env
        assert first is not None
        done = str(first.send_new_order(None, SIM, 9001, Side.Buy, "100.0", "0.002"))
        await s.until("on_new_order_ack")
        first.close()  # kill -9
        s.gateway.end_silently(done, OrderStatus.Filled)
        strat = Recorder()

        def right_after_login(_env: Any) -> None:
            s.gateway.report("rec", _fill(done, "E-1", "0.002", "0", exec_ts=21))
            s.gateway.report("rec", _fill("31337", "E-2", "0.001", "0"))  # nobody's

        strat.hooks["on_framework_connected"] = right_after_login
        env = StratEnv(strat, s.strat_bus, Reactor(s.scheduler, name="strategy[rec]"), s.topics)
        with caplog.at_level(logging.WARNING):
            await wait_until(lambda: strat.of("on_order_execution"), what="earlier fill delivered")
            await wait_until(lambda: env.unknown_reports == 1, what="the stranger's fill dropped")
        names = strat.names()
        assert names.index("on_orders_info") < names.index("on_order_execution")
        ((_, earlier),) = strat.of("on_orders_info")
        assert [(o.client_ord_id, o.adopted, o.status) for o in earlier] == [
            (done, True, OrderStatus.Filled)
        ]
        ((ex, cl, _side, _price, qty, leaves, exec_ts, _recv),) = strat.of("on_order_execution")
        assert (ex, cl, str(qty), str(leaves), exec_ts) == (SIM, done, "0.002", "0", 21)
        assert "placed by an earlier life" in caplog.text
        assert "31337" in caplog.text and "does not know that order" in caplog.text
        # the order is known and closed: its client id is never reused
        assert env.send_new_order(None, SIM, 9001, Side.Buy, "100.0", "0.001") != int(done)
