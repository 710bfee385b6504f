"""One strategy, two transports: the callbacks it receives from the sim gateway are the same on
the in-process bus and over a real mosquitto (zero latency configured), timestamps aside."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import pytest

from mlthon.basics.mlt_enum import TIF, Exchange, OrderType, Side
from mlthon.gateways.sim.config import SimGatewayConfig
from mlthon.gateways.sim.gateway import SimGateway
from mlthon.infra.bus import messages as m
from mlthon.infra.bus.bus import BusBase
from mlthon.infra.bus.inproc import InProcBus
from mlthon.infra.bus.mqtt import MqttBus
from mlthon.infra.bus.topics import Topics
from mlthon.infra.clock import LiveScheduler
from mlthon.infra.control import ControlService
from mlthon.infra.env.strat_env import StratEnv
from mlthon.infra.instruments import load_instruments
from mlthon.infra.reactor import Reactor
from tests import md as text_md
from tests.conftest import wait_until
from tests.fakes.recorder import Recorder
from tests.harness import strategy_config

pytestmark = pytest.mark.integration

SIM = Exchange.Sim
IID = 9001  # SIMUSDT: tick 0.10, lot 0.001


def _normalise(calls: list[tuple[str, tuple[Any, ...]]]) -> list[tuple[str, tuple[Any, ...]]]:
    """Drop timestamps and the run tag of ids (they differ from run to run)."""
    out = []
    for name, args in calls:
        kept = tuple(
            0 if isinstance(a, int) and not isinstance(a, bool) and a > 10**15 else a for a in args
        )
        # a gateway without a journal tags its ids with its start time (sim.<tag>-1)
        kept = tuple(
            re.sub(r"^sim\.[0-9a-z]+-", "sim-", a) if isinstance(a, str) else a for a in kept
        )
        out.append((name, kept))
    return out


async def _scenario(sys_bus: BusBase, strat_bus: BusBase, root: str) -> list:
    sched = LiveScheduler()
    topics = Topics(root)
    strat = Recorder()
    ControlService(sys_bus, sched, topics, [strategy_config(strat.name)]).start()
    gw_cfg = SimGatewayConfig(exchange=SIM, balances={"USDT": Decimal("1000")})
    SimGateway(sys_bus, sched, topics, gw_cfg, load_instruments()).start()
    if isinstance(sys_bus, MqttBus):
        await sys_bus.flush()
    env = StratEnv(strat, strat_bus, Reactor(sched, name="strategy[rec]"), topics)
    await wait_until(lambda: "on_strat_params_update" in strat.names(), what="strategy started")
    await wait_until(lambda: env._gateway_refusal(SIM) is None, what="gateway ready")
    first = len(strat.calls)

    async def md(msg: m.Msg) -> None:
        sys_bus.publish(topics.md(SIM, IID), msg, qos=1)
        if isinstance(sys_bus, MqttBus):
            await sys_bus.flush()  # the broker has it before the strategy's next request

    async def until(name: str, n: int = 1) -> None:
        await wait_until(lambda: strat.names()[first:].count(name) >= n, what=name)

    await md(
        text_md.book(
            ex=SIM.value,
            iid=IID,
            ts=1,
            ch=[(0, 1, "100.0", "1.000"), (0, 1, "99.9", "2.000"), (0, 2, "100.1", "0.500")],
        )
    )
    env.send_new_order(1, SIM, IID, Side.Buy, "100.0", "0.500")
    await until("on_new_order_ack")
    await md(text_md.trades(ex=SIM.value, iid=IID, ts=2, tr=[(2, "100.0", "1.200", 2, "t")]))
    await until("on_order_execution")
    env.send_modify_order(SIM, 1, "99.9", None)
    await until("on_modify_order_ack")
    env.send_new_order(2, SIM, IID, Side.Buy, "100.1", "0.800", time_in_force=TIF.IOC)
    await until("on_order_cancelled")
    env.send_new_order(3, SIM, IID, Side.Sell, "0", "0.100", ord_type=OrderType.Market)
    await until("on_order_execution", 3)
    env.send_new_order(4, SIM, IID, Side.Buy, "99.0", "50.000")  # needs 4950 USDT
    await until("on_new_order_reject")
    env.send_cancel_order(SIM, IID, 1)
    await until("on_order_cancelled", 2)
    env.send_cancel_order(SIM, IID, 1)
    await until("on_cancel_order_reject")
    env.fetch_wallet_info(SIM, "USDT")
    await until("on_wallet_info")
    env.fetch_position_info(SIM, IID)
    await until("on_position_info")
    env.fetch_orders_info(SIM)
    await until("on_orders_info")
    return _normalise(strat.calls[first:])


async def test_same_callbacks_in_process_and_over_mqtt(mosquitto, topic_root):
    bus = InProcBus(LiveScheduler())
    inproc = await _scenario(bus, bus, topic_root + "_a")
    async with (
        MqttBus(mosquitto.host, mosquitto.port) as sys_bus,
        MqttBus(mosquitto.host, mosquitto.port) as strat_bus,
    ):
        await sys_bus.wait_connected()
        await strat_bus.wait_connected()
        mqtt = await _scenario(sys_bus, strat_bus, topic_root + "_b")
    names = [n for n, _ in inproc]
    for expected in (
        "on_new_order_ack",
        "on_order_execution",
        "on_modify_order_ack",
        "on_order_cancelled",
        "on_new_order_reject",
        "on_cancel_order_ack",
        "on_cancel_order_reject",
        "on_wallet_info",
        "on_position_info",
        "on_orders_info",
    ):
        assert expected in names, expected
    assert mqtt == inproc
