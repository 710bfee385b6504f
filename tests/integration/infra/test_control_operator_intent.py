"""Over a real mosquitto: a strategy the operator stopped stays stopped when a broker restart
makes it log in again, and when the control service itself restarts (its intent file); a start
starts it once, and a second start is a no-op that says so."""

from __future__ import annotations

import pytest

from mlthon.infra.bus.mqtt import MqttBus
from mlthon.infra.bus.topics import Topics
from mlthon.infra.clock import LiveScheduler
from mlthon.infra.control import ControlService
from tests.fakes.recorder import Recorder
from tests.harness import System, strategy_config

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


async def test_control_stopped_strategy_stays_stopped_across_broker_and_control_restarts(
    broker, topic_root, tmp_path
):
    state = tmp_path / "control-state.json"
    topics = Topics(topic_root)
    strat = Recorder()
    cfg = strategy_config(strat.name)
    sched = LiveScheduler()
    async with (
        MqttBus(broker.host, broker.port) as sys_bus,
        MqttBus(broker.host, broker.port) as strat_bus,
    ):
        await sys_bus.wait_connected()
        s = System(sys_bus, strat_bus, topics, strat, cfg, sched)
        s.control = ControlService(sys_bus, sched, topics, [cfg], state_path=state)
        s.start_system()
        await sys_bus.flush()
        s.start_strategy()
        await s.until("on_start", timeout=20)
        res = await s.cmd("stop", "eod", timeout=20)
        assert res.ok and "acknowledged" in res.detail, res.detail

        async def relogin() -> None:
            """A broker restart: the env logs in again; the answer's StratParams (after the
            Start or Idle) reaches the strategy."""
            params = len(strat.of("on_strat_params_update"))
            logins = len(strat.of("on_framework_connected"))
            broker.restart()
            await s.until("on_framework_connected", logins + 1, timeout=30)
            await s.until("on_strat_params_update", params + 1, timeout=30)

        # 1. A broker restart: the strategy logs in again and stays stopped.
        await relogin()
        assert len(strat.of("on_start")) == 1
        assert s.control.strats[cfg.name].logged_in and not s.control.strats[cfg.name].started
        # 2. The control service restarts (same intent file), then the broker again.
        s.control.stop()
        s.control = ControlService(sys_bus, sched, topics, [cfg], state_path=state)
        s.control.start()
        await sys_bus.flush()
        await relogin()
        assert len(strat.of("on_start")) == 1

        # 3. The operator starts it: once.
        res = await s.cmd("start", "again", timeout=20)
        assert res.ok, res.detail
        await s.until("on_start", 2, timeout=20)
        assert strat.of("on_start")[-1] == ("again",)
        res = await s.cmd("start", timeout=20)
        assert (res.ok, res.detail) == (True, "already running")
        assert len(strat.of("on_start")) == 2
        s.control.stop()
