"""A strategy knows every gateway's and feed's status before ``on_start``.

Over MQTT the ``Start`` can reach the strategy before a gateway that came up late has published
its retained status: the first order of a paper run was refused ``GtwNotReady no gateway for Sim
has reported`` (1 run in 2). When the ``Start`` arrives and the env has not heard the gateway and
feed statuses of every exchange of its instruments, ``on_start`` waits for them (or for a bound,
then starts anyway with a warning naming what it did not hear); ``on_start``,
``on_instruments`` and ``on_strat_params_update`` keep their order.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from mlthon.basics import Exchange, FeedHandlerStatus, Side
from mlthon.infra.bus import messages as m
from mlthon.infra.bus.mqtt import MqttBus
from mlthon.infra.bus.topics import Topics
from mlthon.infra.clock import LiveScheduler
from tests.conftest import wait_until
from tests.fakes.recorder import Recorder
from tests.harness import System, strategy_config

SIM = Exchange.Sim


@asynccontextmanager
async def _late_gateway_system(
    port: int, root: str, wait_s: float
) -> AsyncIterator[tuple[System, list[float]]]:
    """Control up, the strategy logging in, the gateway not yet: it starts when the test says.
    The strategy sends an order from ``on_start``; yields the system and when Starts arrived."""
    strat = Recorder()
    strat.hooks["on_start"] = lambda _p: strat.env.send_new_order(
        None, SIM, 9001, Side.Buy, "100.0", "0.001"
    )
    async with MqttBus("127.0.0.1", port) as sys_bus, MqttBus("127.0.0.1", port) as strat_bus:
        await sys_bus.wait_connected()
        cfg = strategy_config(strat.name, use=[9001])
        s = System(sys_bus, strat_bus, Topics(root), strat, cfg, LiveScheduler())
        starts: list[float] = []

        def on_ctl(_t: str, msg: Any) -> None:
            if isinstance(msg, m.Start):
                starts.append(time.monotonic())

        sys_bus.subscribe(s.topics.strat_ctl(strat.name), on_ctl, qos=1)
        s.control.start()
        await sys_bus.flush()
        s.start_strategy(start_wait_s=wait_s)
        await wait_until(lambda: starts, 30, "the control service's start")
        yield s, starts


async def test_on_start_waits_for_a_late_gateway_and_feed_status(mosquitto, topic_root):
    async with _late_gateway_system(mosquitto.port, topic_root, wait_s=30) as (s, _starts):
        env = s.env
        assert env is not None
        # The Start reached the env: it ran on_start at once (as it used to), or it waits.
        gate = getattr(env, "start_gate", None)
        await wait_until(
            lambda: "on_start" in s.strat.names() or (gate is not None and gate.waiting),
            30,
            "the start handled",
        )
        assert "on_start" not in s.strat.names()
        s.gateway.start()  # the gateway comes up late and publishes its retained status
        s.sys_bus.publish(
            s.topics.feed_status(SIM),
            m.FeedStatus(ex=SIM.value, status=FeedHandlerStatus.SnapshotEnd, detail="streaming"),
            qos=1,
            retain=True,
        )
        await s.until("on_new_order_ack", timeout=10)
        assert not s.strat.of("on_new_order_reject")
        await s.until("on_strat_params_update")
        assert s.strat.names()[:4] == [
            "on_framework_connected",
            "on_start",
            "on_instruments",
            "on_strat_params_update",
        ]


async def test_on_start_goes_ahead_after_the_bound_naming_what_was_not_heard(
    mosquitto, topic_root, caplog
):
    async with _late_gateway_system(mosquitto.port, topic_root, wait_s=0.5) as (s, starts):
        s.gateway.start()  # the gateway reports; the feed never does
        with caplog.at_level(logging.WARNING):
            await s.until("on_strat_params_update", timeout=10)
        waited = time.monotonic() - starts[0]
        assert waited >= 0.45
        assert "starting without having heard the Sim feed's status within 0.5s" in caplog.text
        assert s.strat.names()[1:4] == ["on_start", "on_instruments", "on_strat_params_update"]
        await s.until("on_new_order_ack", timeout=10)
