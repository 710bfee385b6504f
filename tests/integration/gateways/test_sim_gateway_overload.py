"""A flood of order requests over MQTT, faster than the gateway's answers can leave: the gateway
sheds load (``GatewayOverloaded``) instead of queueing the answers, and every request still gets
exactly one answer (issue 15 item 6: before, the answers queued in the bus's outbox, where no
request's age showed it, and the gateway never refused anything)."""

from __future__ import annotations

import asyncio
from collections import Counter
from decimal import Decimal
from typing import Any

import pytest

from mlthon.basics.mlt_enum import Exchange, GtwRejectCode, Side
from mlthon.gateways.base import ANSWERS
from mlthon.gateways.sim.config import SimGatewayConfig
from mlthon.gateways.sim.gateway import SimGateway
from mlthon.infra.broker import MosquittoBroker
from mlthon.infra.bus.messages import CancelOrder, NewOrder
from mlthon.infra.bus.mqtt import MqttBus
from mlthon.infra.bus.topics import Topics
from mlthon.infra.clock import LiveScheduler
from mlthon.infra.instruments import load_instruments
from tests.conftest import wait_until

pytestmark = pytest.mark.integration

EX = Exchange.Sim
IID = 9001
PAIRS = 3000
HOLD_AT = 8


async def test_sim_gateway_flood_over_mqtt_sheds_load_and_answers_every_request_once(
    mosquitto: MosquittoBroker, topic_root: str
) -> None:
    topics = Topics(topic_root)
    sched = LiveScheduler(loop=asyncio.get_running_loop())
    config = SimGatewayConfig(
        exchange=EX,
        instrument_ids=(IID,),
        root=topic_root,
        balances={"USDT": Decimal("1000000000")},
        overload_lag_ns=200_000_000,
    )
    # One unacknowledged report at a time: the answers leave slower than requests come in.
    gw_bus = MqttBus(mosquitto.host, mosquitto.port, max_inflight=1, hold_input_at=HOLD_AT)
    answers: Counter[tuple[str, str]] = Counter()
    codes: Counter[str] = Counter()
    backlog = [0]

    def on_report(_t: str, msg: Any) -> None:
        for kind in ("new", "cancel"):
            if isinstance(msg, ANSWERS[kind]):
                answers[(kind, msg.cl_id)] += 1
        code = getattr(msg, "code", None)
        if code is not None:
            codes[code.name] += 1

    async def watch_backlog() -> None:
        while True:
            backlog[0] = max(backlog[0], len(gw_bus._outbox.queue))
            await asyncio.sleep(0.001)

    async with gw_bus, MqttBus(mosquitto.host, mosquitto.port, max_inflight=5000) as client:
        gateway = SimGateway(gw_bus, sched, topics, config, load_instruments())
        gateway.start()
        client.subscribe(topics.gtw_rpt(EX, "s1"), on_report, qos=1)
        await gw_bus.wait_connected(30)
        await client.wait_connected(30)
        watcher = asyncio.create_task(watch_backlog())
        try:
            req = topics.gtw_req(EX, "s1")
            for i in range(PAIRS):
                now = sched.now_ns()
                cl_id = f"o{i}"
                new = NewOrder(
                    strat="s1",
                    cl_id=cl_id,
                    instrument_id=IID,
                    side=Side.Buy,
                    price="90.00",
                    qty="1",
                    ts=now,
                )
                client.publish(req, new, qos=1)
                client.publish(
                    req, CancelOrder(strat="s1", cl_id=cl_id, instrument_id=IID, ts=now), qos=1
                )
            await wait_until(
                lambda: len(answers) == 2 * PAIRS, 120, f"answers ({len(answers)} of {2 * PAIRS})"
            )
        finally:
            watcher.cancel()
            gateway.stop()
    assert set(answers.values()) == {1}  # exactly one answer each
    assert gateway.overloaded_requests > 0 and codes[GtwRejectCode.GatewayOverloaded.name] > 0
    assert gw_bus.held > 0
    # the backlog stayed at the input: the outbox held at most the bound plus the answers of
    # one request (three at most)
    assert backlog[0] <= HOLD_AT + 3, backlog[0]
