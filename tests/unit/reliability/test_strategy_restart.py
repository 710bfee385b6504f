"""A strategy process that comes back: it adopts the open orders its earlier life placed, drops
command hooks kept for it too long, and its accounting check alerts instead of drifting."""

from __future__ import annotations

import asyncio
import logging
from decimal import Decimal
from typing import Any

from mlthon.basics import TIF, Exchange, OrderStatus, Side
from mlthon.basics.order import Order
from mlthon.basics.values import Price, Qty
from mlthon.gateways.sim.accounting import Leg
from mlthon.gateways.sim.config import SimGatewayConfig
from mlthon.gateways.sim.gateway import SimGateway
from mlthon.infra.bus import messages as m
from mlthon.infra.bus.inproc import InProcBus
from mlthon.infra.bus.topics import Topics
from mlthon.infra.clock import SimClock, SimScheduler
from mlthon.infra.control import ControlService
from mlthon.infra.env.strat_env import StratEnv
from mlthon.infra.instruments import load_instruments
from mlthon.infra.reactor import Reactor
from mlthon.infra.runner import run_strategy
from tests.conftest import wait_until
from tests.fakes.recorder import Recorder
from tests.harness import inproc_system, strategy_config

SIM = Exchange.Sim
S = 1_000_000_000


async def test_restarted_strategy_adopts_its_open_orders_and_can_cancel_and_modify_them():
    async with inproc_system() as s:
        await s.until("on_strat_params_update")
        alerts: list[m.TelegramPublish] = []
        s.sys_bus.subscribe(s.topics.telegram("rec"), lambda _t, x: alerts.append(x), qos=1)
        first = s.env
        assert first is not None
        bid = first.send_new_order(None, SIM, 9001, Side.Buy, "100.0", "0.001")
        ask = first.send_new_order(None, SIM, 9001, Side.Sell, "101.5", "0.002")
        await s.until("on_new_order_ack", 2)
        assert first.adopted_orders == 0  # a fresh start: nothing to adopt
        # kill -9: the process is gone without a word; a new one logs in under the same name.
        first.close()
        strat = Recorder()
        env = StratEnv(strat, s.strat_bus, Reactor(s.scheduler, name="strategy[rec]"), s.topics)
        await wait_until(lambda: strat.of("on_orders_info"), what="adopted orders")
        ((ex, orders),) = strat.of("on_orders_info")
        assert ex is SIM and env.adopted_orders == 2
        by_id = {o.client_ord_id: o for o in orders}
        assert by_id[str(bid)] == Order(
            exchange=SIM,
            instrument_id=9001,
            client_ord_id=str(bid),
            exch_ord_id=f"X{bid}",
            side=Side.Buy,
            price=Price("100.0"),
            qty=Qty("0.001"),
            leaves_qty=Qty("0.001"),
            filled_qty=Qty("0"),
            status=OrderStatus.New,
            adopted=True,
        )
        assert by_id[str(ask)].adopted and by_id[str(ask)].price == Price("101.5")
        # The strategy was told after it started, and the summary went to Telegram.
        names = strat.names()
        assert names.index("on_start") < names.index("on_orders_info")
        await wait_until(lambda: alerts, what="reconciliation summary on Telegram")
        assert "adopted 2 unknown open orders" in alerts[-1].text
        assert env.last_reconciliation == alerts[-1].text.removeprefix("rec: ")
        # Adopted orders are the env's own: modify, cancel, and a new id never collides.
        env.send_modify_order(SIM, bid, "99.5", None)
        await wait_until(lambda: strat.of("on_modify_order_ack"), what="modify ack")
        assert strat.of("on_modify_order_ack")[0][1:3] == (str(bid), Price("99.5"))
        env.send_cancel_order(SIM, 9001, ask)
        await wait_until(lambda: strat.of("on_order_cancelled"), what="cancel")
        assert strat.of("on_order_cancelled")[0][1] == str(ask)
        assert env.send_new_order(None, SIM, 9001, Side.Buy, "98.0", "0.001") not in (bid, ask)
        # The strategy's own question is answered to it, with the orders open now.
        env.fetch_orders_info(SIM)
        await wait_until(lambda: len(strat.of("on_orders_info")) == 2, what="orders info")
        asked = strat.of("on_orders_info")[1][1]
        assert str(ask) not in {o.client_ord_id for o in asked}
        assert str(bid) in {o.client_ord_id for o in asked}
        assert not any(o.adopted for o in asked)
        assert not strat.of("on_request_reject")


async def test_reconnection_with_nothing_unknown_tells_the_strategy_nothing():
    async with inproc_system() as s:
        await s.until("on_strat_params_update")
        env = s.env
        assert env is not None
        env.send_new_order(None, SIM, 9001, Side.Buy, "100.0", "0.001")
        await s.until("on_new_order_ack")
        env._on_bus_connection(False)
        env._on_bus_connection(True)
        await wait_until(lambda: "checked 1 known" in env.last_reconciliation, what="reconciled")
        assert env.last_reconciliation == (
            "reconciled with Sim: checked 1 known open orders (0 ended while away, 1 still open), "
            "adopted 0 unknown open orders"
        )
        assert not s.strat.of("on_orders_info") and env.adopted_orders == 0


async def test_the_strategys_own_questions_during_reconciliation_reach_it():
    """The env's reconciliation asks the same questions a strategy may ask at the same moment
    (the status of an open order, the list of open orders); each answer goes to who asked, by
    the request id the gateway echoes, and a previous run's answer delivered late reaches no
    one."""
    async with inproc_system() as s:
        await s.until("on_strat_params_update")
        env = s.env
        assert env is not None
        cl = env.send_new_order(None, SIM, 9001, Side.Buy, "100.0", "0.001")
        await s.until("on_new_order_ack")
        reconcile = env._reconcile

        def reconcile_and_ask(ex: Exchange) -> None:
            reconcile(ex)
            # In the same turn as the env's own checks, the strategy asks the same questions.
            env.fetch_order_status(SIM, 9001, cl)
            env.fetch_orders_info(SIM)

        env._reconcile = reconcile_and_ask  # type: ignore[method-assign]
        env._on_bus_connection(False)
        env._on_bus_connection(True)
        await wait_until(lambda: "checked 1 known" in env.last_reconciliation, what="reconciled")
        await s.until("on_order_status")
        await s.until("on_orders_info")
        assert len(s.strat.of("on_order_status")) == 1
        assert s.strat.of("on_order_status")[0][2] == str(cl)
        ((_, listed),) = s.strat.of("on_orders_info")
        assert [o.client_ord_id for o in listed] == [str(cl)] and not listed[0].adopted
        # An answer to a request of an earlier life of the process (another prefix) is dropped.
        late = m.OrdersInfo(orders=[], req_id="env-1-1")
        s.sys_bus.publish(s.topics.gtw_rpt(SIM, "rec"), late, qos=1)
        env.fetch_orders_info(SIM)
        await wait_until(lambda: len(s.strat.of("on_orders_info")) == 2, what="second answer")
        assert [o.client_ord_id for o in s.strat.of("on_orders_info")[1][1]] == [str(cl)]
        assert not s.strat.of("on_request_reject")


async def test_stale_command_hook_is_dropped_with_an_answer(caplog):
    async with inproc_system() as s:
        await s.until("on_strat_params_update")
        env = s.env
        assert env is not None
        ran: list[list[str]] = []
        env.add_cmd_hook("flatten", lambda args: ran.append(args) or "flat")
        # Through the control service (stamped now): it runs.
        res = await s.cmd("flatten", "now")
        assert (res.ok, res.detail, ran) == (True, "flat", [["now"]])
        # Kept by the broker while the strategy was away for 61 s: dropped, and said so.
        replies: list[m.CmdResult] = []
        s.sys_bus.subscribe(s.topics.reply("late"), lambda _t, x: replies.append(x), qos=1)
        sent = s.scheduler.now_ns() - 61 * S
        late = m.CmdHook(
            cmd_id="c-late",
            name="flatten",
            args=["x"],
            reply_to=s.topics.reply("late"),
            sent_ts=sent,
        )
        with caplog.at_level(logging.WARNING):
            s.sys_bus.publish(s.topics.strat_ctl("rec"), late, qos=1)
            await wait_until(lambda: replies, what="answer to the stale hook")
        assert ran == [["now"]] and env.stale_cmds == 1
        assert not replies[0].ok and replies[0].detail.startswith("dropped as stale")
        assert "61." in replies[0].detail and "limit 60s" in replies[0].detail
        assert "dropped as stale" in caplog.text
        # A hook from an older sender (no time) is run as before.
        s.sys_bus.publish(
            s.topics.strat_ctl("rec"),
            m.CmdHook(cmd_id="c-old", name="flatten", reply_to=s.topics.reply("late")),
            qos=1,
        )
        await wait_until(lambda: len(replies) == 2, what="answer to the undated hook")
        assert replies[1].ok and len(ran) == 2


def test_cmd_hook_without_sent_ts_decodes_as_before():
    from mlthon.infra.bus.codec import decode, encode

    old = b'{"k":"cmd","v":2,"cmd_id":"a","name":"x","args":[],"reply_to":""}'
    assert decode("t", old) == m.CmdHook(cmd_id="a", name="x")
    new = m.CmdHook(cmd_id="a", name="x", sent_ts=5)
    assert decode("t", encode(new)) == new


class Holder(Recorder):
    """Keeps its own position from its fills; ``skew`` simulates a bug in that bookkeeping."""

    def __init__(self) -> None:
        super().__init__("acct")
        self.pos: dict[tuple[Exchange, int], Decimal] = {}
        self.skew = Decimal(0)

    def accounting_positions(self) -> dict[tuple[Exchange, int], Decimal]:
        return {k: v + self.skew for k, v in self.pos.items()}

    def on_order_execution(self, exchange: Exchange, client_id: str, side: Side, *a: Any) -> None:
        super().on_order_execution(exchange, client_id, side, *a)  # type: ignore[misc]
        qty = a[1].as_decimal()
        key = (exchange, 9001)
        self.pos[key] = self.pos.get(key, Decimal(0)) + (qty if side is Side.Buy else -qty)


async def test_strategy_process_alerts_an_accounting_mismatch(caplog):
    sched = SimScheduler(SimClock(1_700_000_000 * S))
    bus = InProcBus(sched)
    topics = Topics("mlt")
    cfg = strategy_config("acct", accounting_period_s=1)
    ControlService(bus, sched, topics, [cfg]).start()
    gw = SimGateway(
        bus,
        sched,
        topics,
        SimGatewayConfig(exchange=SIM, balances={"USDT": Decimal("1000000")}),
        load_instruments(),
    )
    gw.start()
    alerts: list[m.TelegramPublish] = []
    statuses: list[m.StratStatus] = []
    bus.subscribe(topics.telegram("acct"), lambda _t, x: alerts.append(x))
    bus.subscribe(topics.strat_status("acct"), lambda _t, x: statuses.append(x))
    seen_by_strategy: list[str] = []
    strat = Holder()
    strat.hooks["on_position_info"] = lambda *a: seen_by_strategy.append("position")
    envs: list[StratEnv] = []
    stop = asyncio.Event()
    task = asyncio.create_task(
        run_strategy(cfg, stop, bus=bus, scheduler=sched, strategy=strat, on_env=envs.append)
    )

    def run(s: float) -> None:
        sched.run_until(sched.now_ns() + int(s * S))

    await wait_until(lambda: envs, what="env")
    run(0.01)
    assert "on_start" in strat.names()
    bus.publish(
        topics.md(SIM, 9001),
        m.BookUpdate(
            ex=SIM.value,
            iid=9001,
            ts=1,
            ch=[(m.ADD, m.BID, 999, 5000), (m.ADD, m.ASK, 1001, 5000)],  # 99.9 / 100.1, 5 lots
        ),
    )
    run(0.01)
    env = envs[0]
    for side, price in ((Side.Buy, "100.1"), (Side.Buy, "100.1"), (Side.Sell, "99.9")):
        env.send_new_order(None, SIM, 9001, side, price, "0.010", time_in_force=TIF.IOC)
        run(0.01)
    run(2.0)  # fills compared with the strategy's view; the periodic check asks the gateway
    assert len(strat.of("on_order_execution")) == 3
    assert strat.pos[(SIM, 9001)] == Decimal("0.010")
    assert not alerts and not any("MISMATCH" in st.detail for st in statuses)
    # The gateway's books go bad: the next periodic check is an alert, not a silent drift.
    inst = next(i for i in load_instruments() if i.instrument_id == 9001)
    gw.engine.account("acct").position(inst, Leg.Net).qty = Decimal("7")
    with caplog.at_level(logging.ERROR):
        run(1.0)
    assert "ACCOUNTING MISMATCH acct on Sim 9001: gateway says 7" in caplog.text
    assert alerts and alerts[0].priority == 0 and "gateway says 7" in alerts[0].text
    assert any("ACCOUNTING MISMATCH" in st.detail for st in statuses)
    # The strategy's own bookkeeping drifts: the next fill is an alert too.
    strat.skew = Decimal("0.5")
    env.send_new_order(None, SIM, 9001, Side.Buy, "100.1", "0.010", time_in_force=TIF.IOC)
    run(0.01)
    assert "strategy says 0.520" in alerts[-1].text
    # The checks' position answers were the env's own: the strategy saw none of them.
    assert seen_by_strategy == []
    stop.set()
    run(0.01)
    for _ in range(20):
        if task.done():
            break
        run(1.0)
        await asyncio.sleep(0.01)
    await asyncio.wait_for(task, 10)


def test_restarted_checker_takes_the_earlier_fills_from_the_gateway():
    from tests.unit.gateways.helpers import LIN
    from tests.unit.reliability.test_accounting_check import Rig

    rig = Rig(auto_baseline=True)
    # the process's earlier life bought 0.300 (fills it will never see again)
    rig.gw.engine.account("s1").position(LIN, Leg.Net).qty = Decimal("0.300")
    rig.view[(SIM, 1)] = Decimal("0.400")  # the strategy knows its position
    rig.order("a", Side.Buy, "0.100")
    rig.check.check_gateway()
    rig.run()
    assert rig.check.expected((SIM, 1)) == Decimal("0.400")
    assert rig.check.mismatches == [] and rig.alerts == []
    rig.view[(SIM, 1)] = Decimal("0.300")
    rig.order("b", Side.Sell, "0.100")
    assert rig.check.mismatches == [] and rig.check.checks == 2
