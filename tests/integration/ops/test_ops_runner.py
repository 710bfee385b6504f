"""The runner's strategy and control processes heartbeat, and a Shutdown on the bus stops them."""

from __future__ import annotations

import asyncio

import attrs
import pytest

from mlthon.infra.bus import messages as m
from mlthon.infra.bus.mqtt import MqttBus
from mlthon.infra.bus.topics import Topics
from mlthon.infra.clock import LiveScheduler
from mlthon.infra.config import BusConfig
from mlthon.infra.ops.board import StatusBoard
from mlthon.infra.ops.shutdown import shutdown_topic
from mlthon.infra.runner import run_control, run_strategy
from tests.conftest import wait_until
from tests.harness import strategy_config

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


async def test_strategy_and_control_heartbeat_and_obey_kill(mosquitto, topic_root, monkeypatch):
    monkeypatch.setenv("MLTHON_HEARTBEAT_S", "0.5")
    cfg = attrs.evolve(
        strategy_config("opsrec"),
        bus=BusConfig(host="127.0.0.1", port=mosquitto.port, root=topic_root),
    )
    stop_ctl, stop_strat = asyncio.Event(), asyncio.Event()
    async with MqttBus("127.0.0.1", mosquitto.port) as bus, asyncio.TaskGroup() as tg:
        await bus.wait_connected()
        board = StatusBoard(bus, LiveScheduler(), Topics(topic_root))
        board.start()
        ctl = tg.create_task(
            run_control(
                [cfg], stop_ctl, host="127.0.0.1", port=mosquitto.port, root=topic_root, web_port=0
            )
        )
        strat = tg.create_task(run_strategy(cfg, stop_strat))

        def state(kind: str, name: str) -> str:
            view = board.get(kind, name)
            return view.state if view is not None else "unknown"

        await wait_until(lambda: state("control", "control") == "up", 30, "control up")
        await wait_until(lambda: state("strategy", "opsrec") == "up", 30, "strategy running")
        view = board.get("strategy", "opsrec")
        extra = view.status.extra["strategy"]
        assert extra["state"] == "running" and extra["open_orders"] == 0
        bus.publish(shutdown_topic(Topics(topic_root)), m.Shutdown(target="opsrec"), qos=1)
        async with asyncio.timeout(15):
            assert await strat == "acknowledged"
        await wait_until(lambda: state("strategy", "opsrec") == "down", 30, "strategy down")
        bus.publish(shutdown_topic(Topics(topic_root)), m.Shutdown(target="control/control"), qos=1)
        async with asyncio.timeout(15):
            await ctl
        await wait_until(lambda: state("control", "control") == "down", 30, "control down")
        board.stop(unsubscribe=False)  # the bus closes next: no UNSUBACK in flight
